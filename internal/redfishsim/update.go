package redfishsim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Firmware updates: see "Firmware packages" in the package documentation.

// packageMagic starts the first line of a simulated firmware package.
const packageMagic = "citadel-firmware"

const (
	// updateTimeout bounds the fetch of a firmware package.
	updateTimeout = 10 * time.Minute
	// maxPackage bounds what a task reads of a package.
	maxPackage = 1 << 30
	// taskRetryAfter is the Retry-After of a task monitor, in seconds.
	taskRetryAfter = "1"
)

// simpleUpdate answers #UpdateService.SimpleUpdate.
func (b *BMC) simpleUpdate(w http.ResponseWriter, r *http.Request, body []byte) error {
	const action = "UpdateService.SimpleUpdate"
	in, err := newParams(action, body)
	if err != nil {
		return err
	}
	b.mu.Lock()
	protocols := b.updateProtocols()
	inventory := b.firmwareInventory()
	b.mu.Unlock()
	image := in.str("ImageURI", true, nil)
	in.str("TransferProtocol", false, protocols)
	targets := in.strs("Targets", nil)
	in.str("Username", false, nil)
	in.str("Password", false, nil)
	if err := in.err(); err != nil {
		return err
	}
	if u, err := url.Parse(image); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return refuse(http.StatusBadRequest, msg("ActionParameterValueFormatError", jsonText(image), "ImageURI", action))
	}
	for i, t := range targets {
		targets[i] = cleanPath(t)
		if !slices.Contains(inventory, targets[i]) {
			return refuse(http.StatusBadRequest, msg("ResourceMissingAtURI", t))
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.taskID++
	id := strconv.Itoa(b.taskID)
	p := b.tasksPath + "/" + id
	monitor := p + "/Monitor"
	b.put(p, obj{
		"@odata.id": p, "@odata.type": "#Task.v1_7_4.Task", "Id": id, "Name": "Firmware update " + id,
		"TaskState": "Running", "TaskStatus": "OK", "PercentComplete": 0,
		"StartTime": b.opts.Now().UTC().Format(time.RFC3339), "TaskMonitor": monitor, "Messages": []any{},
	})
	b.addMember(b.tasksPath, p)
	b.monitors[monitor] = p
	b.log.DebugContext(r.Context(), "firmware update started", "task", p, "image", redacted(image), "targets", targets)
	go b.runUpdate(p, image, targets)
	w.Header().Set("Location", monitor)
	w.Header().Set("Retry-After", taskRetryAfter)
	writeBody(w, http.StatusAccepted, "application/json; charset=utf-8", b.res[p])
	return nil
}

// updateProtocols are the TransferProtocol values SimpleUpdate allows,
// inline or in its ActionInfo; nil when it does not say. The caller
// holds b.mu.
func (b *BMC) updateProtocols() []string {
	a := child(child(b.updateService(), "Actions"), "#UpdateService.SimpleUpdate")
	if v := stringList(a["TransferProtocol@Redfish.AllowableValues"]); v != nil {
		return v
	}
	info, _ := a["@Redfish.ActionInfo"].(string)
	ai, _ := b.object(cleanPath(info))
	params, _ := ai["Parameters"].([]any)
	for _, p := range params {
		if p, _ := p.(map[string]any); p["Name"] == "TransferProtocol" {
			return stringList(p["AllowableValues"])
		}
	}
	return nil
}

// updateService is the UpdateService resource. The caller holds b.mu.
func (b *BMC) updateService() map[string]any {
	root, _ := b.object(rootPath)
	us, _ := b.object(linkOf(root, "UpdateService"))
	return us
}

// firmwareInventory lists the FirmwareInventory members. The caller
// holds b.mu.
func (b *BMC) firmwareInventory() []string {
	return b.members(linkOf(b.updateService(), "FirmwareInventory"))
}

// runUpdate runs the task at p: fetch the package, read it, flash it.
func (b *BMC) runUpdate(p, image string, targets []string) {
	ctx, cancel := context.WithTimeout(context.Background(), updateTimeout)
	defer cancel()
	component, version, err := b.fetchPackage(ctx, image)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		err = b.flash(component, version, targets)
	}
	task, _ := b.object(p)
	task["PercentComplete"], task["EndTime"] = 100, b.opts.Now().UTC().Format(time.RFC3339)
	if m, failed := errors.AsType[*taskMessage](err); failed {
		task["TaskState"], task["TaskStatus"] = "Exception", "Critical"
		task["Messages"] = []any{m.info(image)}
		b.log.Info("firmware update failed", "task", p, "image", redacted(image), "err", err)
	} else {
		task["TaskState"], task["TaskStatus"] = "Completed", "OK"
		task["Messages"] = []any{(&taskMessage{id: "UpdateSuccessful", severity: "OK",
			text: fmt.Sprintf("Device '%s' successfully updated with image '%s' (version %s).", component, redacted(image), version)}).info(image)}
		b.log.Info("firmware updated", "task", p, "component", component, "version", version)
	}
	b.put(p, task)
}

// taskMessage is why a task failed, or that it succeeded: an Update
// registry message whose text says what happened.
type taskMessage struct {
	id, severity, text string
}

func (m *taskMessage) Error() string { return m.text }

func (m *taskMessage) info(image string) map[string]any {
	return map[string]any{
		"@odata.type": "#Message.v1_1_2.Message", "MessageId": "Update.1.0." + m.id, "Message": m.text,
		"MessageArgs": []string{redacted(image)}, "MessageSeverity": m.severity, "Severity": m.severity,
	}
}

func transferFailed(image, why string) error {
	return &taskMessage{id: "TransferFailed", severity: "Critical", text: fmt.Sprintf("Transfer of image '%s' failed: %s.", redacted(image), why)}
}

// fetchPackage fetches the package at image and reads its component and
// version from its first line.
func (b *BMC) fetchPackage(ctx context.Context, image string) (component, version string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, image, nil)
	if err != nil {
		return "", "", transferFailed(image, err.Error())
	}
	resp, err := b.opts.HTTPClient.Do(req)
	if err != nil {
		return "", "", transferFailed(image, err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", "", transferFailed(image, resp.Status)
	}
	body := bufio.NewReader(io.LimitReader(resp.Body, maxPackage+1))
	line, err := body.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return "", "", transferFailed(image, err.Error())
	}
	// line is the reader's buffer: copy what is needed before reading on.
	head, complete, size := string(line), bytes.HasSuffix(line, []byte("\n")), int64(len(line))
	if n, err := io.Copy(io.Discard, body); err != nil {
		return "", "", transferFailed(image, err.Error())
	} else if size+n > maxPackage {
		return "", "", transferFailed(image, fmt.Sprintf("the package is larger than %d bytes", maxPackage))
	}
	f := strings.Fields(head)
	if !complete || len(f) != 3 || f[0] != packageMagic {
		return "", "", &taskMessage{id: "VerificationFailed", severity: "Critical",
			text: fmt.Sprintf("Verification of image '%s' failed: it is not a firmware package for this BMC (its first line is not %q).",
				redacted(image), packageMagic+" <component> <version>")}
	}
	return f[1], f[2], nil
}

// flash sets the version of the FirmwareInventory member whose Id is
// component. The caller holds b.mu.
func (b *BMC) flash(component, version string, targets []string) error {
	var p string
	for _, m := range b.firmwareInventory() {
		if fw, _ := b.object(m); strings.EqualFold(fmt.Sprint(fw["Id"]), component) {
			p = m
			break
		}
	}
	switch {
	case p == "":
		return &taskMessage{id: "NoTargetsDetermined", severity: "Critical",
			text: fmt.Sprintf("No device will receive the update: the package is for firmware %s, which this BMC does not have.", component)}
	case len(targets) > 0 && !slices.Contains(targets, p):
		return &taskMessage{id: "NoTargetsDetermined", severity: "Critical",
			text: fmt.Sprintf("No device will receive the update: the package is for %s, which is not among the Targets.", p)}
	}
	b.setFirmware(p, version)
	return nil
}

// setFirmware sets the Version of the FirmwareInventory member at p and,
// for the BIOS, the system's BiosVersion, for the BMC, the
// FirmwareVersion of the managers of the system. The caller holds b.mu.
func (b *BMC) setFirmware(p, version string) {
	fw, _ := b.object(p)
	fw["Version"] = version
	b.put(p, fw)
	sys, _ := b.object(b.system)
	switch id := fmt.Sprint(fw["Id"]); {
	case strings.EqualFold(id, "BIOS"):
		sys["BiosVersion"] = version
		b.put(b.system, sys)
	case strings.EqualFold(id, "BMC"):
		managers, _ := child(sys, "Links")["ManagedBy"].([]any)
		for _, m := range managers {
			if mgr, ok := b.object(ref(m)); ok {
				mgr["FirmwareVersion"] = version
				b.put(ref(m), mgr)
			}
		}
	}
}

// FirmwareVersion is the Version of the FirmwareInventory member whose Id
// is id, or "" when there is none.
func (b *BMC) FirmwareVersion(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.firmwareInventory() {
		if fw, _ := b.object(m); fw["Id"] == id {
			v, _ := fw["Version"].(string)
			return v
		}
	}
	return ""
}

// taskMonitor answers GET on a task monitor: 202 and the task while it
// runs, then 200 and the task. ok is false when p is not a monitor.
func (b *BMC) taskMonitor(w http.ResponseWriter, p string) (ok bool) {
	b.mu.Lock()
	taskPath, isMonitor := b.monitors[p]
	body := b.res[taskPath]
	task, _ := b.object(taskPath)
	b.mu.Unlock()
	if !isMonitor {
		return false
	}
	status := http.StatusOK
	if task["TaskState"] == "Running" {
		w.Header().Set("Retry-After", taskRetryAfter)
		status = http.StatusAccepted
	}
	writeBody(w, status, "application/json; charset=utf-8", body)
	return true
}

// redacted is url without its password, for messages and logs.
func redacted(image string) string {
	u, err := url.Parse(image)
	if err != nil {
		return image
	}
	return u.Redacted()
}
