package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/monitor/armmonitor"
	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
	"github.com/citadel-cloud/citadel/internal/store"
)

// alView is what one activity-log record must say about the request that
// caused it.
type alView struct {
	OperationName, Status, Method, StatusCode string
	ResourceID, ResourceGroupName             string
	Caller, OID, Level                        string
}

func (e alEvent) view() alView {
	return alView{
		OperationName: e.OperationName, Status: e.Status, Method: e.Method, StatusCode: e.StatusCode,
		ResourceID: e.ResourceID, ResourceGroupName: e.ResourceGroupName,
		Caller: e.Caller, OID: e.OID, Level: e.Level,
	}
}

// TestActivityLog makes changes, a refused change and an invalid one, and
// reads them back from the activity log (arm-contract §3.9) with raw
// queries, the Azure SDK's armmonitor and az monitor activity-log list.
func TestActivityLog(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	e := newSDKEnv(t)
	cp, sub, loc := e.cp, e.sub, e.cp.Creds.Location
	admin := alAdmin(t, cp)
	intruder := alNewPrincipal(t, cp, "activity-log-intruder")

	const group = "al-rg"
	groupID := "/subscriptions/" + sub + "/resourceGroups/" + group
	refusedID := "/subscriptions/" + sub + "/resourceGroups/al-refused"
	prefixID := e.ipPrefixID(group, "al-prefix")
	badPrefixID := e.ipPrefixID(group, "al-bad-prefix")
	rules := []prefixRule{{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.0.0.0/8"}}
	badRules := []prefixRule{{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "not-a-prefix"}}

	// call sends one request and returns the correlation id the server
	// answered with: these requests send none, so it made one up.
	call := func(p alPrincipal, method, id, api string, body any, want int) string {
		t.Helper()
		resp := alSend(t, p.Client, method, id+"?api-version="+api, nil, body)
		if resp.Status != want {
			t.Fatalf("%s %s as %s = %d %s, want %d", method, id, p.Name, resp.Status, resp.Body, want)
		}
		alWaitOperation(t, p.Client, method+" "+id, resp)
		corr := resp.Header.Get("x-ms-correlation-request-id")
		if corr == "" {
			t.Fatalf("%s %s: no x-ms-correlation-request-id in the response", method, id)
		}
		return corr
	}
	start := time.Now().UTC()
	corrGroup := call(admin, http.MethodPut, groupID, alGroupAPI, map[string]any{"location": loc}, http.StatusCreated)
	corrCreate := call(admin, http.MethodPut, prefixID, fabricAPIVersion, ipPrefix(loc, rules), http.StatusCreated)
	corrInvalid := call(admin, http.MethodPut, badPrefixID, fabricAPIVersion, ipPrefix(loc, badRules), http.StatusBadRequest)
	corrDelete := call(admin, http.MethodDelete, prefixID, fabricAPIVersion, nil, http.StatusOK)
	corrRefused := call(intruder, http.MethodPut, refusedID, alGroupAPI, map[string]any{"location": loc}, http.StatusForbidden)
	alFlush(t, cp)
	end := time.Now().UTC()

	all := alEvents(t, alQuery(t, admin.Client, sub, url.Values{"$filter": {alFilter(start, end)}}))

	const (
		groupWrite   = "Microsoft.Resources/subscriptions/resourceGroups/write"
		prefixWrite  = "Microsoft.ManagedNetworkFabric/ipPrefixes/write"
		prefixDelete = "Microsoft.ManagedNetworkFabric/ipPrefixes/delete"
	)
	// rec is the record of a request by p; a failure is at level Error.
	// An empty code is not checked.
	rec := func(p alPrincipal, op, status, method, code, id, rg string) alView {
		level := "Informational"
		if status == "Failed" {
			level = "Error"
		}
		return alView{OperationName: op, Status: status, Method: method, StatusCode: code,
			ResourceID: id, ResourceGroupName: rg, Caller: p.Name, OID: p.ObjectID, Level: level}
	}
	want := map[string][]alView{
		corrGroup: {rec(admin, groupWrite, "Succeeded", "PUT", "Created", groupID, group)},
		corrCreate: {
			// A long-running request: Started when it arrived, Accepted
			// when answered, Succeeded when its operation ended.
			rec(admin, prefixWrite, "Started", "PUT", "", prefixID, group),
			rec(admin, prefixWrite, "Accepted", "PUT", "Created", prefixID, group),
			// The end of the operation: no HTTP request of its own.
			rec(admin, prefixWrite, "Succeeded", "", "", prefixID, group),
		},
		corrInvalid: {rec(admin, prefixWrite, "Failed", "PUT", "BadRequest", badPrefixID, group)},
		corrDelete:  {rec(admin, prefixDelete, "Succeeded", "DELETE", "OK", prefixID, group)},
		corrRefused: {rec(intruder, groupWrite, "Failed", "PUT", "Forbidden", refusedID, "al-refused")},
	}

	t.Run("every request", func(t *testing.T) {
		got := map[string][]alView{}
		for _, ev := range all {
			got[ev.CorrelationID] = append(got[ev.CorrelationID], ev.view())
		}
		for corr, ws := range want {
			for i, w := range ws {
				if w.StatusCode == "" && i < len(got[corr]) {
					got[corr][i].StatusCode = ""
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("activity log by correlationId, %s..%s (-want +got):\n%s", start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), diff)
		}
	})

	t.Run("common fields", func(t *testing.T) {
		seen := map[string]bool{}
		for _, ev := range all {
			what := fmt.Sprintf("event %s (%s %s)", ev.EventDataID, ev.OperationName, ev.Status)
			if ev.EventDataID == "" || seen[ev.EventDataID] {
				t.Errorf("%s: eventDataId empty or repeated", what)
			}
			seen[ev.EventDataID] = true
			if ev.SubscriptionID != sub || ev.TenantID != cp.Creds.TenantID || ev.Category != "Administrative" {
				t.Errorf("%s: subscriptionId, tenantId, category = %q, %q, %q, want %q, %q, Administrative",
					what, ev.SubscriptionID, ev.TenantID, ev.Category, sub, cp.Creds.TenantID)
			}
			if prefix := ev.ResourceID + "/events/" + ev.EventDataID + "/ticks/"; !strings.HasPrefix(ev.ID, prefix) {
				t.Errorf("%s: id = %q, want it to start with %q", what, ev.ID, prefix)
			}
			if ev.Time.Before(start) || ev.Time.After(end) {
				t.Errorf("%s: eventTimestamp %v outside the requests' time %v..%v", what, ev.Time, start, end)
			}
			if ev.AuthAction != ev.OperationName || ev.AuthScope != ev.ResourceID {
				t.Errorf("%s: authorization action, scope = %q, %q, want %q, %q", what, ev.AuthAction, ev.AuthScope, ev.OperationName, ev.ResourceID)
			}
		}
	})

	// Azure says in authorization.role which role let the caller do it;
	// audit.Authorization documents the same ("empty when it was denied").
	t.Run("authorization role", func(t *testing.T) {
		for _, ev := range all {
			switch {
			case ev.CorrelationID == corrRefused && ev.AuthRole != "":
				t.Errorf("refused request: authorization.role = %q, want empty", ev.AuthRole)
			case ev.CorrelationID == corrGroup && ev.AuthRole == "":
				t.Errorf("PUT %s by the Owner: authorization.role is empty, want the role that allowed it (Owner)", groupID)
			}
		}
	})

	// caller is the principal's name, as in the systemData of what it changed.
	t.Run("caller matches systemData", func(t *testing.T) {
		r, err := cp.Client.Do(t.Context(), http.MethodGet, groupID+"?api-version="+alGroupAPI, nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("GET %s = %v %v", groupID, r, err)
		}
		var g struct {
			SystemData struct {
				CreatedBy string `json:"createdBy"`
			} `json:"systemData"`
		}
		if err := json.Unmarshal(r.Body, &g); err != nil {
			t.Fatal(err)
		}
		if g.SystemData.CreatedBy != admin.Name {
			t.Errorf("systemData.createdBy of %s = %q, want the caller recorded, %q", groupID, g.SystemData.CreatedBy, admin.Name)
		}
	})

	t.Run("filters", func(t *testing.T) {
		deleted := alKeep(all, func(e alEvent) bool { return e.CorrelationID == corrDelete })
		if len(deleted) != 1 {
			t.Fatalf("%d records of the DELETE, want 1", len(deleted))
		}
		at := deleted[0].Time
		tests := []struct {
			name   string
			filter string
			keep   func(alEvent) bool
		}{
			{"resourceGroupName", alFilter(start, end, "resourceGroupName eq '"+group+"'"),
				func(e alEvent) bool { return e.ResourceGroupName == group }},
			{"resourceGroupName in another casing", alFilter(start, end, "resourceGroupName eq 'AL-RG'"),
				func(e alEvent) bool { return e.ResourceGroupName == group }},
			{"correlationId", alFilter(start, end, "correlationId eq '"+corrCreate+"'"),
				func(e alEvent) bool { return e.CorrelationID == corrCreate }},
			{"status", alFilter(start, end, "status eq 'Failed'"),
				func(e alEvent) bool { return e.Status == "Failed" }},
			{"resourceUri", alFilter(start, end, "resourceUri eq '"+prefixID+"'"),
				func(e alEvent) bool { return e.ResourceID == prefixID }},
			{"resourceProvider", alFilter(start, end, "resourceProvider eq 'Microsoft.ManagedNetworkFabric'"),
				func(e alEvent) bool { return e.ResourceProvider == "Microsoft.ManagedNetworkFabric" }},
			{"caller", alFilter(start, end, "caller eq '"+intruder.Name+"'"),
				func(e alEvent) bool { return e.Caller == intruder.Name }},
			{"two conditions", alFilter(start, end, "resourceGroupName eq '"+group+"'", "status eq 'Succeeded'"),
				func(e alEvent) bool { return e.ResourceGroupName == group && e.Status == "Succeeded" }},
			{"time bounds are inclusive", alFilter(at, at), func(e alEvent) bool { return e.Time.Equal(at) }},
			{"no upper bound", alFilter(at, time.Time{}), func(e alEvent) bool { return !e.Time.Before(at) }},
			{"unquoted times without a zone, as az sends them",
				fmt.Sprintf("eventTimestamp ge %s and eventTimestamp le %s", start.Format("2006-01-02T15:04:05.000000"), end.Add(time.Second).Format("2006-01-02T15:04:05.000000")),
				func(alEvent) bool { return true }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want := alIDs(alKeep(all, tt.keep))
				if len(want) == 0 {
					t.Fatalf("no record matches %q; the test expects some", tt.filter)
				}
				got := alIDs(alEvents(t, alQuery(t, admin.Client, sub, url.Values{"$filter": {tt.filter}})))
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("$filter=%s: eventDataIds (-want +got):\n%s", tt.filter, diff)
				}
			})
		}
	})

	t.Run("select", func(t *testing.T) {
		pages := alQuery(t, admin.Client, sub, url.Values{"$filter": {alFilter(start, end)}, "$select": {"eventTimestamp,operationName,status"}})
		got := alEvents(t, pages)
		if len(got) != len(all) {
			t.Fatalf("$select: %d events, want %d", len(got), len(all))
		}
		var items []json.RawMessage
		for _, p := range pages {
			items = append(items, p.Items...)
		}
		for i, p := range items {
			if keys := alKeys(t, p); !slices.Equal(keys, []string{"eventTimestamp", "operationName", "status"}) {
				t.Errorf("$select=eventTimestamp,operationName,status: item %d has fields %v", i, keys)
			}
			g, w := got[i], all[i]
			if !g.Time.Equal(w.Time) || g.OperationName != w.OperationName || g.Status != w.Status {
				t.Errorf("$select: item %d = %v %s %s, want %v %s %s", i, g.Time, g.OperationName, g.Status, w.Time, w.OperationName, w.Status)
			}
		}
	})

	t.Run("paging", func(t *testing.T) {
		for _, sel := range []string{"", "eventDataId,status"} {
			t.Run("select "+sel, func(t *testing.T) {
				q := url.Values{"$filter": {alFilter(start, end)}, "$top": {"2"}}
				if sel != "" {
					q.Set("$select", sel)
				}
				pages := alQuery(t, admin.Client, sub, q)
				if len(pages) < 2 {
					t.Errorf("$top=2 over %d events: %d page, want several", len(all), len(pages))
				}
				for i, p := range pages {
					if len(p.Items) > 2 {
						t.Errorf("$top=2: page %d has %d events: the nextLink dropped $top", i, len(p.Items))
					}
					for _, it := range p.Items {
						if keys := alKeys(t, it); sel != "" && !slices.Equal(keys, []string{"eventDataId", "status"}) {
							t.Errorf("$select=%s: page %d has an item with fields %v: the nextLink dropped $select", sel, i, keys)
							break
						}
					}
				}
				if diff := cmp.Diff(alIDs(all), alIDs(alEvents(t, pages))); diff != "" {
					t.Errorf("$top=2, pages joined: eventDataIds (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("bad queries", func(t *testing.T) {
		tests := []struct{ name, filter, sel string }{
			{"no eventTimestamp ge", "resourceGroupName eq '" + group + "'", ""},
			{"only eventTimestamp le", "eventTimestamp le '" + end.Format(time.RFC3339Nano) + "'", ""},
			{"no $filter", "", ""},
			{"le before ge", alFilter(end, start), ""},
			{"unknown field", alFilter(start, end, "colour eq 'blue'"), ""},
			{"operator other than eq", alFilter(start, end, "status ne 'Failed'"), ""},
			{"unknown $select field", alFilter(start, end), "eventTimestamp,colour"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := url.Values{"api-version": {alEventsAPI}}
				if tt.filter != "" {
					q.Set("$filter", tt.filter)
				}
				if tt.sel != "" {
					q.Set("$select", tt.sel)
				}
				r := alSend(t, admin.Client, http.MethodGet, alEventsPath(sub)+"?"+q.Encode(), nil, nil)
				code, err := azErrorCode(r.Body)
				if r.Status != http.StatusBadRequest || err != nil || code != "BadRequest" {
					t.Errorf("GET activity log ?%s = %d %s, want 400 BadRequest", q.Encode(), r.Status, r.Body)
				}
			})
		}
	})

	t.Run("armmonitor", func(t *testing.T) {
		c, err := armmonitor.NewActivityLogsClient(sub, e.cred, e.opts)
		if err != nil {
			t.Fatal(err)
		}
		list := func(filter string, sel *string) []*armmonitor.EventData {
			var out []*armmonitor.EventData
			pager := c.NewListPager(filter, &armmonitor.ActivityLogsClientListOptions{Select: sel})
			for pager.More() {
				page, err := pager.NextPage(t.Context())
				if err != nil {
					t.Fatalf("ActivityLogsClient.NewListPager(%q).NextPage = %v", filter, err)
				}
				out = append(out, page.Value...)
			}
			return out
		}

		filter := alFilter(start, end, "resourceGroupName eq '"+group+"'")
		var got []alEvent
		for _, d := range list(filter, to.Ptr("eventDataId,correlationId,operationName,status,eventTimestamp")) {
			got = append(got, alEventOf(d))
			if d.Caller != nil || d.Claims != nil || d.EventTimestamp == nil {
				t.Errorf("event %s with $select: caller %v, claims %v, eventTimestamp %v; want only the selected fields", deref(d.EventDataID), d.Caller, d.Claims, d.EventTimestamp)
			}
		}
		want := alKeep(all, func(e alEvent) bool { return e.ResourceGroupName == group })
		if diff := cmp.Diff(alBriefs(want), alBriefs(got)); diff != "" {
			t.Errorf("armmonitor List(%q) (-want +got):\n%s", filter, diff)
		}

		refused := list(alFilter(start, end, "correlationId eq '"+corrRefused+"'"), nil)
		if len(refused) != 1 {
			t.Fatalf("armmonitor List(correlationId of the refused PUT) = %d events, want 1", len(refused))
		}
		d := refused[0]
		if got := deref(d.Level); got != armmonitor.EventLevelError {
			t.Errorf("refused PUT: level = %q, want %q", got, armmonitor.EventLevelError)
		}
		if got := deref(d.Claims["oid"]); got != intruder.ObjectID {
			t.Errorf("refused PUT: claims.oid = %q, want the refused caller's %q", got, intruder.ObjectID)
		}
		if got := deref(d.Claims["appid"]); got != intruder.AppID {
			t.Errorf("refused PUT: claims.appid = %q, want %q", got, intruder.AppID)
		}
		if d.HTTPRequest == nil || deref(d.HTTPRequest.ClientIPAddress) == "" {
			t.Errorf("refused PUT: httpRequest.clientIpAddress is empty")
		}
	})

	t.Run("az", func(t *testing.T) {
		requireAz(t)
		az := newAzCLI(t, cp)
		defer az.logTimings(t)
		c := cp.Creds
		az.login(t, c)

		type azEvent struct {
			EventDataID   string `json:"eventDataId"`
			CorrelationID string `json:"correlationId"`
			OperationName struct {
				Value string `json:"value"`
			} `json:"operationName"`
			Status struct {
				Value string `json:"value"`
			} `json:"status"`
		}
		tests := []struct {
			args []string
			keep func(alEvent) bool
		}{
			// az sends "eventTimestamp ge 2026-…T15:35:02.078076 and … and
			// resourceGroupName eq 'al-rg'" (naive UTC, unquoted).
			{[]string{"-g", group}, func(e alEvent) bool { return e.ResourceGroupName == group }},
			// az sends "resourceId eq '…'" for --resource-id.
			{[]string{"--resource-id", prefixID}, func(e alEvent) bool { return e.ResourceID == prefixID }},
			{[]string{"--correlation-id", corrCreate}, func(e alEvent) bool { return e.CorrelationID == corrCreate }},
		}
		for _, tt := range tests {
			args := append([]string{"monitor", "activity-log", "list", "--offset", "1h"}, tt.args...)
			args = append(args, "-o", "json")
			res := az.run(t, args...)
			var got []azEvent
			if res.ExitCode != 0 || json.Unmarshal([]byte(res.Stdout), &got) != nil {
				t.Errorf("%s = exit %d, want 0 and a JSON list; stdout %q, stderr:\n%s", az.show(args), res.ExitCode, azCut(res.Stdout, 200), res.Stderr)
				continue
			}
			var gotBriefs []alBrief
			for _, ev := range got {
				gotBriefs = append(gotBriefs, alBrief{ev.EventDataID, ev.CorrelationID, ev.OperationName.Value, ev.Status.Value})
			}
			// Azure lists newest first; compare in eventDataId order.
			byID := func(a, b alBrief) int { return strings.Compare(a.ID, b.ID) }
			slices.SortFunc(gotBriefs, byID)
			wantBriefs := alBriefs(alKeep(all, tt.keep))
			slices.SortFunc(wantBriefs, byID)
			if diff := cmp.Diff(wantBriefs, gotBriefs); diff != "" {
				t.Errorf("%s (-want +got):\n%s", az.show(args), diff)
			}
		}
	})
	t.Logf("TestActivityLog took %v", time.Since(t0).Round(time.Millisecond))
}

// TestAuditTamper exports the signed activity log through the API and
// with `citadel audit export`, verifies it, and then tampers with it, in
// the file and directly in etcd: every change is found and the first bad
// record named, by audit.Verify and by `citadel audit verify`.
func TestAuditTamper(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	cp := servertest.Start(t)
	bin := buildCitadel(t)
	ctx := t.Context()
	pubFile := filepath.Join(cp.DataDir, "audit", audit.PublicKeyFile)
	pem, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := audit.ParsePublicKey(pem)
	if err != nil {
		t.Fatalf("%s: %v", pubFile, err)
	}

	// About 120 records: tag PUTs on four groups, in three rounds with a
	// checkpoint after each, besides the ones the chainer signs itself.
	sub := cp.Creds.SubscriptionID
	groupPath := func(w int) string {
		return fmt.Sprintf("/subscriptions/%s/resourceGroups/tamper-%d?api-version=%s", sub, w, alGroupAPI)
	}
	putTags := func(w, i int) error {
		body := map[string]any{"location": cp.Creds.Location, "tags": map[string]string{"round": fmt.Sprint(i)}}
		r, err := cp.Client.Do(ctx, http.MethodPut, groupPath(w), body)
		if err != nil {
			return err
		}
		return r.Expect(http.StatusOK, http.StatusCreated)
	}
	const workers, perRound = 4, 10
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := range perRound {
					if err := putTags(w, round*perRound+i); err != nil {
						errs[w] = err
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("PUT group tags: %v", err)
			}
		}
		alFlush(t, cp)
	}

	exportAPI := func(t *testing.T, query string) []byte {
		t.Helper()
		r, err := cp.Client.Do(t.Context(), http.MethodGet, "/providers/Citadel.Audit/export?api-version="+alExportAPI+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusOK {
			t.Fatalf("GET Citadel.Audit/export%s = %d %s, want 200", query, r.Status, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("export Content-Type = %q, want application/x-ndjson", ct)
		}
		return r.Body
	}
	verify := func(t *testing.T, b []byte, key ed25519.PublicKey) audit.Report {
		t.Helper()
		rep, err := audit.Verify(bytes.NewReader(b), key)
		if err != nil {
			t.Fatalf("Verify = %v", err)
		}
		return rep
	}
	// cliVerify runs `citadel audit verify`; with trustedKey it passes
	// --public-key.
	cliVerify := func(t *testing.T, b []byte, trustedKey bool) (string, int) {
		t.Helper()
		args := []string{"audit", "verify", alWriteFile(t, "export.ndjson", b)}
		if trustedKey {
			args = append(args, "--public-key", pubFile)
		}
		return alRunCitadel(t, bin, args...)
	}

	good := exportAPI(t, "")
	rep := verify(t, good, trusted)
	x := alParseExport(t, good)
	n := uint64(len(x.records))
	t.Run("intact", func(t *testing.T) {
		if !rep.OK() || len(rep.Warnings) > 0 || rep.SelfAsserted || !rep.Anchored {
			t.Fatalf("Verify(export) = %v, want OK with the trusted key, anchored, no warnings", rep)
		}
		if n < 120 || rep.Records != int(n) || rep.FirstSeq != 1 || rep.LastSeq != n || rep.VerifiedThrough != n || rep.Checkpoints < 3 {
			t.Errorf("Verify(export) = %d records %d..%d, %d checkpoints, verified through %d; want ≥120 records from 1, ≥3 checkpoints, all verified",
				rep.Records, rep.FirstSeq, rep.LastSeq, rep.Checkpoints, rep.VerifiedThrough)
		}
		if rep.KeyID != audit.KeyID(trusted) || x.header.KeyID != rep.KeyID || !trusted.Equal(ed25519.PublicKey(cp.Audit.PublicKey())) {
			t.Errorf("key id = %s (header %s), want %s, the key of %s", rep.KeyID, x.header.KeyID, audit.KeyID(trusted), pubFile)
		}
		if strict, err := (audit.Verifier{Key: trusted, Strict: true}).Verify(bytes.NewReader(good)); err != nil || !strict.OK() {
			t.Errorf("strict Verify(export) = %v, %v; want OK: the export ends with a checkpoint", strict, err)
		}
		if again := x.bytes(t); string(again) != string(good) {
			t.Fatalf("the export taken apart and written again differs from the export; the tamper cases below would be wrong")
		}
	})

	t.Run("citadel audit export and verify", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "export.ndjson")
		if out, code := alRunCitadel(t, bin, "audit", "export", "--credentials", cp.CredentialsFile, "--out", file); code != 0 {
			t.Fatalf("citadel audit export = exit %d:\n%s", code, out)
		}
		out, code := alRunCitadel(t, bin, "audit", "verify", file, "--public-key", pubFile)
		if code != 0 || !strings.HasPrefix(out, "OK: ") {
			t.Errorf("citadel audit verify (export of citadel audit export) = exit %d:\n%s\nwant exit 0, OK", code, out)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if rep := verify(t, b, trusted); !rep.OK() || rep.LastSeq != n {
			t.Errorf("Verify(citadel audit export) = %v, want OK through record %d", rep, n)
		}
	})

	t.Run("time range", func(t *testing.T) {
		// From the record after a middle checkpoint: the export is anchored
		// at that checkpoint.
		mid := x.cps[len(x.cps)/2]
		if mid.Seq >= n {
			t.Skipf("no checkpoint before the head: %v", x.cps)
		}
		from := x.records[mid.Seq].Event.EventTimestamp // record mid.Seq+1
		b := exportAPI(t, "&from="+url.QueryEscape(from.Format(time.RFC3339Nano)))
		rep := verify(t, b, trusted)
		if !rep.OK() || !rep.Anchored || rep.FirstSeq > mid.Seq+1 || rep.LastSeq != n {
			t.Errorf("Verify(export from %v) = %v, want OK, anchored, records up to %d..%d", from, rep, mid.Seq+1, n)
		}
	})

	// k is a record in the middle with no checkpoint next to it, so that
	// every tamper below has one signed checkpoint before and after it.
	k := n / 2
	near := func(seq uint64) bool {
		for _, c := range x.cps {
			if c.Seq+2 >= seq && c.Seq <= seq+2 {
				return true
			}
		}
		return false
	}
	for near(k) && k < n-10 {
		k++
	}
	forged := x.cps[0]
	for _, c := range x.cps {
		if c.Seq > 1 && c.Seq < n {
			forged = c
			break
		}
	}
	t.Logf("%d records, checkpoints at %v; tampering around record %d and checkpoint %d", n, seqsOf(x.cps), k, forged.Seq)
	mallory := func(e audit.Event) audit.Event {
		e.Caller, e.Claims = "mallory", map[string]string{"oid": "00000000-0000-0000-0000-00000000bad0"}
		return e
	}

	fileTests := []struct {
		name   string
		tamper func(x alExportFile) alExportFile
		kind   audit.Kind
		seq    uint64
	}{
		{"modify a field of a record", func(x alExportFile) alExportFile {
			x.records[k-1].Event.Caller = "mallory"
			return x
		}, audit.KindModified, k},
		{"delete a record", func(x alExportFile) alExportFile {
			x.records = slices.Delete(x.records, int(k-1), int(k))
			return x
		}, audit.KindDeleted, k},
		{"insert a forged record, chain recomputed", func(x alExportFile) alExportFile {
			evs := alEventsOf(x.records)
			fake := mallory(evs[k-1])
			fake.EventDataID = "00000000-0000-4000-8000-000000000bad"
			x.records = alRechain(slices.Insert(evs, int(k-1), fake))
			return x
		}, audit.KindInserted, k},
		// Of two swapped neighbours, the verifier names the one that comes
		// first in the file, the one that overtook (audit.longestIncreasing).
		{"reorder two records", func(x alExportFile) alExportFile {
			x.records[k-1], x.records[k] = x.records[k], x.records[k-1]
			return x
		}, audit.KindReordered, k + 1},
		{"reorder two records, chain recomputed", func(x alExportFile) alExportFile {
			evs := alEventsOf(x.records)
			evs[k-1], evs[k] = evs[k], evs[k-1]
			x.records = alRechain(evs)
			return x
		}, audit.KindReordered, k},
		{"forge a checkpoint signature", func(x alExportFile) alExportFile {
			for i := range x.cps {
				if x.cps[i].Seq == forged.Seq {
					x.cps[i].Signature[10] ^= 0x40
				}
			}
			return x
		}, audit.KindBadCheckpoint, forged.Seq},
	}
	t.Run("file", func(t *testing.T) {
		for _, tt := range fileTests {
			t.Run(tt.name, func(t *testing.T) {
				b := tt.tamper(x.clone()).bytes(t)
				checkTampered(t, verify(t, b, trusted), tt.kind, tt.seq)
				out, code := cliVerify(t, b, true)
				if want := alProblemText(tt.seq, tt.kind); code != 1 || !strings.Contains(out, want) {
					t.Errorf("citadel audit verify = exit %d:\n%s\nwant exit 1 naming %q", code, out, want)
				}
			})
		}
	})

	// Tampering in etcd, under the chain: the export shows it. Each event
	// is stored once under audit/events/{id}; the chainer's links, stored a
	// batch per key under audit/links/{seq of the batch's last}, name it.
	eventKey := func(t *testing.T, seq uint64) string {
		t.Helper()
		page, err := cp.Store.List(t.Context(), "audit/links/", fmt.Sprintf("audit/links/%020d", seq-1), 1)
		if err != nil || len(page.KVs) == 0 {
			t.Fatalf("store List(links from %d) = %v, %v", seq, page, err)
		}
		kv := page.KVs[0]
		var last uint64
		fmt.Sscanf(strings.TrimPrefix(kv.Key, "audit/links/"), "%d", &last)
		var batch []struct{ Event string }
		if err := json.Unmarshal(kv.Value, &batch); err != nil || uint64(len(batch)) <= last-seq {
			t.Fatalf("link batch %s = %s: %v", kv.Key, kv.Value, err)
		}
		return "audit/events/" + batch[len(batch)-1-int(last-seq)].Event
	}
	get := func(t *testing.T, key string) []byte {
		t.Helper()
		kv, err := cp.Store.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("store Get(%s) = %v", key, err)
		}
		return kv.Value
	}
	txn := func(t *testing.T, ops ...store.Op) {
		t.Helper()
		if _, err := cp.Store.Txn(t.Context(), ops...); err != nil {
			t.Fatalf("store Txn = %v", err)
		}
	}
	storeTests := []struct {
		name   string
		tamper func(t *testing.T) []store.Op // returns the ops that undo it
		kind   audit.Kind
		seq    uint64
	}{
		{"modify a record", func(t *testing.T) []store.Op {
			key := eventKey(t, k)
			orig := get(t, key)
			// The stored event, with the caller and claims of mallory's.
			var e map[string]any
			if err := json.Unmarshal(orig, &e); err != nil {
				t.Fatal(err)
			}
			fake := mallory(audit.Event{})
			e["caller"], e["claims"] = fake.Caller, fake.Claims
			forged, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			txn(t, store.Put(key, forged))
			return []store.Op{store.Put(key, orig)}
		}, audit.KindModified, k},
		{"delete a record", func(t *testing.T) []store.Op {
			key := eventKey(t, k)
			orig := get(t, key)
			txn(t, store.Delete(key))
			return []store.Op{store.Put(key, orig)}
		}, audit.KindDeleted, k},
		// The newest record is signed by the head's checkpoint: the export
		// must still carry that checkpoint, which proves the loss.
		{"delete the newest record", func(t *testing.T) []store.Op {
			key := eventKey(t, n)
			orig := get(t, key)
			txn(t, store.Delete(key))
			return []store.Op{store.Put(key, orig)}
		}, audit.KindDeleted, n},
		// Two events trade places under their links: the chain breaks
		// there, and the verifier names the second of them.
		{"swap two records", func(t *testing.T) []store.Op {
			ka, kb := eventKey(t, k), eventKey(t, k+1)
			a, b := get(t, ka), get(t, kb)
			txn(t, store.Put(ka, b), store.Put(kb, a))
			return []store.Op{store.Put(ka, a), store.Put(kb, b)}
		}, audit.KindModified, k + 1},
	}
	t.Run("etcd", func(t *testing.T) {
		for _, tt := range storeTests {
			t.Run(tt.name, func(t *testing.T) {
				undo := tt.tamper(t)
				defer txn(t, undo...)
				b := exportAPI(t, "")
				checkTampered(t, verify(t, b, trusted), tt.kind, tt.seq)
				file := filepath.Join(t.TempDir(), "export.ndjson")
				if out, code := alRunCitadel(t, bin, "audit", "export", "--credentials", cp.CredentialsFile, "--out", file); code != 0 {
					t.Fatalf("citadel audit export = exit %d:\n%s", code, out)
				}
				out, code := alRunCitadel(t, bin, "audit", "verify", file, "--public-key", pubFile)
				if want := alProblemText(tt.seq, tt.kind); code != 1 || !strings.Contains(out, want) {
					t.Errorf("citadel audit verify = exit %d:\n%s\nwant exit 1 naming %q", code, out, want)
				}
			})
		}
		if rep := verify(t, exportAPI(t, ""), trusted); !rep.OK() {
			t.Errorf("Verify(export) after undoing the tampering = %v, want OK", rep)
		}
	})

	t.Run("swapped key", func(t *testing.T) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		attacker, err := audit.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		firstCP := x.cps[0].Seq

		t.Run("header only", func(t *testing.T) {
			y := x.clone()
			y.header.PublicKey, y.header.KeyID = attacker.PublicKey(), ""
			b := y.bytes(t)
			// With the header's key: the real checkpoints do not verify.
			rep := verify(t, b, nil)
			if !rep.SelfAsserted {
				t.Errorf("Verify(key swapped, no trusted key).SelfAsserted = false, want true")
			}
			checkTampered(t, rep, audit.KindBadCheckpoint, firstCP)
			if out, code := cliVerify(t, b, false); code != 1 || !strings.Contains(out, "self-asserted") || !strings.Contains(out, alProblemText(firstCP, audit.KindBadCheckpoint)) {
				t.Errorf("citadel audit verify (no key) = exit %d:\n%s\nwant exit 1, self-asserted, naming %q", code, out, alProblemText(firstCP, audit.KindBadCheckpoint))
			}
			// With the trusted key: the header is not it.
			checkTampered(t, verify(t, b, trusted), audit.KindBadKey, 0)
		})

		t.Run("history rewritten and re-signed", func(t *testing.T) {
			y := x.clone()
			evs := alEventsOf(y.records)
			evs[k-1] = mallory(evs[k-1])
			y.records = alRechain(evs)
			for i, c := range y.cps {
				y.cps[i] = attacker.Sign(audit.Head{Seq: c.Seq, Hash: y.records[c.Seq-1].Hash()}, c.Time)
			}
			y.header.PublicKey, y.header.KeyID = attacker.PublicKey(), ""
			b := y.bytes(t)
			// Consistent in itself: only a trusted key tells.
			rep := verify(t, b, nil)
			if !rep.OK() || !rep.SelfAsserted || !strings.Contains(rep.String(), "self-asserted") {
				t.Errorf("Verify(re-signed, no trusted key) = %v, want OK and self-asserted", rep)
			}
			if out, code := cliVerify(t, b, false); code != 0 || !strings.Contains(out, "self-asserted") {
				t.Errorf("citadel audit verify (no key) = exit %d:\n%s\nwant exit 0 saying self-asserted", code, out)
			}
			rep = verify(t, b, trusted)
			if rep.OK() {
				t.Fatalf("Verify(re-signed, trusted key) = OK, want bad-checkpoint")
			}
			var bad []uint64
			for _, p := range rep.Problems {
				if p.Kind == audit.KindBadCheckpoint {
					bad = append(bad, p.Seq)
				}
			}
			if diff := cmp.Diff(seqsOf(x.cps), bad); diff != "" {
				t.Errorf("Verify(re-signed, trusted key): bad-checkpoint problems (-want +got):\n%s\n%v", diff, rep)
			}
			if out, code := cliVerify(t, b, true); code != 1 || !strings.Contains(out, alProblemText(firstCP, audit.KindBadCheckpoint)) {
				t.Errorf("citadel audit verify --public-key = exit %d:\n%s\nwant exit 1 naming %q", code, out, alProblemText(firstCP, audit.KindBadCheckpoint))
			}
		})
	})

	// An export flushes the log while the chainer may be chaining the same
	// records: the two must not trip over each other.
	t.Run("export while writing", func(t *testing.T) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := putTags(w, 1000+i); err != nil {
						errs[w] = err
						return
					}
				}
			})
		}
		deadline := time.Now().Add(1500 * time.Millisecond)
		var exports, failedExports, flushes, failedFlushes int
		for time.Now().Before(deadline) {
			r, err := cp.Client.Do(t.Context(), http.MethodGet, "/providers/Citadel.Audit/export?api-version="+alExportAPI, nil)
			if err != nil {
				t.Fatal(err)
			}
			exports++
			switch {
			case r.Status != http.StatusOK:
				if failedExports++; failedExports == 1 {
					t.Errorf("export during writes = %d %s, want 200", r.Status, r.Body)
				}
			default:
				if rep := verify(t, r.Body, trusted); !rep.OK() {
					t.Errorf("Verify(export during writes) = %v, want OK", rep)
				}
			}
			flushes++
			if err := cp.Audit.Flush(t.Context()); err != nil {
				if failedFlushes++; failedFlushes == 1 {
					t.Errorf("Audit.Flush during writes = %v, want nil", err)
				}
			}
		}
		close(stop)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("PUT group tags: %v", err)
			}
		}
		if failedExports+failedFlushes > 0 {
			t.Errorf("during writes, %d of %d exports and %d of %d Audit.Flush calls failed", failedExports, exports, failedFlushes, flushes)
		}
	})
	t.Logf("TestAuditTamper took %v", time.Since(t0).Round(time.Millisecond))
}

// alBrief is what identifies a record in a list: id, correlation,
// operation and status.
type alBrief struct{ ID, Correlation, Operation, Status string }

func alBriefs(events []alEvent) []alBrief {
	out := make([]alBrief, len(events))
	for i, e := range events {
		out[i] = alBrief{e.EventDataID, e.CorrelationID, e.OperationName, e.Status}
	}
	return out
}

// checkTampered fails unless rep reports a problem and its first one is
// of kind about record (or checkpoint) seq.
func checkTampered(t *testing.T, rep audit.Report, kind audit.Kind, seq uint64) {
	t.Helper()
	p, ok := rep.First()
	if rep.OK() || !ok {
		t.Errorf("Verify = OK, want %s at record %d\n%v", kind, seq, rep)
		return
	}
	if p.Kind != kind || p.Seq != seq {
		t.Errorf("Verify.First() = %s at record %d, want %s at record %d\n%v", p.Kind, p.Seq, kind, seq, rep)
	}
}

func seqsOf(cps []audit.Checkpoint) []uint64 {
	out := make([]uint64, len(cps))
	for i, c := range cps {
		out[i] = c.Seq
	}
	return out
}

// The baseline that bench api --without-activity-log measures against
// records none of the requests it serves, and only that configuration:
// the same requests on an ordinary server are all recorded.
func TestBenchmarkWithoutActivityLog(t *testing.T) {
	t.Parallel()
	for _, without := range []bool{false, true} {
		t.Run(fmt.Sprintf("without=%v", without), func(t *testing.T) {
			t.Parallel()
			cp := servertest.Start(t, func(c *server.Config) { c.BenchmarkWithoutActivityLog = without })
			group := "/subscriptions/" + cp.Creds.SubscriptionID + "/resourceGroups/bench-baseline"
			prefix := group + "/providers/" + ipPrefixType + "/prefix"
			for _, req := range []struct {
				method, path, api string
				body              any
				want              int
			}{
				{http.MethodPut, group, alGroupAPI, map[string]any{"location": cp.Creds.Location}, http.StatusCreated},
				{http.MethodPut, prefix, fabricAPIVersion, ipPrefix(cp.Creds.Location, []prefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8"}}), http.StatusCreated},
				{http.MethodPut, group + "/providers/" + ipPrefixType + "/bad", fabricAPIVersion, map[string]any{"location": 1}, http.StatusBadRequest},
			} {
				resp := alSend(t, cp.Client, req.method, req.path+"?api-version="+req.api, nil, req.body)
				if resp.Status != req.want {
					t.Fatalf("%s %s = %d %s, want %d", req.method, req.path, resp.Status, resp.Body, req.want)
				}
				alWaitOperation(t, cp.Client, req.path, resp)
			}
			alFlush(t, cp)
			records, _, err := cp.Audit.Records(t.Context(), 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, r := range records {
				if strings.HasPrefix(strings.ToLower(r.Event.ResourceID), strings.ToLower(group)) {
					n++
				}
			}
			// Recorded: the group's Succeeded; the prefix's Started,
			// Accepted and Succeeded; the refused PUT's Failed.
			if want := map[bool]int{false: 5, true: 0}[without]; n != want {
				t.Errorf("%d records of the requests, want %d", n, want)
			}
		})
	}
}
