package redfish

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ErrNoSimpleUpdate means the BMC has no UpdateService.SimpleUpdate
// action: it cannot pull firmware from a URL (Intel, Supermicro X10).
var ErrNoSimpleUpdate = errors.New("no UpdateService with a SimpleUpdate action")

const simpleUpdateAction = "#UpdateService.SimpleUpdate"

// updateService is the UpdateService as the client needs it. Its actions
// stay undecoded until SimpleUpdate needs one, so that actions shaped
// oddly do not keep the firmware inventory from being read.
type updateService struct {
	firmwareInventory string
	actions           json.RawMessage
}

func decodeUpdateService(b []byte) (updateService, error) {
	v, err := decode[struct {
		FirmwareInventory link
		Actions           json.RawMessage
	}](b)
	return updateService{firmwareInventory: v.FirmwareInventory.ID, actions: v.Actions}, err
}

// simpleUpdate is the SimpleUpdate action the service advertises; its
// target is "" when there is none.
func (u updateService) simpleUpdate() (action, error) {
	var a action
	if len(u.actions) == 0 {
		return a, nil
	}
	var actions map[string]json.RawMessage
	if err := json.Unmarshal(u.actions, &actions); err != nil {
		return a, err
	}
	raw, ok := actions[simpleUpdateAction]
	if !ok {
		return a, nil
	}
	err := json.Unmarshal(raw, &a)
	return a, err
}

// SimpleUpdate has the BMC fetch the firmware package at imageURI and
// apply it (UpdateService.SimpleUpdate), and waits until it is applied.
// targets name the firmware inventory members to update, by @odata.id or
// by Id or Name as Inventory reports them; none leaves the choice to the
// package. The action is the one the UpdateService lists in its Actions,
// as real BMCs advertise it; TransferProtocol is the URI's scheme (HTTPS),
// refused where the action's allowable values leave it out. A BMC that
// answers 202 runs a task: SimpleUpdate follows its monitor, honouring
// Retry-After, until the task ends, and fails, with the task's messages,
// unless it Completed with TaskStatus OK (or none: some BMCs leave it
// out). A BMC that answers 200 or 204 took the update at once. ctx bounds
// the wait. The new version shows in the inventory once the BMC applied
// it, which for a BIOS may take a reset of sys.
func (c *Client) SimpleUpdate(ctx context.Context, sys, imageURI string, targets []string) error {
	if err := c.simpleUpdate(ctx, imageURI, targets); err != nil {
		return fmt.Errorf("redfish %s: update the firmware of %s from %s: %w", c.cfg.Endpoint, sys, redact(imageURI), err)
	}
	return nil
}

func (c *Client) simpleUpdate(ctx context.Context, imageURI string, targets []string) error {
	u, err := url.Parse(imageURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("the image URI must be an http or https URL")
	}
	if c.root.updateService == "" {
		return ErrNoSimpleUpdate
	}
	us, err := read(ctx, c, c.root.updateService, decodeUpdateService)
	if err != nil {
		return err
	}
	a, err := us.simpleUpdate()
	if err != nil {
		return fmt.Errorf("%s: %s: %w", c.root.updateService, simpleUpdateAction, err)
	}
	if a.target == "" {
		return ErrNoSimpleUpdate
	}
	protocol := strings.ToUpper(u.Scheme)
	allowed, err := c.allowable(ctx, a, "TransferProtocol")
	if err != nil {
		return err
	}
	if allowed != nil && !slices.Contains(allowed, protocol) {
		return fmt.Errorf("the BMC fetches firmware over %s only, not %s", strings.Join(allowed, ", "), protocol)
	}
	ids, err := c.firmwareTargets(ctx, us.firmwareInventory, targets)
	if err != nil {
		return err
	}
	body := map[string]any{"ImageURI": imageURI, "TransferProtocol": protocol}
	if len(ids) > 0 {
		body["Targets"] = ids
	}
	resp, err := c.do(ctx, http.MethodPost, a.target, body, "")
	if err != nil {
		return err
	}
	c.log.InfoContext(ctx, "redfish firmware update sent", "image", redact(imageURI), "targets", ids, "status", resp.status)
	if resp.status != http.StatusAccepted {
		return nil
	}
	// The 202 carries the task monitor in Location, and usually the Task
	// in its body: read the Task itself when the monitor's last answer
	// is not it.
	accepted, _ := decodeTask(resp.body)
	monitor := cmp.Or(resp.header.Get("Location"), accepted.ODataID)
	if monitor == "" {
		return errors.New("the BMC accepted the update (202) without a task monitor or a task to follow: its outcome is unknown")
	}
	t, err := c.followTask(ctx, monitor, accepted.ODataID, retryAfter(resp.header))
	if err != nil {
		return err
	}
	c.log.InfoContext(ctx, "redfish firmware update ended", "task", cmp.Or(t.ODataID, monitor), "task_state", t.TaskState, "task_status", t.TaskStatus)
	if t.TaskState == "" || t.TaskState == "Completed" && (t.TaskStatus == "OK" || t.TaskStatus == "") {
		return nil // "": the monitor's final answer was the operation's, a success, and there is no task to read
	}
	return t.failure(monitor)
}

// firmwareTargets turns firmware inventory members named by Id or Name
// into their @odata.id; an @odata.id stays as it is.
func (c *Client) firmwareTargets(ctx context.Context, inventory string, targets []string) ([]string, error) {
	type member struct{ link, id, name string }
	var out []string
	var members []member // the inventory, read once when a target needs it
	for _, t := range targets {
		if strings.HasPrefix(t, "/") {
			out = append(out, t)
			continue
		}
		if inventory == "" {
			return nil, fmt.Errorf("the BMC has no firmware inventory to find %q in", t)
		}
		if members == nil {
			links, err := c.members(ctx, inventory)
			if err != nil {
				return nil, err
			}
			members = []member{}
			for _, l := range links {
				f, err := read(ctx, c, l, decodeFirmware)
				if err != nil {
					return nil, err
				}
				members = append(members, member{l, f.ID, f.Name})
			}
		}
		i := slices.IndexFunc(members, func(m member) bool { return strings.EqualFold(m.id, t) || strings.EqualFold(m.name, t) })
		if i < 0 {
			return nil, fmt.Errorf("the BMC's firmware inventory has no %q", t)
		}
		out = append(out, members[i].link)
	}
	return out, nil
}
