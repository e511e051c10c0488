package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestAuditArchive moves old activity-log records into signed segment
// files: they leave the store, an export starts after them anchored on
// the archive's last checkpoint, and the segments plus the export verify
// as one unbroken history; a damaged or missing segment is reported.
func TestAuditArchive(t *testing.T) {
	cp := servertest.Start(t, func(c *server.Config) { c.AuditRetention = 0 }) // archive by hand only
	ctx := t.Context()
	dir := t.TempDir()
	pub, err := os.ReadFile(filepath.Join(cp.DataDir, "audit", "audit-signing.pub"))
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := audit.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	group := "/subscriptions/" + cp.Creds.SubscriptionID + "/resourceGroups/archived?api-version=2021-04-01"
	write := func(n int) {
		t.Helper()
		for i := range n {
			body := map[string]any{"location": "local", "tags": map[string]string{"i": fmt.Sprint(i)}}
			if r, err := cp.Client.Do(ctx, http.MethodPut, group, body); err != nil || r.Expect(200, 201) != nil {
				t.Fatalf("PUT group: %v %v", r, err)
			}
		}
		if err := cp.Audit.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	export := func() []byte {
		t.Helper()
		r, err := cp.Client.Do(ctx, http.MethodGet, "/providers/Citadel.Audit/export?api-version=2026-01-01", nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("export = %v %v", r, err)
		}
		return r.Body
	}
	verifyAll := func(files ...[]byte) audit.Report {
		t.Helper()
		rep, err := audit.Verifier{Key: trusted, Strict: true}.VerifySegments(toReaders(files)...)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	write(30)
	// A cutoff past the replicas' clock skew (a minute) from now: what is
	// in the store is older.
	first, err := cp.Audit.Archive(ctx, dir, time.Now().Add(2*time.Minute))
	if err != nil || first == "" {
		t.Fatalf("Archive = %q, %v; want a segment", first, err)
	}
	mark, err := cp.Audit.Archived(ctx)
	if err != nil || mark == nil || mark.Seq < 30 {
		t.Fatalf("Archived() = %v, %v; want the checkpoint ending the segment", mark, err)
	}
	if recs, _, err := cp.Audit.Records(ctx, 1, 0); err != nil || len(recs) != 0 {
		t.Errorf("Records after archiving everything = %d records, %v; want none left in the store", len(recs), err)
	}
	write(20)
	second, err := cp.Audit.Archive(ctx, dir, time.Now().Add(2*time.Minute))
	if err != nil || second == "" {
		t.Fatalf("second Archive = %q, %v", second, err)
	}
	write(10) // these stay in the store

	seg1, _ := os.ReadFile(first)
	seg2, _ := os.ReadFile(second)
	live := export()
	if rep := verifyAll(seg1, seg2, live); !rep.OK() || rep.FirstSeq != 1 {
		t.Fatalf("VerifySegments(archive, export) = %v, want the whole history from record 1, OK", rep)
	}
	if rep, err := audit.Verify(bytes.NewReader(live), trusted); err != nil || !rep.OK() || !rep.Anchored {
		t.Errorf("Verify(export after archiving) = %v, %v; want OK and anchored on the archive", rep, err)
	}
	t.Run("citadel audit verify --archive", func(t *testing.T) {
		bin := buildCitadel(t)
		pubFile := filepath.Join(cp.DataDir, "audit", "audit-signing.pub")
		out, code := alRunCitadel(t, bin, "audit", "verify", alWriteFile(t, "live.ndjson", live), "--archive", dir, "--public-key", pubFile)
		if code != 0 {
			t.Errorf("citadel audit verify --archive = exit %d:\n%s\nwant 0", code, out)
		}
		out, code = alRunCitadel(t, bin, "audit", "verify", alWriteFile(t, "live2.ndjson", live), "--public-key", pubFile)
		if code != 0 {
			t.Errorf("citadel audit verify (export alone, anchored on the archive) = exit %d:\n%s\nwant 0", code, out)
		}
	})
	t.Run("a missing segment", func(t *testing.T) {
		if rep := verifyAll(seg2, live); rep.OK() {
			t.Errorf("VerifySegments without the first segment = OK, want the gap reported")
		}
	})
	t.Run("a damaged segment", func(t *testing.T) {
		damaged := bytes.Replace(seg1, []byte(`"caller":"citadel-admin"`), []byte(`"caller":"someone-else"`), 1)
		if bytes.Equal(damaged, seg1) {
			t.Fatal("the segment has no caller to change")
		}
		rep := verifyAll(damaged, seg2, live)
		if p, ok := rep.First(); rep.OK() || !ok || p.Kind != audit.KindModified {
			t.Errorf("VerifySegments(damaged) = %v, want modified", rep)
		}
	})
}

func toReaders(files [][]byte) []io.Reader {
	out := make([]io.Reader, len(files))
	for i, f := range files {
		out[i] = bytes.NewReader(f)
	}
	return out
}
