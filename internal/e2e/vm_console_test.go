package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/citadel-cloud/citadel/internal/sim"
)

// TestVMConsole reads a VM's serial console log through az on a
// simulated site: the VM's console is created (bad input refused naming
// the field), its log read with the console's readLog action comes from
// the VM's host through its agent, shows each boot, and is kept nowhere;
// a disabled console refuses.
func TestVMConsole(t *testing.T) {
	requireAz(t)
	t.Parallel()
	s := startVMSite(t, sim.Spec{Name: "vmconsole", ComputeRacks: 3, MachinesPerRack: 1})
	az := newAzCLI(t, s.cp)
	t.Cleanup(func() { az.logTimings(t) })
	az.login(t, s.cp.Creds)
	nc, location := s.nc, s.location
	vm := nc + "virtualMachines/vm1"
	az.ok(t, createNC(vm, jsonArg(t, s.vmBody(2, 4)))...)

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshKey, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyData := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshKey))) + " operator@example"
	console := vm + "/consoles/default"
	consoleBody := func(enabled, expiration, key string) string {
		props := map[string]any{"enabled": enabled, "sshPublicKey": map[string]any{"keyData": key}}
		if expiration != "" {
			props["expiration"] = expiration
		}
		return jsonArg(t, map[string]any{"location": "local", "properties": props})
	}
	create := func(id, body string) []string {
		return []string{"resource", "create", "--id", id, "--api-version", ncAPI, "--is-full-object", "-p", body}
	}
	type consoleResource struct {
		ExtendedLocation map[string]string `json:"extendedLocation"`
		Properties       map[string]any    `json:"properties"`
	}
	type logResult struct {
		Log           string `json:"log"`
		Truncated     bool   `json:"truncated"`
		CollectedTime string `json:"collectedTime"`
	}
	readLog := func(body string) logResult {
		t.Helper()
		var out struct {
			Status     string    `json:"status"`
			Properties logResult `json:"properties"`
		}
		az.json(t, &out, "resource", "invoke-action", "--ids", console, "--action", "readLog", "--api-version", ncAPI, "--request-body", body)
		if out.Status != "Succeeded" {
			t.Fatalf("readLog %s: status %q", body, out.Status)
		}
		return out.Properties
	}
	readLogFails := func(body string, wants ...string) {
		t.Helper()
		az.fail(t, wants, "resource", "invoke-action", "--ids", console, "--action", "readLog", "--api-version", ncAPI, "--request-body", body)
	}

	// Bad input is refused naming the field, and creates nothing.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	az.fail(t, []string{"properties.sshPublicKey.keyData", "SSH public key"}, create(console, consoleBody("True", "", "ssh-ed25519 not-a-key"))...)
	az.fail(t, []string{"properties.expiration", "in the future"}, create(console, consoleBody("True", "2020-01-01T00:00:00Z", keyData))...)
	az.fail(t, []string{"properties.enabled", "True or False"}, create(console, consoleBody("Yes", "", keyData))...)
	az.fail(t, []string{"InvalidResourceName", "always named 'default'"}, create(vm+"/consoles/serial", consoleBody("True", "", keyData))...)
	az.fail(t, []string{"ParentResourceNotFound"}, create(nc+"virtualMachines/nope/consoles/default", consoleBody("True", "", keyData))...)

	var created consoleResource
	az.json(t, &created, create(console, consoleBody("True", future, keyData))...)
	if created.Properties["detailedStatus"] != "Ready" || created.Properties["enabled"] != "True" || created.Properties["provisioningState"] != "Succeeded" {
		t.Errorf("the console after its creation: %v", created.Properties)
	}
	if _, err := uuid.Parse(created.Properties["virtualMachineAccessId"].(string)); err != nil {
		t.Errorf("virtualMachineAccessId = %v, want a UUID", created.Properties["virtualMachineAccessId"])
	}
	if created.ExtendedLocation["name"] != location["name"] {
		t.Errorf("the console's extendedLocation = %v, want its VM's %v", created.ExtendedLocation, location)
	}

	// The log comes from the VM's host, which the simulated driver writes
	// at each boot.
	got := readLog(`{}`)
	if !strings.Contains(got.Log, "[sim] vm1 starting (boot 1)") || !strings.Contains(got.Log, "[sim] vm1 is up (boot 1)") || got.Truncated {
		t.Errorf("readLog = %+v, want vm1's first boot, whole", got)
	}
	if at, err := time.Parse(time.RFC3339, got.CollectedTime); err != nil || time.Since(at) > time.Minute {
		t.Errorf("collectedTime = %q, want the time now", got.CollectedTime)
	}
	// Each read asks the host again: a restart shows.
	az.ok(t, "resource", "invoke-action", "--ids", vm, "--action", "restart", "--api-version", ncAPI, "--request-body", "{}")
	got = readLog(`{"tailBytes": 4096}`)
	if !strings.Contains(got.Log, "[sim] vm1 restarting (boot 2)") || !strings.Contains(got.Log, "[sim] vm1 is up (boot 2)") {
		t.Errorf("readLog after a restart = %q, want the second boot", got.Log)
	}
	got = readLog(`{"tailBytes": 10}`)
	if len(got.Log) != 10 || !got.Truncated || !strings.HasSuffix(got.Log, "(boot 2)\n") {
		t.Errorf("readLog of 10 bytes = %+v, want the last 10 bytes, truncated", got)
	}
	readLogFails(`{"tailBytes": 2000000}`, "tailBytes", "1 MiB")

	// The log is shown only to the action's caller: the console keeps none.
	shown := az.ok(t, "resource", "show", "--ids", console, "--api-version", ncAPI)
	if strings.Contains(shown, "[sim]") || strings.Contains(shown, "reportedLog") {
		t.Errorf("az resource show of the console shows its log: %s", shown)
	}

	// A disabled console refuses to read.
	az.ok(t, create(console, consoleBody("False", future, keyData))...)
	readLogFails(`{}`, "is not enabled", "enabled to True")
	az.ok(t, "resource", "delete", "--ids", console, "--api-version", ncAPI)
}
