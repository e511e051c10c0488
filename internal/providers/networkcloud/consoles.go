package networkcloud

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// A virtual machine's console (virtualMachines/consoles, always named
// "default") says whether, until when and with which SSH key its serial
// console may be reached. Citadel serves the console's log through an
// action of its own, readLog: no inbound connection ever goes to a
// machine. The action raises a request count on the VM's entry in its
// machine's hidden list of VMs; the machine's agent sees it in its
// desired state and uploads the tail of the log over its mTLS agent API;
// the fleet writes it, hidden, to the console (reportedLog), only from
// the VM's host; the action returns it and takes it off the console, so
// that a log, which may show secrets, is kept only until it is read.

// consoleReportedLog is the console's hidden property the fleet writes
// the host's answer to (internal/fleet consoles.go): a consoleAnswer.
const consoleReportedLog = "reportedLog"

// What a readLog returns by default (at most agentapi.ConsoleMaxBytes),
// and how long it waits for the VM's host (less when VMTimeout is
// shorter).
const (
	defaultConsoleTail = 64 << 10
	consoleTimeout     = time.Minute
)

var consoleNamePattern = regexp.MustCompile(`^default$`)

var consoleReadOnly = []string{"detailedStatus", "detailedStatusMessage", "privateLinkServiceId", "virtualMachineAccessId", consoleReportedLog}

// consoleProperties are the properties of a console a user sets
// (ConsoleProperties).
type consoleProperties struct {
	Enabled      string `json:"enabled"`
	Expiration   string `json:"expiration"`
	SSHPublicKey *struct {
		KeyData string `json:"keyData"`
	} `json:"sshPublicKey"`
}

// consoleAnswer is a host's answer to a console request, as the fleet
// stores it: the log, unless the host could not read it (Error) or the
// log was read already.
type consoleAnswer struct {
	Request       int    `json:"request"`
	Log           string `json:"log,omitempty"`
	Truncated     bool   `json:"truncated,omitempty"`
	CollectedTime string `json:"collectedTime,omitempty"`
	Error         bool   `json:"error,omitempty"`
}

// consoleLogResult is what readLog returns, in its
// OperationStatusResult's properties.
type consoleLogResult struct {
	Log           string `json:"log"`
	Truncated     bool   `json:"truncated"`
	CollectedTime string `json:"collectedTime"`
}

// readLogInput is the body of readLog, a Citadel extension: how many of
// the log's last bytes to return.
type readLogInput struct {
	TailBytes int `json:"tailBytes"`
}

func (p *Provider) consoleType() *resource.Type {
	return &resource.Type{
		Namespace: Namespace, Name: "virtualMachines/consoles", APIVersions: APIVersions, Tracked: true,
		NamePattern: consoleNamePattern, NameRule: "A virtual machine's console is always named 'default'.",
		ReadOnly: consoleReadOnly, Reported: []string{consoleReportedLog}, Sensitive: []string{consoleReportedLog},
		Validate: p.validateConsole,
		Actions: map[string]resource.Action{
			"readLog": {Validate: p.validateReadLog, Run: p.readLog},
		},
	}
}

func consoleOf(r *resource.Resource) consoleProperties {
	var c consoleProperties
	decode(r.Properties, &c)
	return c
}

func answerOf(r *resource.Resource) consoleAnswer {
	var a consoleAnswer
	decode(r.Properties[consoleReportedLog], &a)
	return a
}

func (p *Provider) validateConsole(ctx context.Context, w *resource.Write) error {
	var c consoleProperties
	if err := resource.DecodeProperties(w.New, &c); err != nil {
		return err
	}
	var old *consoleProperties
	if w.Old != nil {
		o := consoleOf(w.Old)
		old = &o
	}
	if err := checkConsole(c, old, time.Now()); err != nil {
		return err
	}
	vmID, _ := w.ID.Parent()
	vm, err := p.svc.Lookup(ctx, vmID)
	if err != nil {
		return err
	}
	if err := p.consoleLocation(ctx, w.New, vm); err != nil {
		return err
	}
	props := w.New.Properties
	if str(props, "virtualMachineAccessId") == "" {
		props["virtualMachineAccessId"] = uuid.NewString()
	}
	props["detailedStatus"], props["detailedStatusMessage"] = "Ready", consoleMessage(c)
	if a := answerOf(w.New); c.Enabled != "True" && a.Log != "" {
		props[consoleReportedLog] = jsonValue(consoleAnswer{Request: a.Request}) // a disabled console keeps no log
	}
	return nil
}

// checkConsole checks what a user sets of a console. The expiration must
// be in the future when it is set or changed, or when the console is
// enabled again: an unchanged one may have passed.
func checkConsole(c consoleProperties, old *consoleProperties, now time.Time) error {
	if c.Enabled != "True" && c.Enabled != "False" {
		return arm.FieldError("properties.enabled", "enabled is required and must be True or False, not '%s'.", c.Enabled)
	}
	if c.Expiration != "" {
		at, err := time.Parse(time.RFC3339, c.Expiration)
		if err != nil {
			return arm.FieldError("properties.expiration", "expiration must be an RFC 3339 date and time, such as 2026-07-01T12:00:00Z, not '%s'.", c.Expiration)
		}
		changed := old == nil || old.Expiration != c.Expiration || c.Enabled == "True" && old.Enabled != "True"
		if changed && !at.After(now) {
			return arm.FieldError("properties.expiration", "expiration must be in the future; '%s' has passed.", c.Expiration)
		}
	}
	if c.SSHPublicKey == nil || c.SSHPublicKey.KeyData == "" {
		return arm.FieldError("properties.sshPublicKey.keyData", "sshPublicKey.keyData is required: the SSH public key of whoever may use the console.")
	}
	return checkSSHKey(c.SSHPublicKey.KeyData)
}

// maxKeyData bounds an SSH public key: an RSA key of 16384 bits is
// under 3 KiB.
const maxKeyData = 16 << 10

// checkSSHKey checks that keyData is one SSH public key, in the
// authorized_keys format, of an algorithm and size still considered
// safe.
func checkSSHKey(keyData string) error {
	const field = "properties.sshPublicKey.keyData"
	if len(keyData) > maxKeyData {
		return arm.FieldError(field, "keyData is longer than %d bytes; it must be one SSH public key.", maxKeyData)
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(keyData))
	if err != nil {
		return arm.FieldError(field, "keyData must be an SSH public key as authorized_keys holds it ('ssh-ed25519 AAAA... comment').")
	}
	switch {
	case len(options) > 0:
		return arm.FieldError(field, "keyData must be a public key without authorized_keys options.")
	case len(bytes.TrimSpace(rest)) > 0:
		return arm.FieldError(field, "keyData must hold one public key, not several.")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return arm.FieldError(field, "keyData must be a public key, not an SSH certificate.")
	}
	switch key.Type() {
	case ssh.InsecureKeyAlgoDSA:
		return arm.FieldError(field, "DSA keys are not accepted; use an Ed25519, ECDSA or RSA (2048 bits or more) key.")
	case ssh.KeyAlgoRSA:
		if ck, ok := key.(ssh.CryptoPublicKey); ok {
			if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
				return arm.FieldError(field, "The RSA key has %d bits; it must have 2048 or more.", rk.N.BitLen())
			}
		}
	}
	return nil
}

// consoleMessage is a console's detailedStatusMessage.
func consoleMessage(c consoleProperties) string {
	switch {
	case c.Enabled != "True":
		return "Console access is disabled."
	case c.Expiration != "":
		return "Console access is enabled until " + c.Expiration + "."
	}
	return "Console access is enabled."
}

// consoleLocation checks the console's extendedLocation: the custom
// location of the VM's cluster, or of that cluster's manager (where
// Azure puts consoles). Without one the console takes the VM's.
func (p *Provider) consoleLocation(ctx context.Context, console, vm *resource.Resource) error {
	if len(console.ExtendedLocation) == 0 {
		console.ExtendedLocation = vm.ExtendedLocation
		return nil
	}
	var el struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := arm.DecodeStrict(console.ExtendedLocation, &el); err != nil {
		return arm.FieldError("extendedLocation", "extendedLocation must be an object with name and type.")
	}
	if !strings.EqualFold(el.Type, "CustomLocation") {
		return arm.FieldError("extendedLocation.type", "extendedLocation.type must be 'CustomLocation', not '%s'.", el.Type)
	}
	cluster, err := arm.ParseID(vmOf(vm).ClusterID)
	if err != nil {
		return arm.Errorf(http.StatusConflict, "VirtualMachineNotReady", "Virtual machine '%s' has no cluster yet.", vm.Name)
	}
	allowed := []string{extendedlocation.ID(cluster).String()}
	if c, err := p.svc.Lookup(ctx, cluster); err == nil {
		if m, err := arm.ParseID(str(c.Properties, "clusterManagerId")); err == nil {
			allowed = append(allowed, extendedlocation.ID(m).String())
		}
	}
	for _, a := range allowed {
		if strings.EqualFold(a, el.Name) {
			return nil
		}
	}
	return arm.FieldError("extendedLocation.name", "A console's extendedLocation must be the custom location of its virtual machine's cluster or cluster manager (%s), not '%s'.",
		strings.Join(allowed, " or "), el.Name)
}

// decodeReadLogInput decodes readLog's body; no tailBytes is 64 KiB.
func decodeReadLogInput(input json.RawMessage) (readLogInput, error) {
	var in readLogInput
	if len(bytes.TrimSpace(input)) > 0 {
		if err := arm.DecodeStrict(input, &in); err != nil {
			return in, err
		}
	}
	if in.TailBytes == 0 {
		in.TailBytes = defaultConsoleTail
	}
	if in.TailBytes < 1 || in.TailBytes > agentapi.ConsoleMaxBytes {
		return in, arm.FieldError("tailBytes", "tailBytes must be from 1 to %d (1 MiB), not %d.", agentapi.ConsoleMaxBytes, in.TailBytes)
	}
	return in, nil
}

// consoleUsable refuses a readLog of a console that is disabled or has
// expired, or of a VM that runs nowhere yet.
func consoleUsable(console, vm *resource.Resource, now time.Time) *arm.Error {
	c := consoleOf(console)
	if c.Enabled != "True" {
		return arm.Errorf(http.StatusConflict, "ConsoleNotEnabled",
			"The console of virtual machine '%s' is not enabled; set its enabled to True first.", vm.Name)
	}
	if at, err := time.Parse(time.RFC3339, c.Expiration); err == nil && !now.Before(at) {
		return arm.Errorf(http.StatusConflict, "ConsoleExpired",
			"The console of virtual machine '%s' expired at %s; set a later expiration first.", vm.Name, c.Expiration)
	}
	if vmOf(vm).BareMetalMachineID == "" {
		return arm.Errorf(http.StatusConflict, "VirtualMachineNotPlaced", "Virtual machine '%s' is not placed on a machine yet.", vm.Name)
	}
	return nil
}

// consoleVM is the VM a console belongs to.
func (p *Provider) consoleVM(ctx context.Context, console *resource.Resource) (*resource.Resource, error) {
	id, err := arm.ParseID(console.ID)
	if err != nil {
		return nil, err
	}
	vmID, _ := id.Parent()
	return p.svc.Lookup(ctx, vmID)
}

func (p *Provider) validateReadLog(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	if _, err := decodeReadLogInput(input); err != nil {
		return err
	}
	vm, err := p.consoleVM(ctx, r)
	if err != nil {
		return err
	}
	if err := consoleUsable(r, vm, time.Now()); err != nil {
		return err
	}
	return nil
}

// readLog asks the VM's host for the tail of its console log and waits
// for the answer.
func (p *Provider) readLog(ctx context.Context, t *resource.Task) (any, error) {
	in, err := decodeReadLogInput(t.Op.Input)
	if err != nil {
		return nil, controller.Terminal(err)
	}
	vm, err := p.consoleVM(ctx, t.Resource)
	if err != nil {
		return nil, err
	}
	if err := consoleUsable(t.Resource, vm, time.Now()); err != nil {
		return nil, resource.Canceled(err) // expired, or the VM moved, since the request was accepted
	}
	host := vmOf(vm).BareMetalMachineID
	answered := answerOf(t.Resource).Request
	n := 0
	err = p.changeHosted(ctx, host, vm.ID, func(x *agentapi.VM) bool {
		x.ConsoleRequests = max(x.ConsoleRequests, answered) + 1
		x.ConsoleTailBytes = in.TailBytes
		n = x.ConsoleRequests
		return true
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, resource.Canceled(arm.Errorf(http.StatusConflict, "VirtualMachineNotPlaced", "Virtual machine '%s' is not on its machine's list.", vm.Name))
	}
	a, err := p.awaitConsoleLog(ctx, t, vm.Name, host, n)
	if err != nil {
		return nil, err
	}
	if err := p.takeConsoleLog(ctx, t, a.Request); err != nil {
		return nil, err
	}
	if a.Error {
		t.Resource.Properties["detailedStatus"] = "Error"
		t.Resource.Properties["detailedStatusMessage"] = "The host of the virtual machine could not read its console log at " + a.CollectedTime + "."
		return nil, resource.Canceled(arm.Errorf(http.StatusBadGateway, "ConsoleLogUnavailable",
			"The host of virtual machine '%s' could not read its console log; the operator can find why in the server log.", vm.Name))
	}
	t.Resource.Properties["detailedStatus"] = "Ready"
	t.Resource.Properties["detailedStatusMessage"] = consoleMessage(consoleOf(t.Resource))
	t.Note("tailBytes", strconv.Itoa(in.TailBytes))
	t.Note("logBytes", strconv.Itoa(len(a.Log)))
	return consoleLogResult{Log: a.Log, Truncated: a.Truncated, CollectedTime: a.CollectedTime}, nil
}

// awaitConsoleLog waits until the console holds the host's answer to
// request n, or gives up after consoleTimeout (VMTimeout if shorter).
func (p *Provider) awaitConsoleLog(ctx context.Context, t *resource.Task, vmName, host string, n int) (consoleAnswer, error) {
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return consoleAnswer{}, err
	}
	wait := min(consoleTimeout, p.cfg.VMTimeout)
	deadline := time.Now().Add(wait)
	for {
		r, err := p.svc.Lookup(ctx, id)
		if err != nil {
			return consoleAnswer{}, err
		}
		if a := answerOf(r); a.Request >= n {
			return a, nil
		}
		if time.Now().After(deadline) {
			t.Resource.Properties["detailedStatus"] = "Error"
			t.Resource.Properties["detailedStatusMessage"] = "The host of the virtual machine did not send its console log within " + wait.String() + "."
			return consoleAnswer{}, resource.Canceled(arm.Errorf(http.StatusGatewayTimeout, "ConsoleLogTimeout",
				"The host of virtual machine '%s' (%s) did not send its console log within %s; its agent may be unreachable.", vmName, host, wait))
		}
		select {
		case <-ctx.Done():
			return consoleAnswer{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// takeConsoleLog takes the log of the answer to request n off the
// console, once read: the request's number stays, so that the host's
// upload of it again changes nothing.
func (p *Provider) takeConsoleLog(ctx context.Context, t *resource.Task, n int) error {
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return err
	}
	taken := jsonValue(consoleAnswer{Request: n})
	_, err = p.svc.Upsert(ctx, id, func(r *resource.Resource, created bool) error {
		if created || answerOf(r).Request != n {
			return resource.ErrUnchanged
		}
		r.Properties[consoleReportedLog] = taken
		return nil
	})
	// The operation's end writes the console too: without the log, which
	// the result carries, so that the write stays small.
	t.Resource.Properties[consoleReportedLog] = taken
	return err
}
