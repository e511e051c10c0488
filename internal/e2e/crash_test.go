package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
)

// citadelProcess is `citadel server` running as its own process, so that
// a test can kill it with SIGKILL.
type citadelProcess struct {
	bin, dataDir, listen string
	args                 []string // more flags for `citadel server`
	cmd                  *exec.Cmd
	exited               chan struct{} // closed when cmd has exited
}

func buildCitadel(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "citadel")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../../cmd/citadel").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start starts the server and waits until it is ready. A port that
// freeAddr found free can be taken by a parallel test before the server
// binds it: the server then exits at once, and start tries another port
// (the server writes its new endpoint into the credentials it keeps).
func (p *citadelProcess) start(t *testing.T) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		var stderr lockedBuffer
		p.cmd = exec.Command(p.bin, append([]string{"server", "--data-dir", p.dataDir, "--listen", p.listen, "--agent-listen", "", "--log-level", "warn"}, p.args...)...)
		p.cmd.Stdout = t.Output()
		p.cmd.Stderr = io.MultiWriter(t.Output(), &stderr)
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmd, exited := p.cmd, make(chan struct{})
		p.exited = exited
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		switch p.waitReady(exited) {
		case nil:
			return
		case errExited:
			if strings.Contains(stderr.String(), "address already in use") && attempt < 3 {
				p.listen = freeAddr(t)
				continue
			}
			t.Fatalf("citadel server exited before it was ready")
		default:
			t.Fatal("citadel server did not become ready in 60s")
		}
	}
}

var errExited = errors.New("exited")

// waitReady polls the server's health until it answers, it exits, or a
// minute passes.
func (p *citadelProcess) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errExited
		default:
		}
		if creds, err := client.LoadCredentials(filepath.Join(p.dataDir, "bootstrap", "admin.json")); err == nil &&
			strings.Contains(creds.ARMEndpoint, p.listen) {
			if c, err := client.New(creds); err == nil {
				if resp, err := c.HTTP.Get(creds.ARMEndpoint + "healthz"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return nil
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not ready")
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (p *citadelProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown code runs
		t.Fatal(err)
	}
	<-p.exited
}

// TestCrashDuringPuts kills the server with SIGKILL in the middle of a
// burst of PUTs. After a restart, every PUT that was answered 2xx must be
// there, and every long-running operation that was in flight must end
// Succeeded or Failed, never stay InProgress.
func TestCrashDuringPuts(t *testing.T) {
	p := &citadelProcess{bin: buildCitadel(t), dataDir: t.TempDir(), listen: freeAddr(t)}
	p.start(t)
	c := p.client(t)
	creds := c.Creds
	ctx := t.Context()
	group := fmt.Sprintf("/subscriptions/%s/resourceGroups/crash", creds.SubscriptionID)
	if r, err := c.Do(ctx, http.MethodPut, group+"?api-version=2021-04-01", map[string]any{"location": "local"}); err != nil || r.Expect(201) != nil {
		t.Fatalf("create group: %v %v", err, r)
	}

	type ack struct{ id, statusURL string }
	var (
		mu    sync.Mutex
		acked []ack
	)
	burst, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; burst.Err() == nil; i++ {
				id := fmt.Sprintf("%s/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p-%d-%d", group, w, i)
				body := map[string]any{"location": "local", "properties": map[string]any{"ipPrefixRules": []any{
					map[string]any{"action": "Permit", "sequenceNumber": i + 1, "networkPrefix": "10.0.0.0/8"},
				}}}
				r, err := c.Do(burst, http.MethodPut, id+"?api-version=2025-07-15", body)
				if err != nil || r.Status/100 != 2 {
					continue // not acknowledged: either outcome is allowed
				}
				mu.Lock()
				acked = append(acked, ack{id, r.Header.Get("Azure-AsyncOperation")})
				mu.Unlock()
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	p.kill(t)
	stop()
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d PUTs were acknowledged before the kill; the burst did not run", len(acked))
	}
	t.Logf("%d PUTs acknowledged before SIGKILL", len(acked))

	p.start(t)
	c = p.client(t) // the server may have come back on another port
	creds = c.Creds
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range acked {
		r, err := c.Do(ctx, http.MethodGet, a.id+"?api-version=2025-07-15", nil)
		if err != nil || r.Status != http.StatusOK {
			t.Errorf("GET %s after restart = %v %v, want 200: an acknowledged PUT was lost", a.id, r, err)
			continue
		}
		waitEnded(t, c, strings.TrimPrefix(a.statusURL, strings.TrimSuffix(creds.ARMEndpoint, "/")), deadline)
	}
}

// waitEnded polls an operation's status until it ends (Succeeded, or
// Failed or Canceled with a reason), failing the test if it has not by
// deadline or ended with no reason.
func waitEnded(t *testing.T, c *client.Client, statusPath string, deadline time.Time) {
	t.Helper()
	for {
		r, err := c.Do(t.Context(), http.MethodGet, statusPath, nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("GET operation %s = %v %v", statusPath, r, err)
		}
		var st struct {
			Status string
			Error  struct{ Code, Message string }
		}
		json.Unmarshal(r.Body, &st)
		switch {
		case st.Status == "Succeeded":
			return
		case st.Status == "Failed" || st.Status == "Canceled":
			if st.Error.Message == "" {
				t.Errorf("operation %s ended %s with no reason: %s", statusPath, st.Status, r.Body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation %s is still %s", statusPath, st.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client is an admin client of the server, which may have come back on
// another port: it writes its endpoint into the credentials it keeps.
func (p *citadelProcess) client(t *testing.T) *client.Client {
	t.Helper()
	creds, err := client.LoadCredentials(filepath.Join(p.dataDir, "bootstrap", "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(creds)
	if err != nil {
		t.Fatal(err)
	}
	c.PollInterval = 50 * time.Millisecond
	return c
}
