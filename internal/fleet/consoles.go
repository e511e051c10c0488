package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// A VM's console log comes from the agent of the machine the VM is placed
// on, in answer to a console request (agentapi.VM.ConsoleRequests, raised
// by the console's readLog action): the fleet writes it to the VM's
// console resource, hidden, where the action waits for it. It takes an
// upload only from the VM's host, only for a request that was made, only
// while the console is enabled, and only once per request; it keeps at
// most agentapi.ConsoleMaxBytes of the log, as valid UTF-8 whose JSON
// fits a store write.

// machineType is the ARM type of the machines whose agents upload logs;
// propMachineVMs is their hidden list of the VMs they run, with the
// console requests made of each (desiredProps).
const (
	machineType    = "Microsoft.NetworkCloud/bareMetalMachines"
	propMachineVMs = "virtualMachines"
)

// The properties of a console the fleet reads and writes.
const (
	consoleName        = "default"
	propConsoleEnabled = "enabled"     // read: "True" while the console may be used
	propReportedLog    = "reportedLog" // hidden: the host's answer to the last request
)

// maxConsoleJSON bounds the JSON string of a log the fleet stores: a
// store write (1.5 MiB at most) holds it and the rest of the console,
// and so does the readLog operation's result. Escapes make a byte of a
// log up to 6 bytes of JSON.
const maxConsoleJSON = agentapi.ConsoleMaxBytes * 5 / 4

// maxConsoleUpload bounds the body of an upload: the log in base64 and
// the rest.
const maxConsoleUpload = agentapi.ConsoleMaxBytes*4/3 + 64<<10

// errUploadTooLarge is why an upload longer than maxConsoleUpload is
// refused.
var errUploadTooLarge = fmt.Errorf("the upload is larger than %d bytes", maxConsoleUpload)

// consoleLog takes a host's answer to a console request.
func (s *Server) consoleLog(w http.ResponseWriter, r *http.Request, p peer) {
	if !strings.EqualFold(p.id.Type(), machineType) {
		fail(w, http.StatusForbidden, errors.New("only machines' agents may send console logs"))
		return
	}
	up, err := decodeConsoleLog(r.Body)
	switch {
	case errors.Is(err, errUploadTooLarge):
		fail(w, http.StatusRequestEntityTooLarge, err)
		return
	case err != nil:
		fail(w, http.StatusBadRequest, err)
		return
	}
	status, err := s.writeConsoleLog(r.Context(), p, up)
	if err != nil {
		if status >= 500 {
			s.log.WarnContext(r.Context(), "fleet: console log not written", "machine", p.name, "vm", up.ID, "err", err)
		}
		fail(w, status, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeConsoleLog reads an upload of at most maxConsoleUpload bytes and
// checks what it names.
func decodeConsoleLog(body io.Reader) (agentapi.ConsoleLog, error) {
	var up agentapi.ConsoleLog
	b, err := io.ReadAll(io.LimitReader(body, maxConsoleUpload+1))
	if err != nil {
		return up, err
	}
	if len(b) > maxConsoleUpload {
		return up, errUploadTooLarge
	}
	if err := json.Unmarshal(b, &up); err != nil {
		return up, fmt.Errorf("console log: %w", err)
	}
	id, err := arm.ParseID(up.ID)
	if err != nil || !strings.EqualFold(id.Type(), vmType) {
		return up, fmt.Errorf("console log: %q is not the ID of a virtual machine", up.ID)
	}
	if up.Request < 1 {
		return up, fmt.Errorf("console log: request %d: want 1 or more", up.Request)
	}
	return up, nil
}

// writeConsoleLog writes up to its VM's console if p may answer it, and
// says with which status it refused otherwise.
func (s *Server) writeConsoleLog(ctx context.Context, p peer, up agentapi.ConsoleLog) (int, error) {
	vmID, _ := arm.ParseID(up.ID) // checked by decodeConsoleLog
	vm, err := s.cfg.Resources.Lookup(ctx, vmID)
	if e, ok := errors.AsType[*arm.Error](err); ok && e.Status == http.StatusNotFound {
		return http.StatusNotFound, fmt.Errorf("vm %s: not found", up.ID)
	} else if err != nil {
		return http.StatusInternalServerError, err
	}
	if !strings.EqualFold(str(vm.Properties, propVMHost), p.name) {
		return http.StatusForbidden, fmt.Errorf("vm %s is not placed on this machine", up.ID)
	}
	m, err := s.cfg.Resources.Lookup(ctx, p.id)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	if asked := consoleRequests(m, vm.ID); up.Request > asked {
		return http.StatusConflict, fmt.Errorf("vm %s: console request %d was not made (the last is %d)", up.ID, up.Request, asked)
	}
	if up.Error != "" {
		s.log.WarnContext(ctx, "fleet: a host could not read a console log", "machine", p.name, "vm", vm.ID, "request", up.Request,
			"err", up.Error[:min(len(up.Error), 1024)])
	}
	answer := map[string]any{"request": up.Request, "collectedTime": s.cfg.Now().UTC().Format(time.RFC3339)}
	if up.Error != "" {
		answer["error"] = true
	} else {
		text, cut := consoleText(up.Log)
		answer["log"], answer["truncated"] = text, up.Truncated || cut
	}
	status := http.StatusNoContent
	_, err = s.cfg.Resources.Upsert(ctx, vmID.Child("consoles", consoleName), func(c *resource.Resource, created bool) error {
		status = http.StatusNoContent
		switch {
		case created:
			status = http.StatusNotFound
			return resource.ErrUnchanged
		case str(c.Properties, propConsoleEnabled) != "True":
			status = http.StatusConflict
			return resource.ErrUnchanged
		}
		if done, _ := number(answerRequest(c.Properties[propReportedLog])); done >= up.Request {
			return resource.ErrUnchanged // answered already: the first answer stands
		}
		c.Properties[propReportedLog] = answer
		return nil
	})
	switch {
	case err != nil:
		return http.StatusInternalServerError, err
	case status == http.StatusNotFound:
		return status, fmt.Errorf("vm %s has no console", up.ID)
	case status == http.StatusConflict:
		return status, fmt.Errorf("the console of vm %s is not enabled", up.ID)
	}
	return status, nil
}

// consoleRequests is the console request count of the VM vm in machine
// m's list of VMs, 0 when m does not list it.
func consoleRequests(m *resource.Resource, vm string) int {
	var list []agentapi.VM
	b, _ := json.Marshal(m.Properties[propMachineVMs])
	json.Unmarshal(b, &list)
	for _, x := range list {
		if strings.EqualFold(x.ID, vm) {
			return x.ConsoleRequests
		}
	}
	return 0
}

// answerRequest is the request number of a stored answer.
func answerRequest(v any) any {
	m, _ := v.(map[string]any)
	return m["request"]
}

// consoleText turns an uploaded log into the text the console keeps: its
// last agentapi.ConsoleMaxBytes at most, valid UTF-8 (invalid bytes
// become U+FFFD), cut further at the front until its JSON string has at
// most maxConsoleJSON bytes. cut says whether anything was cut.
func consoleText(log []byte) (text string, cut bool) {
	if len(log) > agentapi.ConsoleMaxBytes {
		log, cut = log[len(log)-agentapi.ConsoleMaxBytes:], true
	}
	if cut {
		// Do not start in the middle of a character.
		for i := 0; i < utf8.UTFMax && len(log) > 0 && !utf8.RuneStart(log[0]); i++ {
			log = log[1:]
		}
	}
	text = strings.ToValidUTF8(string(log), "\uFFFD")
	size, start := 0, len(text)
	for start > 0 {
		r, n := utf8.DecodeLastRuneInString(text[:start])
		if size+jsonSize(r, n) > maxConsoleJSON {
			return text[start:], true
		}
		size += jsonSize(r, n)
		start -= n
	}
	return text, cut
}

// jsonSize is how many bytes encoding/json writes for the rune r of n
// bytes in a string (at most: \b and \f count as \u0008 and \u000c).
func jsonSize(r rune, n int) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return 6
	}
	return n
}
