package fleet

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/resource"
)

func TestConsoleText(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("0123456789abcdef"), agentapi.ConsoleMaxBytes/16+10)
	tests := []struct {
		name    string
		log     []byte
		want    string // the text, or its suffix for long ones
		wantLen int    // the text's length, when want is a suffix
		cut     bool
	}{
		{"empty", nil, "", 0, false},
		{"text", []byte("[sim] vm1 is up (boot 1)\n"), "[sim] vm1 is up (boot 1)\n", 0, false},
		{"invalid UTF-8", []byte("ok \xff\xfe done"), "ok \uFFFD done", 0, false},
		{"escapes kept", []byte("\x1b[32mOK\x1b[0m <&>"), "\x1b[32mOK\x1b[0m <&>", 0, false},
		{"longer than the most kept", long, "cdef", agentapi.ConsoleMaxBytes, true},
		{"cut inside a character", append(bytes.Repeat([]byte("é"), agentapi.ConsoleMaxBytes/2), 'x'), "éx", agentapi.ConsoleMaxBytes - 1, true},
		// Each '<' is 6 bytes of JSON: the text is cut to what fits.
		{"escapes cut to the JSON budget", bytes.Repeat([]byte("<"), agentapi.ConsoleMaxBytes), "<", maxConsoleJSON / 6, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := consoleText(tt.log)
			if tt.wantLen == 0 && got != tt.want || tt.wantLen > 0 && (len(got) != tt.wantLen || !strings.HasSuffix(got, tt.want)) || cut != tt.cut {
				t.Errorf("consoleText(%d bytes) = %d bytes ending %q, cut %v; want %q (%d bytes), cut %v",
					len(tt.log), len(got), got[max(0, len(got)-8):], cut, tt.want, tt.wantLen, tt.cut)
			}
			checkJSONSize(t, got)
		})
	}
}

// checkJSONSize checks that text is valid UTF-8 whose JSON fits the
// budget.
func checkJSONSize(t *testing.T, text string) {
	t.Helper()
	if !utf8.ValidString(text) {
		t.Errorf("the text is not valid UTF-8")
	}
	b, err := json.Marshal(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)-2 > maxConsoleJSON {
		t.Errorf("the text's JSON has %d bytes, more than %d", len(b)-2, maxConsoleJSON)
	}
}

func FuzzConsoleText(f *testing.F) {
	for _, s := range []string{"", "hello\n", "\xff\xfe", "<<>>&&", "\u2028\x00\x1b[0m", strings.Repeat("é", 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		text, cut := consoleText(log)
		checkJSONSize(t, text)
		if !cut && text != strings.ToValidUTF8(string(log), "\uFFFD") {
			t.Errorf("consoleText(%q) = %q, not cut, want the whole log", log, text)
		}
	})
}

func TestDecodeConsoleLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		says       string // "" for a success
	}{
		{"ok", `{"id":"` + vmID("a") + `","request":1,"log":"aGVsbG8="}`, ""},
		{"error", `{"id":"` + vmID("a") + `","request":3,"error":"permission denied"}`, ""},
		{"no request", `{"id":"` + vmID("a") + `"}`, "want 1 or more"},
		{"a machine", `{"id":"` + machineID("m1") + `","request":1}`, "not the ID of a virtual machine"},
		{"not an ID", `{"id":"vm1","request":1}`, "not the ID of a virtual machine"},
		{"log not base64", `{"id":"` + vmID("a") + `","request":1,"log":"%%%"}`, "illegal base64"},
		{"not JSON", `{`, "console log"},
		{"too large", `{"id":"` + vmID("a") + `","request":1,"log":"` + strings.Repeat("A", maxConsoleUpload) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		up, err := decodeConsoleLog(strings.NewReader(tt.body))
		switch {
		case tt.says == "" && err != nil:
			t.Errorf("%s: decodeConsoleLog = %v, want no error", tt.name, err)
		case tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)):
			t.Errorf("%s: decodeConsoleLog = %+v, %v; want an error saying %q", tt.name, up, err, tt.says)
		}
	}
}

func FuzzDecodeConsoleLog(f *testing.F) {
	f.Add(`{"id":"` + vmID("a") + `","request":1,"log":"aGVsbG8=","truncated":true}`)
	f.Add(`{"id":"` + vmID("a") + `","request":-1}`)
	f.Add(`{"id":"/subscriptions/x","request":2,"error":"x"}`)
	f.Fuzz(func(t *testing.T, body string) {
		up, err := decodeConsoleLog(strings.NewReader(body))
		if err != nil {
			return
		}
		if up.Request < 1 || !strings.Contains(strings.ToLower(up.ID), "/microsoft.networkcloud/virtualmachines/") {
			t.Errorf("decodeConsoleLog(%q) accepted %+v", body, up)
		}
	})
}

// TestWriteConsoleLog: a console log is written to the VM's console only
// from the VM's host, for a request that was made, while the console is
// enabled, and once per request.
func TestWriteConsoleLog(t *testing.T) {
	svc := newResources(t)
	svc.Register(&resource.Type{Namespace: "Microsoft.NetworkCloud", Name: "virtualMachines/consoles", APIVersions: []string{"2025-02-01"},
		Tracked: true, Sensitive: []string{propReportedLog}})
	s := New(Config{Resources: svc, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	m1 := peer{id: mustParse(t, machineID("m1")), name: machineID("m1")}
	m2 := peer{id: mustParse(t, machineID("m2")), name: machineID("m2")}
	console := vmID("a") + "/consoles/default"
	list := func(requests int) any {
		var v any
		if err := roundTrip([]agentapi.VM{{ID: vmID("a"), Name: "a", Power: "On", ConsoleRequests: requests}}, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	put(t, svc, machineID("m1"), map[string]any{"virtualMachines": list(2)})
	put(t, svc, machineID("m2"), map[string]any{})
	put(t, svc, vmID("a"), map[string]any{"bareMetalMachineId": machineID("m1")})
	answer := func() map[string]any {
		t.Helper()
		r, err := svc.Lookup(t.Context(), mustParse(t, console))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := r.Properties[propReportedLog].(map[string]any)
		return a
	}
	write := func(p peer, up agentapi.ConsoleLog, want int) {
		t.Helper()
		if got, err := s.writeConsoleLog(t.Context(), p, up); got != want {
			t.Errorf("writeConsoleLog(%s, request %d) = %d %v, want %d", p.id.Name(), up.Request, got, err, want)
		}
	}
	up := agentapi.ConsoleLog{ID: vmID("a"), Request: 1, Log: []byte("[sim] a is up (boot 1)\n")}

	write(m1, up, http.StatusNotFound) // no console yet
	put(t, svc, console, map[string]any{"enabled": "False"})
	write(m1, up, http.StatusConflict) // not enabled
	put(t, svc, console, map[string]any{"enabled": "True"})
	write(m2, up, http.StatusForbidden) // not the VM's host
	write(m1, agentapi.ConsoleLog{ID: vmID("a"), Request: 3}, http.StatusConflict)
	write(m1, agentapi.ConsoleLog{ID: vmID("gone"), Request: 1}, http.StatusNotFound)

	write(m1, up, http.StatusNoContent)
	if a := answer(); a["request"] != float64(1) || a["log"] != "[sim] a is up (boot 1)\n" || a["truncated"] != false || a["collectedTime"] == "" {
		t.Errorf("the console's answer = %v, want request 1's log", a)
	}
	// The same request again changes nothing: the first answer stands.
	again := up
	again.Log = []byte("something else")
	write(m1, again, http.StatusNoContent)
	if a := answer(); a["log"] != "[sim] a is up (boot 1)\n" {
		t.Errorf("a second answer to request 1 replaced the first: %v", a)
	}
	// A host that could not read the log says only that.
	write(m1, agentapi.ConsoleLog{ID: vmID("a"), Request: 2, Error: "open /var/lib/citadel/vms/x/console.log: permission denied"}, http.StatusNoContent)
	if a := answer(); a["request"] != float64(2) || a["error"] != true || a["log"] != nil {
		t.Errorf("the console's answer to a failed read = %v, want request 2, error, no log", a)
	}
}

// TestConsoleLogHandler: the handler takes uploads from machines only,
// and refuses a body that is too large before decoding it.
func TestConsoleLogHandler(t *testing.T) {
	svc := newResources(t)
	s := New(Config{Resources: svc, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	device := "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ManagedNetworkFabric/networkDevices/d1"
	tests := []struct {
		name string
		p    peer
		body string
		want int
	}{
		{"a network device", peer{id: mustParse(t, device), name: device}, `{}`, http.StatusForbidden},
		{"too large", peer{id: mustParse(t, machineID("m1")), name: machineID("m1")}, strings.Repeat(" ", maxConsoleUpload+1), http.StatusRequestEntityTooLarge},
		{"bad", peer{id: mustParse(t, machineID("m1")), name: machineID("m1")}, `{"id":"x","request":1}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		s.consoleLog(w, httptest.NewRequest(http.MethodPut, agentapi.PathConsole, strings.NewReader(tt.body)), tt.p)
		if w.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, w.Code, w.Body, tt.want)
		}
	}
}
