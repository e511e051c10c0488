package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// ownerAction is what only an Owner may do at a subscription (a
// Contributor's "*" stops short of it), so the endpoints below require it
// besides their own action: an Owner could grant itself anything.
const ownerAction = "Microsoft.Authorization/roleAssignments/write"

// operatorAuthorizer decides who may call the control plane's endpoints
// outside ARM.
type operatorAuthorizer interface {
	Authorize(who authz.Principal, action, scope string) (string, error)
}

// operatorCall is a request to one of the control plane's endpoints
// outside ARM (/citadel/backup, /citadel/updates/...), which carry files
// rather than ARM resources. It does for them what the front door does
// for an ARM request: it authenticates the bearer token, authorizes the
// action at every subscription (the endpoints act on the whole control
// plane), answers errors with the ARM error envelope and, unless the
// action only reads, records the call in the activity log once, whatever
// becomes of it.
type operatorCall struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	action string // e.g. "Citadel.Updates/import/action"
	what   string // for messages: "backup", "import"
	// description and props are the activity-log record's; the
	// description is what when empty.
	description string
	props       map[string]string
	p           identity.Principal
	who         authz.Principal
	subs        []resource.Subscription
	role        string // the role that allowed the action
	recorded    bool
	log         *slog.Logger
}

// startCall authenticates r for action. When that fails it answers r
// and returns nil.
func (s *Server) startCall(w http.ResponseWriter, r *http.Request, action, what string, log *slog.Logger) *operatorCall {
	c := &operatorCall{s: s, w: w, r: r, action: action, what: what, log: log, recorded: true} // nothing to record until the caller is known
	ctx := r.Context()
	bearer, err := identity.ParseBearer(r.Header.Get("Authorization"))
	if err != nil {
		c.fail(err)
		return nil
	}
	if c.p, err = s.Identity.Validate(ctx, bearer); err != nil {
		c.fail(err)
		return nil
	}
	c.who = authz.Principal{ObjectID: c.p.ObjectID, Groups: c.p.Groups}
	if c.p.HasGroupOverflow { // too many groups for the token: look them up
		if c.who.Groups, err = s.Identity.GroupsOf(ctx, c.p.ObjectID); err != nil {
			c.fail(err)
			return nil
		}
	}
	if c.subs, err = s.Resources.Subscriptions(ctx); err != nil {
		c.fail(err)
		return nil
	}
	c.recorded = strings.HasSuffix(strings.ToLower(action), "/read") // reads leave no record
	return c
}

// authorize checks the call's action at every subscription and, when
// ownerOnly, that the caller is an Owner there. A refusal is the error
// to fail with.
func (c *operatorCall) authorize(rbac operatorAuthorizer, ownerOnly bool) error {
	if len(c.subs) == 0 {
		return arm.Errorf(http.StatusForbidden, arm.CodeAuthorizationFailed,
			"The client '%s' with object id '%s' does not have authorization to perform action '%s': there is no subscription to hold the role.",
			c.p.ObjectID, c.p.ObjectID, c.action)
	}
	var role string
	for _, sub := range c.subs {
		scope := "/subscriptions/" + sub.ID
		var err error
		role, err = rbac.Authorize(c.who, c.action, scope)
		if err == nil && ownerOnly {
			_, err = rbac.Authorize(c.who, ownerAction, scope)
			if e, ok := errors.AsType[*arm.Error](err); ok && e.Code == arm.CodeAuthorizationFailed {
				err = arm.Errorf(http.StatusForbidden, arm.CodeAuthorizationFailed,
					"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s': only an Owner may (one who may perform '%s' there).",
					c.p.ObjectID, c.p.ObjectID, c.action, scope, ownerAction)
			}
		}
		if err != nil {
			return err
		}
	}
	c.role = role
	return nil
}

// fail answers with err's ARM error envelope, or a 500 for any other
// error (whose details go to the log only), and records the failure.
func (c *operatorCall) fail(err error) {
	ctx := c.r.Context()
	e, ok := errors.AsType[*arm.Error](err)
	if !ok {
		c.log.ErrorContext(ctx, "operator call failed", "action", c.action, "err", err)
		e = arm.Errorf(http.StatusInternalServerError, arm.CodeInternalServerError, "The %s failed; the server log says why.", c.what)
	}
	c.record(audit.StatusFailed, e.Status, map[string]string{"statusMessage": string(arm.Envelope(e))})
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(e.Status)
	c.w.Write(arm.Envelope(e))
}

// reply answers with a JSON body.
func (c *operatorCall) reply(status int, body []byte) {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	c.w.Write(body)
}

// record writes the call's activity-log record at each subscription, the
// first time it is called; props, with the call's, say what was done.
func (c *operatorCall) record(status string, code int, props map[string]string) {
	if c.recorded {
		return
	}
	c.recorded = true
	props = maps.Clone(props)
	if props == nil {
		props = map[string]string{}
	}
	maps.Copy(props, c.props)
	ctx := c.r.Context()
	method := c.r.Method
	if method == http.MethodGet {
		method = http.MethodPost // an action that answers with data, such as a backup
	}
	for _, sub := range c.subs {
		scope := "/subscriptions/" + sub.ID
		e := audit.NewEvent(audit.EventInfo{Time: time.Now(), CorrelationID: c.r.Header.Get("x-ms-correlation-request-id"),
			OperationName: c.action, Role: c.role, Scope: scope, Caller: cmp.Or(c.p.Name, c.p.ObjectID), Claims: c.p.Claims(),
			ClientIP: c.r.RemoteAddr, Method: method, ResourceID: scope, Status: status, StatusCode: code, TenantID: c.p.TenantID,
			Description: cmp.Or(c.description, c.what), Properties: props})
		if err := c.s.Audit.Record(context.WithoutCancel(ctx), e); err != nil {
			c.log.ErrorContext(ctx, "operator call not recorded", "action", c.action, "err", err)
		}
	}
}

// serveList answers an operator endpoint's list ({"value": [...]}) to
// those allowed action: the imported releases, the VM images.
func serveList[T any](s *Server, action, what string, list func(context.Context) ([]T, error), rbac operatorAuthorizer, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.startCall(w, r, action, what, log)
		if c == nil {
			return
		}
		if err := c.authorize(rbac, false); err != nil {
			c.fail(err)
			return
		}
		items, err := list(r.Context())
		if err != nil {
			c.fail(err)
			return
		}
		body, err := json.Marshal(map[string]any{"value": items})
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, body)
	}
}
