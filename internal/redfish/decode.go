package redfish

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
)

// The decoders below turn BMC answers into values. They are pure, and
// FuzzDecode checks that no input makes one panic.

// link is a navigation property: {"@odata.id": "..."}.
type link struct {
	ID string `json:"@odata.id"`
}

// Status is a resource's Redfish Status: State (Enabled, Absent,
// Disabled, ...) and Health (OK, Warning, Critical).
type Status struct {
	State, Health string
}

func decode[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

type versions struct {
	V1 string `json:"v1"`
}

// decodeVersions reads GET /redfish: {"v1": "/redfish/v1/"}.
func decodeVersions(b []byte) (versions, error) { return decode[versions](b) }

// resource is what every Redfish resource has.
type resource struct {
	ODataID string `json:"@odata.id"`
	ID      string `json:"Id"`
	Name    string
}

func decodeResource(b []byte) (resource, error) { return decode[resource](b) }

type serviceRoot struct {
	ServiceRoot
	systems, managers, sessionService, sessions, updateService string
}

func decodeServiceRoot(b []byte) (serviceRoot, error) {
	v, err := decode[struct {
		ServiceRoot
		Systems, Managers, SessionService, UpdateService link
		Links                                            struct{ Sessions link }
	}](b)
	return serviceRoot{
		ServiceRoot:    v.ServiceRoot,
		systems:        v.Systems.ID,
		managers:       v.Managers.ID,
		sessionService: v.SessionService.ID,
		sessions:       v.Links.Sessions.ID,
		updateService:  v.UpdateService.ID,
	}, err
}

type sessionService struct {
	Sessions link
}

func decodeSessionService(b []byte) (sessionService, error) { return decode[sessionService](b) }

type collection struct {
	members []string
	next    string
}

// decodeCollection reads Members and the link to the next page, which
// services spell Members@odata.nextLink or @odata.nextLink.
func decodeCollection(b []byte) (collection, error) {
	v, err := decode[struct {
		Members   []link
		NextLink  string `json:"Members@odata.nextLink"`
		ODataNext string `json:"@odata.nextLink"`
	}](b)
	if err != nil {
		return collection{}, err
	}
	col := collection{next: v.NextLink}
	if col.next == "" {
		col.next = v.ODataNext
	}
	for _, m := range v.Members {
		if m.ID != "" {
			col.members = append(col.members, m.ID)
		}
	}
	return col, nil
}

// linksIn returns every @odata.id in a body, at any depth.
func linksIn(b []byte) []string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "@odata.id" {
					out = append(out, s)
				} else {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

// decodeError reads a Redfish error body. A body that is not one still
// gives an *Error, with the status text and the start of the body.
func decodeError(statusCode int, b []byte) *Error {
	e := &Error{StatusCode: statusCode}
	v, err := decode[struct {
		Error struct {
			Code         string `json:"code"`
			Message      string `json:"message"`
			ExtendedInfo []struct {
				MessageID string `json:"MessageId"`
				Message   string
			} `json:"@Message.ExtendedInfo"`
		} `json:"error"`
	}](b)
	if err != nil || v.Error.Code == "" && len(v.Error.ExtendedInfo) == 0 {
		e.Message = strings.TrimSpace(string(b[:min(len(b), 200)]))
		return e
	}
	e.Code, e.MessageID, e.Message = v.Error.Code, v.Error.Code, v.Error.Message
	for i, x := range v.Error.ExtendedInfo {
		if i == 0 && x.MessageID != "" {
			e.MessageID = x.MessageID
			if x.Message != "" {
				e.Message = x.Message
			}
		}
		if x.MessageID != "" {
			e.messageIDs = append(e.messageIDs, x.MessageID)
		}
	}
	if e.Code != "" {
		e.messageIDs = append(e.messageIDs, e.Code)
	}
	return e
}

// action is one entry of Actions: its target, and the allowable values
// of its parameters, inline ("ResetType@Redfish.AllowableValues") or in
// an ActionInfo resource (AMI, OpenBMC).
type action struct {
	target     string
	actionInfo string
	allowable  map[string][]string
}

func (a *action) UnmarshalJSON(b []byte) error {
	var fixed struct {
		Target     string `json:"target"`
		ActionInfo string `json:"@Redfish.ActionInfo"`
	}
	if err := json.Unmarshal(b, &fixed); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	a.target, a.actionInfo = fixed.Target, fixed.ActionInfo
	for k, raw := range all {
		param, ok := strings.CutSuffix(k, "@Redfish.AllowableValues")
		if !ok {
			continue
		}
		var values []string
		if err := json.Unmarshal(raw, &values); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if a.allowable == nil {
			a.allowable = map[string][]string{}
		}
		a.allowable[param] = values
	}
	return nil
}

type actionInfo struct {
	Parameters []struct {
		Name            string
		AllowableValues []string
	}
}

func decodeActionInfo(b []byte) (actionInfo, error) { return decode[actionInfo](b) }

// allowable returns what the action info allows for param; nil when it
// does not say.
func (ai actionInfo) allowable(param string) []string {
	for _, p := range ai.Parameters {
		if p.Name == param {
			return p.AllowableValues
		}
	}
	return nil
}

// task is a Task resource, as a task monitor or the task itself answers.
type task struct {
	ODataID               string `json:"@odata.id"`
	TaskState, TaskStatus string
	Messages              []struct {
		MessageID string `json:"MessageId"`
		Message   string
	}
}

func decodeTask(b []byte) (task, error) { return decode[task](b) }

// ended reports whether the task is over: it is in a state it cannot
// leave.
func (t task) ended() bool {
	switch t.TaskState {
	case "Completed", "Killed", "Exception", "Cancelled":
		return true
	}
	return false
}

// failure is the error of a task that ended without success, with its
// messages.
func (t task) failure(monitor string) error {
	var msgs []string
	for _, m := range t.Messages {
		switch {
		case m.Message != "":
			msgs = append(msgs, m.Message)
		case m.MessageID != "":
			msgs = append(msgs, m.MessageID)
		}
	}
	state := t.TaskState
	if t.TaskStatus != "" {
		state += " (" + t.TaskStatus + ")"
	}
	if len(msgs) == 0 {
		return fmt.Errorf("task %s ended %s without a message", cmp.Or(t.ODataID, monitor), state)
	}
	return fmt.Errorf("task %s ended %s: %s", cmp.Or(t.ODataID, monitor), state, strings.Join(msgs, "; "))
}

// manager is a BMC as the client needs it.
type manager struct {
	ID              string `json:"Id"`
	Name            string
	FirmwareVersion string
	VirtualMedia    link
}

func decodeManager(b []byte) (manager, error) { return decode[manager](b) }
