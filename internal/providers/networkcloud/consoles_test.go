package networkcloud

import (
	"context"
	"crypto/dsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// authorizedKey is pub as authorized_keys holds it, with a comment.
func authorizedKey(t testing.TB, pub any) string {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " user@example"
}

func ed25519Key(t testing.TB) (string, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, pub), priv
}

func TestCheckConsole(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	ed, priv := ed25519Key(t)
	other, _ := ed25519Key(t)
	rsaKey := func(bits int) string {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return authorizedKey(t, &k.PublicKey)
	}
	// A DSA key of the only size SSH knows; its numbers need not be a
	// real group to be refused.
	p, q := new(big.Int).Lsh(big.NewInt(1), 1023), new(big.Int).Lsh(big.NewInt(1), 159)
	dsaKey := authorizedKey(t, &dsa.PublicKey{Parameters: dsa.Parameters{P: p.Add(p, big.NewInt(1)), Q: q.Add(q, big.NewInt(1)), G: big.NewInt(2)}, Y: big.NewInt(3)})
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(ed))
	cert := &ssh.Certificate{Key: edPub, CertType: ssh.UserCert, ValidPrincipals: []string{"user"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, signer); err != nil {
		t.Fatal(err)
	}
	certKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))

	console := func(enabled, expiration, key string) consoleProperties {
		c := consoleProperties{Enabled: enabled, Expiration: expiration}
		if key != "-" {
			c.SSHPublicKey = &struct {
				KeyData string `json:"keyData"`
			}{key}
		}
		return c
	}
	future, past := "2026-07-02T00:00:00Z", "2026-06-30T00:00:00Z"
	tests := []struct {
		name   string
		c      consoleProperties
		old    *consoleProperties
		target string // the field named; "" for a success
		says   string
	}{
		{"enabled", console("True", "", ed), nil, "", ""},
		{"disabled, expiring", console("False", future, ed), nil, "", ""},
		{"expiration with an offset", console("True", "2026-07-01T14:30:00.5+02:00", ed), nil, "", ""},
		{"rsa 2048", console("True", "", rsaKey(2048)), nil, "", ""},
		{"key with surrounding space", console("True", "", "  "+ed+"\n"), nil, "", ""},
		{"no enabled", console("", "", ed), nil, "properties.enabled", "required"},
		{"enabled lower case", console("true", "", ed), nil, "properties.enabled", "True or False"},
		{"expiration not a time", console("True", "tomorrow", ed), nil, "properties.expiration", "RFC 3339"},
		{"expiration without a zone", console("True", "2026-07-02T00:00:00", ed), nil, "properties.expiration", "RFC 3339"},
		{"expiration past", console("True", past, ed), nil, "properties.expiration", "in the future"},
		{"expiration now", console("True", "2026-07-01T12:00:00Z", ed), nil, "properties.expiration", "in the future"},
		{"past expiration unchanged", console("False", past, ed), &consoleProperties{Enabled: "True", Expiration: past}, "", ""},
		{"past expiration enabled again", console("True", past, ed), &consoleProperties{Enabled: "False", Expiration: past}, "properties.expiration", "in the future"},
		{"past expiration changed", console("True", past, ed), &consoleProperties{Enabled: "True", Expiration: future}, "properties.expiration", "in the future"},
		{"no key", console("True", "", "-"), nil, "properties.sshPublicKey.keyData", "required"},
		{"empty key", console("True", "", ""), nil, "properties.sshPublicKey.keyData", "required"},
		{"not a key", console("True", "", "hello"), nil, "properties.sshPublicKey.keyData", "SSH public key"},
		{"private key", console("True", "", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"), nil,
			"properties.sshPublicKey.keyData", "SSH public key"},
		{"truncated key", console("True", "", ed[:40]), nil, "properties.sshPublicKey.keyData", "SSH public key"},
		{"two keys", console("True", "", ed+"\n"+other), nil, "properties.sshPublicKey.keyData", "one public key"},
		{"options", console("True", "", `command="/bin/sh" `+ed), nil, "properties.sshPublicKey.keyData", "without authorized_keys options"},
		{"certificate", console("True", "", certKey), nil, "properties.sshPublicKey.keyData", "not an SSH certificate"},
		{"rsa 1024", console("True", "", rsaKey(1024)), nil, "properties.sshPublicKey.keyData", "1024 bits"},
		{"dsa", console("True", "", dsaKey), nil, "properties.sshPublicKey.keyData", "DSA"},
		{"huge", console("True", "", ed+strings.Repeat(" ", maxKeyData)), nil, "properties.sshPublicKey.keyData", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkConsole(tt.c, tt.old, now)
			if tt.target == "" {
				if err != nil {
					t.Errorf("checkConsole(%+v) = %v, want nil", tt.c, err)
				}
				return
			}
			wantError(t, "checkConsole", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, tt.target, tt.says)
		})
	}
}

func FuzzCheckSSHKey(f *testing.F) {
	ed, _ := ed25519Key(f)
	for _, s := range []string{ed, "ssh-rsa AAAA", `no-pty ` + ed, ed + "\n" + ed, "# comment\n" + ed, "", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, keyData string) {
		if err := checkSSHKey(keyData); err != nil {
			if ae, ok := err.(*arm.Error); !ok || ae.Target != "properties.sshPublicKey.keyData" {
				t.Errorf("checkSSHKey(%q) = %v, want a field error naming keyData", keyData, err)
			}
			return
		}
		key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(keyData))
		if err != nil || len(options) > 0 || strings.TrimSpace(string(rest)) != "" || key.Type() == ssh.InsecureKeyAlgoDSA {
			t.Errorf("checkSSHKey(%q) accepted a key that is not one safe public key", keyData)
		}
	})
}

func TestDecodeReadLogInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want int    // tailBytes
		says string // "" for a success
	}{
		{``, defaultConsoleTail, ""},
		{`{}`, defaultConsoleTail, ""},
		{`{"tailBytes":0}`, defaultConsoleTail, ""},
		{`{"tailBytes":1}`, 1, ""},
		{`{"tailBytes":1048576}`, 1 << 20, ""},
		{`{"tailBytes":1048577}`, 0, "1 to 1048576"},
		{`{"tailBytes":-5}`, 0, "1 to 1048576"},
		{`{"tailBytes":"10"}`, 0, "expected number"},
		{`{"tailBytes":1.5}`, 0, "tailBytes"},
		{`[]`, 0, "deserialized"},
	}
	for _, tt := range tests {
		in, err := decodeReadLogInput(json.RawMessage(tt.body))
		switch {
		case tt.says == "" && (err != nil || in.TailBytes != tt.want):
			t.Errorf("decodeReadLogInput(%s) = %+v, %v; want tailBytes %d", tt.body, in, err, tt.want)
		case tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)):
			t.Errorf("decodeReadLogInput(%s) = %+v, %v; want an error saying %q", tt.body, in, err, tt.says)
		}
	}
}

func FuzzDecodeReadLogInput(f *testing.F) {
	for _, s := range []string{`{}`, `{"tailBytes":100}`, `{"tailBytes":-1}`, `{"tailBytes":1e9}`, ``, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		in, err := decodeReadLogInput(json.RawMessage(body))
		if err == nil && (in.TailBytes < 1 || in.TailBytes > agentapi.ConsoleMaxBytes) {
			t.Errorf("decodeReadLogInput(%q) accepted tailBytes %d", body, in.TailBytes)
		}
	})
}

// consoleEnv is the provider on a real store, its operations running, with
// a machine m1 of the cluster that runs a VM vm1.
type consoleEnv struct {
	*netEnv
	machine, vm, console string
	key                  string // an SSH public key
}

func newConsoleEnv(t *testing.T, vmTimeout time.Duration) *consoleEnv {
	t.Helper()
	e := &consoleEnv{netEnv: newNetEnv(t), machine: networkID("bareMetalMachines", "m1"), vm: networkID("virtualMachines", "vm1")}
	e.console = e.vm + "/consoles/default"
	e.key, _ = ed25519Key(t)
	if vmTimeout > 0 {
		e.p.cfg.VMTimeout = vmTimeout
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.svc.RunOperations(ctx, "test"); err != nil {
			t.Errorf("RunOperations = %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	e.upsert(t, e.machine, map[string]any{"clusterId": clusterID,
		machineVMs: jsonValue([]agentapi.VM{{ID: e.vm, Name: "vm1", Power: "On", Cores: 2, MemoryMiB: 1024}})})
	el, _ := json.Marshal(e.el)
	if _, err := e.svc.Upsert(t.Context(), mustID(e.vm), func(r *resource.Resource, _ bool) error {
		r.ExtendedLocation = el
		r.Properties = map[string]any{"clusterId": clusterID, "bareMetalMachineId": e.machine, "powerState": "On"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// putConsole PUTs the console with body and answers the response's
// resource.
func (e *consoleEnv) putConsole(t *testing.T, id string, body map[string]any) (*resource.Resource, error) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := e.svc.Put(t.Context(), e.req(t, id, APIVersions[0], string(b)))
	if err != nil {
		return nil, err
	}
	return resp.Body.(*resource.Resource), nil
}

func (e *consoleEnv) consoleBody(enabled string) map[string]any {
	return map[string]any{"location": "local", "properties": map[string]any{"enabled": enabled, "sshPublicKey": map[string]any{"keyData": e.key}}}
}

// playHost answers, as the VM's host and the fleet would, every console
// request on the machine's list with the tail of log, or with an error,
// until the test ends.
func (e *consoleEnv) playHost(t *testing.T, log string, failed bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		answered := 0
		for ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			m, err := e.svc.Lookup(ctx, mustID(e.machine))
			if err != nil {
				continue
			}
			for _, x := range hostedVMs(m) {
				if x.ConsoleRequests <= answered {
					continue
				}
				tail := min(x.ConsoleTailBytes, len(log))
				a := consoleAnswer{Request: x.ConsoleRequests, Log: log[len(log)-tail:], Truncated: tail < len(log), CollectedTime: now(), Error: failed}
				if failed {
					a.Log, a.Truncated = "", false
				}
				if _, err := e.svc.Upsert(ctx, mustID(e.console), func(r *resource.Resource, created bool) error {
					if created {
						return resource.ErrUnchanged
					}
					r.Properties[consoleReportedLog] = jsonValue(a)
					return nil
				}); err == nil {
					answered = x.ConsoleRequests
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// readLog starts readLog on the console with body and waits for its end.
func (e *consoleEnv) readLog(t *testing.T, body string) (opStatus, error) {
	t.Helper()
	resp, err := e.svc.Action(t.Context(), e.req(t, e.console, APIVersions[0], body), "readLog")
	if err != nil {
		return opStatus{}, err
	}
	u, err := url.Parse(resp.Header.Get("Azure-AsyncOperation"))
	if err != nil {
		t.Fatal(err)
	}
	op := path.Base(u.Path)
	req := &resource.Request{Caller: resource.Caller{ObjectID: "oid", Name: "tester", Type: "User"}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.svc.OperationStatus(t.Context(), req, testSub, op)
		if err != nil {
			t.Fatalf("OperationStatus(%s): %v", op, err)
		}
		b, _ := json.Marshal(resp.Body)
		var st opStatus
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.Status != resource.OpInProgress {
			return st, nil
		}
		if time.Now().After(deadline) {
			t.Fatalf("readLog %s did not end", op)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// opStatus is the part of an operation's status the tests read.
type opStatus struct {
	Status     string           `json:"status"`
	Error      *arm.Error       `json:"error"`
	Properties consoleLogResult `json:"properties"`
}

func (e *consoleEnv) stored(t *testing.T, id string) *resource.Resource {
	t.Helper()
	r, err := e.svc.Lookup(t.Context(), mustID(id))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConsolePut: a console is named default, belongs to an existing VM,
// takes the VM's custom location or its cluster manager's, and gets an
// access ID that stays.
func TestConsolePut(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, 0)
	r, err := e.putConsole(t, e.console, e.consoleBody("True"))
	if err != nil {
		t.Fatalf("Put(console) = %v", err)
	}
	accessID := str(r.Properties, "virtualMachineAccessId")
	if _, err := uuid.Parse(accessID); err != nil {
		t.Errorf("virtualMachineAccessId = %q, want a UUID", accessID)
	}
	if str(r.Properties, "detailedStatus") != "Ready" || str(r.Properties, "detailedStatusMessage") != "Console access is enabled." {
		t.Errorf("console after its creation: %v", r.Properties)
	}
	if vm := e.stored(t, e.vm); string(r.ExtendedLocation) != string(vm.ExtendedLocation) {
		t.Errorf("extendedLocation = %s, want the VM's %s", r.ExtendedLocation, vm.ExtendedLocation)
	}
	body := e.consoleBody("False")
	body["properties"].(map[string]any)["virtualMachineAccessId"] = "mine"
	if r, err = e.putConsole(t, e.console, body); err != nil {
		t.Fatalf("Put(console disabled) = %v", err)
	}
	if got := str(r.Properties, "virtualMachineAccessId"); got != accessID {
		t.Errorf("virtualMachineAccessId after an update = %q, want %q", got, accessID)
	}
	if got := str(r.Properties, "detailedStatusMessage"); got != "Console access is disabled." {
		t.Errorf("detailedStatusMessage of a disabled console = %q", got)
	}

	// The cluster manager's custom location is a console's too.
	cm := testGroup + "/providers/" + clusterManagerType + "/cm1"
	e.upsert(t, clusterID, map[string]any{"clusterManagerId": cm})
	cmLocation, err := extendedlocation.Ensure(t.Context(), e.svc, mustID(cm))
	if err != nil {
		t.Fatal(err)
	}
	other := networkID("virtualMachines", "vm2")
	el, _ := json.Marshal(e.el)
	for _, id := range []string{other, networkID("virtualMachines", "vm3")} {
		if _, err := e.svc.Upsert(t.Context(), mustID(id), func(r *resource.Resource, _ bool) error {
			r.ExtendedLocation = el
			r.Properties = map[string]any{"clusterId": clusterID}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	body = e.consoleBody("True")
	body["extendedLocation"] = cmLocation
	if _, err := e.putConsole(t, other+"/consoles/default", body); err != nil {
		t.Errorf("Put(console in the cluster manager's location) = %v", err)
	}

	elsewhere := e.consoleBody("True")
	elsewhere["extendedLocation"] = extendedlocation.Value(mustID(testGroup + "/providers/" + extendedlocation.TypeName + "/other"))
	_, err = e.putConsole(t, e.console, elsewhere)
	wantError(t, "Put(console in another location)", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "extendedLocation", "cannot change")
	_, err = e.putConsole(t, networkID("virtualMachines", "vm3")+"/consoles/default", elsewhere)
	wantError(t, "Put(console in another location)", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "extendedLocation.name", "custom location of its virtual machine's cluster")
	_, err = e.putConsole(t, e.vm+"/consoles/serial", e.consoleBody("True"))
	wantError(t, "Put(console named serial)", err, http.StatusBadRequest, arm.CodeInvalidResourceName, "name", "always named 'default'")
	_, err = e.putConsole(t, networkID("virtualMachines", "nope")+"/consoles/default", e.consoleBody("True"))
	wantError(t, "Put(console of a missing VM)", err, http.StatusNotFound, arm.CodeParentResourceNotFound, "")
	bad := e.consoleBody("True")
	bad["properties"].(map[string]any)["sshPublicKey"] = map[string]any{"keyData": "ssh-ed25519 nope"}
	_, err = e.putConsole(t, e.console, bad)
	wantError(t, "Put(console with a bad key)", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "properties.sshPublicKey.keyData")
	bad = e.consoleBody("True")
	bad["properties"].(map[string]any)["enabled"] = true
	_, err = e.putConsole(t, e.console, bad)
	wantError(t, "Put(console with enabled true)", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "properties.enabled")
}

// TestReadLog: readLog asks the VM's host for the tail of the log, returns
// its answer and keeps none of it; it is refused while the console is
// disabled or expired, or the VM runs nowhere.
func TestReadLog(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, 0)
	const log = "[sim] vm1 starting (boot 1)\n[sim] vm1 is up (boot 1)\n"
	e.playHost(t, log, false)
	if _, err := e.putConsole(t, e.console, e.consoleBody("True")); err != nil {
		t.Fatal(err)
	}

	st, err := e.readLog(t, `{}`)
	if err != nil || st.Status != resource.OpSucceeded {
		t.Fatalf("readLog = %+v, %v; want it to succeed", st, err)
	}
	if got := st.Properties; got.Log != log || got.Truncated || got.CollectedTime == "" {
		t.Errorf("readLog = %+v, want the whole log", got)
	}
	if x := hostedVMs(e.stored(t, e.machine))[0]; x.ConsoleRequests != 1 || x.ConsoleTailBytes != defaultConsoleTail {
		t.Errorf("the VM's entry on its machine asks for request %d of %d bytes, want 1 of %d", x.ConsoleRequests, x.ConsoleTailBytes, defaultConsoleTail)
	}
	if a := answerOf(e.stored(t, e.console)); a != (consoleAnswer{Request: 1}) {
		t.Errorf("the console holds %+v after the log was read, want only the request's number", a)
	}

	st, err = e.readLog(t, `{"tailBytes":9}`)
	if err != nil || st.Status != resource.OpSucceeded {
		t.Fatalf("readLog(9 bytes) = %+v, %v; want it to succeed", st, err)
	}
	if got := st.Properties; got.Log != "(boot 1)\n" || !got.Truncated {
		t.Errorf("readLog(9 bytes) = %+v, want the last 9 bytes, truncated", got)
	}

	resp, err := e.svc.Get(t.Context(), e.req(t, e.console, APIVersions[0], ""))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(resp.Body); strings.Contains(string(b), consoleReportedLog) {
		t.Errorf("GET console shows %s: %s", consoleReportedLog, b)
	}

	_, err = e.svc.Action(t.Context(), e.req(t, e.console, APIVersions[0], `{"tailBytes":2000000}`), "readLog")
	wantError(t, "readLog(2 MB)", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "tailBytes", "1 MiB")

	e.upsert(t, e.console, map[string]any{"expiration": "2020-01-01T00:00:00Z"})
	_, err = e.readLog(t, `{}`)
	wantError(t, "readLog(expired)", err, http.StatusConflict, "ConsoleExpired", "", "2020-01-01T00:00:00Z")

	e.upsert(t, e.console, map[string]any{"expiration": nil})
	e.upsert(t, e.vm, map[string]any{"bareMetalMachineId": ""})
	_, err = e.readLog(t, `{}`)
	wantError(t, "readLog(not placed)", err, http.StatusConflict, "VirtualMachineNotPlaced", "")

	// A disabled console refuses, and keeps no log the host sent late.
	e.upsert(t, e.vm, map[string]any{"bareMetalMachineId": e.machine})
	e.upsert(t, e.console, map[string]any{consoleReportedLog: jsonValue(consoleAnswer{Request: 9, Log: "late"})})
	if _, err := e.putConsole(t, e.console, e.consoleBody("False")); err != nil {
		t.Fatal(err)
	}
	if a := answerOf(e.stored(t, e.console)); a != (consoleAnswer{Request: 9}) {
		t.Errorf("a disabled console holds %+v, want no log", a)
	}
	_, err = e.readLog(t, `{}`)
	wantError(t, "readLog(disabled)", err, http.StatusConflict, "ConsoleNotEnabled", "", "enabled to True")
}

// TestReadLogHostSilent: a host that does not answer fails the read after
// the timeout, and the console says so.
func TestReadLogHostSilent(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, 300*time.Millisecond)
	if _, err := e.putConsole(t, e.console, e.consoleBody("True")); err != nil {
		t.Fatal(err)
	}
	st, err := e.readLog(t, `{}`)
	if err != nil || st.Status != resource.OpCanceled || st.Error == nil || st.Error.Code != "ConsoleLogTimeout" {
		t.Fatalf("readLog = %+v (%+v), %v; want it Canceled with ConsoleLogTimeout", st, st.Error, err)
	}
	if c := e.stored(t, e.console); str(c.Properties, "detailedStatus") != "Error" {
		t.Errorf("console after a timeout: %v, want detailedStatus Error", c.Properties)
	}
}

// TestReadLogHostFailed: a host that cannot read the log fails the read
// without saying why to the caller.
func TestReadLogHostFailed(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, 0)
	e.playHost(t, "", true)
	if _, err := e.putConsole(t, e.console, e.consoleBody("True")); err != nil {
		t.Fatal(err)
	}
	st, err := e.readLog(t, `{}`)
	if err != nil || st.Status != resource.OpCanceled || st.Error == nil || st.Error.Code != "ConsoleLogUnavailable" {
		t.Fatalf("readLog = %+v (%+v), %v; want it Canceled with ConsoleLogUnavailable", st, st.Error, err)
	}
	if c := e.stored(t, e.console); str(c.Properties, "detailedStatus") != "Error" {
		t.Errorf("console after a failed read: %v, want detailedStatus Error", c.Properties)
	}
}
