package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// fakeConsoles are the console logs the fake agent API got, and the
// statuses it answers the next ones with (204 once they run out).
type fakeConsoles struct {
	mu      sync.Mutex
	sent    []agentapi.ConsoleLog
	answers []int
}

func (f *fakeAPI) console(w http.ResponseWriter, r *http.Request) {
	var up agentapi.ConsoleLog
	if err := json.NewDecoder(r.Body).Decode(&up); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.consoles.mu.Lock()
	defer f.consoles.mu.Unlock()
	f.consoles.sent = append(f.consoles.sent, up)
	status := http.StatusNoContent
	if len(f.consoles.answers) > 0 {
		status, f.consoles.answers = f.consoles.answers[0], f.consoles.answers[1:]
	}
	w.WriteHeader(status)
}

func (f *fakeAPI) consoleLogs() []agentapi.ConsoleLog {
	f.consoles.mu.Lock()
	defer f.consoles.mu.Unlock()
	return append([]agentapi.ConsoleLog(nil), f.consoles.sent...)
}

// setDesired makes d the desired state the long poll answers.
func (f *fakeAPI) setDesired(d *agentapi.Desired) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.desired = d
}

// waitFor polls ok every 20 ms for up to 20 s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentAnswersConsoleRequests: the agent answers each console request
// of its desired state once, with the tail of the VM's log; an upload
// that fails is sent again at a heartbeat, one the control plane refuses
// is not.
func TestAgentAnswersConsoleRequests(t *testing.T) {
	h := host.NewSim(agentapi.Inventory{Hostname: "m1"})
	v := testVM("a", "On")
	api := startFakeAPI(t, &agentapi.Desired{Revision: 1, VMs: []agentapi.VM{v}})
	api.consoles.mu.Lock()
	api.consoles.answers = []int{http.StatusInternalServerError, http.StatusNoContent, http.StatusConflict}
	api.consoles.mu.Unlock()
	runAgent(t, api, h)
	applied := func(rev int64) func() bool {
		return func() bool {
			hbs := api.sent()
			return len(hbs) > 0 && hbs[len(hbs)-1].Observed.DesiredRevision == rev && len(hbs[len(hbs)-1].VMs) == 1 && hbs[len(hbs)-1].VMs[0].Power == "On"
		}
	}
	waitFor(t, "VM a running", applied(1))
	if got := api.consoleLogs(); len(got) != 0 {
		t.Fatalf("the agent sent console logs %+v before any request", got)
	}
	log, err := h.Console(v.ID)
	if err != nil || !bytes.Contains(log, []byte("[sim] a is up (boot 1)")) {
		t.Fatalf("Console(a) = %q, %v; want its boot", log, err)
	}

	// Request 1, for 14 bytes: the first upload fails, the next
	// heartbeat sends it again.
	v.ConsoleRequests, v.ConsoleTailBytes = 1, 14
	api.setDesired(&agentapi.Desired{Revision: 2, VMs: []agentapi.VM{v}})
	waitFor(t, "request 1 answered twice", func() bool { return len(api.consoleLogs()) >= 2 })
	want := agentapi.ConsoleLog{ID: v.ID, Request: 1, Log: log[len(log)-14:], Truncated: true}
	for i, up := range api.consoleLogs()[:2] {
		if up.ID != want.ID || up.Request != want.Request || !bytes.Equal(up.Log, want.Log) || up.Truncated != want.Truncated || up.Error != "" {
			t.Errorf("upload %d = %+v, want %+v", i, up, want)
		}
	}

	// A new desired state with the same count asks for nothing.
	api.setDesired(&agentapi.Desired{Revision: 3, VMs: []agentapi.VM{v}})
	waitFor(t, "revision 3 applied", applied(3))

	// Request 2, for the whole log, is refused: it is not sent again.
	v.ConsoleRequests, v.ConsoleTailBytes = 2, 0
	api.setDesired(&agentapi.Desired{Revision: 4, VMs: []agentapi.VM{v}})
	waitFor(t, "request 2 answered", func() bool { return len(api.consoleLogs()) >= 3 })
	if up := api.consoleLogs()[2]; up.Request != 2 || !bytes.Equal(up.Log, log) || up.Truncated {
		t.Errorf("the answer to request 2 = %+v, want the whole log %q", up, log)
	}
	waitFor(t, "revision 4 applied", applied(4))
	time.Sleep(200 * time.Millisecond) // ten heartbeats
	if got := api.consoleLogs(); len(got) != 3 {
		t.Errorf("%d console logs sent, want 3 (request 1 twice, request 2 once): %+v", len(got), got)
	}
}

// TestConsoleUpload: the answer to a request is the tail it asks for, or
// the whole log up to the most the control plane takes; a VM the driver
// does not have has an empty log.
func TestConsoleUpload(t *testing.T) {
	h := host.NewSim(agentapi.Inventory{Hostname: "m1"})
	v := testVM("a", "On")
	if _, err := h.RunVMs(t.Context(), []agentapi.VM{v}); err != nil {
		t.Fatal(err)
	}
	log, _ := h.Console(v.ID)
	tests := []struct {
		name      string
		vm        agentapi.VM
		want      []byte
		truncated bool
	}{
		{"whole", agentapi.VM{ID: v.ID, ConsoleRequests: 1}, log, false},
		{"tail", agentapi.VM{ID: v.ID, ConsoleRequests: 2, ConsoleTailBytes: 5}, log[len(log)-5:], true},
		{"more than there is", agentapi.VM{ID: v.ID, ConsoleRequests: 3, ConsoleTailBytes: 1 << 20}, log, false},
		{"not run here", agentapi.VM{ID: v.ID + "x", ConsoleRequests: 1}, nil, false},
	}
	for _, tt := range tests {
		up := consoleUpload(h, tt.vm)
		if up.ID != tt.vm.ID || up.Request != tt.vm.ConsoleRequests || !bytes.Equal(up.Log, tt.want) || up.Truncated != tt.truncated || up.Error != "" {
			t.Errorf("%s: consoleUpload = %+v, want log %q, truncated %v", tt.name, up, tt.want, tt.truncated)
		}
	}
}
