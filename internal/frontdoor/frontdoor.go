// Package frontdoor is the HTTP pipeline of the ARM API: it normalises the
// path, checks the api-version, authenticates the bearer token, routes to
// the provider, and writes the answer. It is the only place where an error
// becomes a status code. The server package mounts it.
package frontdoor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/providers/insights"
	"github.com/citadel-cloud/citadel/internal/providers/resources"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// maxBody is ARM's request size limit.
const maxBody = 8 << 20

// Authorizer decides what a caller may do: RBAC and locks.
type Authorizer interface {
	// Authorize returns a 403 or 409 *arm.Error unless who may perform
	// action at scope, and the name of the role that allows it.
	Authorize(who authz.Principal, action, scope string) (role string, err error)
	// CanRead reports whether who may read resource id of type typ.
	CanRead(who authz.Principal, typ, id string) bool
	// Permissions lists what the roles who holds at scope allow.
	Permissions(who authz.Principal, scope string) []authz.Permission
}

// PolicyEnforcer applies Azure Policy to writes (package
// providers/policies).
type PolicyEnforcer interface {
	// Enforce refuses a PUT, PATCH or DELETE of id that policy denies, or
	// returns the body after append and modify; nil when they change
	// nothing.
	Enforce(ctx context.Context, method string, id arm.ID, body []byte, apiVersion string) ([]byte, error)
	// Written hears that a resource changed, to evaluate its compliance.
	Written(id arm.ID)
}

// Config wires the front door to what it serves.
type Config struct {
	Resources *resource.Service
	Core      *resources.Provider
	Identity  *identity.Issuer
	Authz     Authorizer
	Insights  *insights.Provider
	// Audit records the mutating requests that changed nothing (refused
	// ones, say); the resource framework records the others with their
	// changes.
	Audit *audit.Log
	// Policy, when set, enforces Azure Policy on every create, update
	// and delete, and hears of every change for compliance.
	Policy PolicyEnforcer
	// Other serves every path that is not ARM: the token issuer, health
	// and metrics.
	Other   http.Handler
	Logger  *slog.Logger
	Metrics prometheus.Registerer
}

// FrontDoor is the ARM HTTP handler.
type FrontDoor struct {
	svc      *resource.Service
	core     *resources.Provider
	identity *identity.Issuer
	authz    Authorizer
	insights *insights.Provider
	audit    *audit.Log
	policy   PolicyEnforcer
	other    http.Handler
	log      *slog.Logger
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the front door.
func New(cfg Config) *FrontDoor {
	f := &FrontDoor{
		svc: cfg.Resources, core: cfg.Core, identity: cfg.Identity, authz: cfg.Authz, insights: cfg.Insights, audit: cfg.Audit, policy: cfg.Policy, other: cfg.Other,
		log: cfg.Logger.With("component", "frontdoor"),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "citadel_arm_requests_total", Help: "ARM requests by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "citadel_arm_request_duration_seconds", Help: "ARM request latency by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method"}),
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(f.requests, f.latency)
	}
	return f
}

// isARM tells ARM paths from the issuer's, health and metrics: Go's
// ServeMux would redirect the "//" that az sends, so ARM paths never reach
// it.
func isARM(path string) bool {
	first := strings.TrimLeft(path, "/")
	if i := strings.IndexByte(first, '/'); i >= 0 {
		first = first[:i]
	}
	for _, s := range []string{"subscriptions", "tenants", "providers"} {
		if strings.EqualFold(first, s) {
			return true
		}
	}
	return false
}

// statusWriter remembers the status for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (f *FrontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isARM(r.URL.Path) {
		f.other.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	requestID := uuid.NewString()
	correlationID := r.Header.Get("x-ms-correlation-request-id")
	if correlationID == "" {
		correlationID = requestID
	}
	h := w.Header()
	h.Set("x-ms-request-id", requestID)
	h.Set("x-ms-correlation-request-id", correlationID)
	if id := r.Header.Get("x-ms-client-request-id"); id != "" && !strings.EqualFold(r.Header.Get("x-ms-return-client-request-id"), "false") {
		h.Set("x-ms-client-request-id", id)
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	resp, err := f.serve(r, correlationID)
	if err != nil {
		f.writeError(r.Context(), sw, r, requestID, err)
	} else {
		writeResponse(sw, r, resp)
	}
	took := time.Since(start)
	f.requests.WithLabelValues(r.Method, strconv.Itoa(sw.status)).Inc()
	f.latency.WithLabelValues(r.Method).Observe(took.Seconds())
	if f.log.Enabled(r.Context(), slog.LevelDebug) { // spare the hot path the arguments
		f.log.DebugContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"request_id", requestID, "correlation_id", correlationID, "took", took)
	}
}

func (f *FrontDoor) serve(r *http.Request, correlationID string) (resp *resource.Response, err error) {
	bearer, err := identity.ParseBearer(r.Header.Get("Authorization"))
	if err != nil {
		return nil, err
	}
	principal, err := f.identity.Validate(r.Context(), bearer)
	if err != nil {
		return nil, err
	}
	return f.serveAs(r, principal, correlationID)
}

// Do serves one ARM request made inside the server on behalf of p, such
// as a deployment creating the resources of its template: the same
// routing, authorization, locks and activity log as a request over HTTPS.
// pathAndQuery is the request URI, with its api-version.
func (f *FrontDoor) Do(ctx context.Context, p identity.Principal, correlationID, method, pathAndQuery string, body []byte) (*resource.Response, error) {
	r, err := http.NewRequestWithContext(ctx, method, "https://"+internalHost+pathAndQuery, bytes.NewReader(body))
	if err != nil {
		return nil, arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "The request URI '%s' is not valid.", pathAndQuery)
	}
	if !isARM(r.URL.Path) {
		return nil, arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "The request URI '%s' is not an ARM path.", pathAndQuery)
	}
	r.Header.Set("Content-Type", "application/json")
	return f.serveAs(r, p, correlationID)
}

// internalHost is the host of requests made inside the server; the links in
// their answers (operation status, next pages) are for the caller inside.
const internalHost = "citadel.internal"

// serveAs serves r for an authenticated principal.
func (f *FrontDoor) serveAs(r *http.Request, principal identity.Principal, correlationID string) (resp *resource.Response, err error) {
	// From here on the caller is known: every mutating request leaves a
	// record, whatever becomes of it.
	req := &resource.Request{Path: r.URL.Path}
	if mutating(r.Method) {
		req.Audit = auditInfo(r, principal, correlationID)
		defer func() {
			if !req.Recorded() {
				f.recordUnchanged(r.Context(), req, resp, err)
			}
		}()
	}
	path, err := arm.ParsePath(r.URL.Path)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	version := q.Get("api-version")
	if version == "" {
		return nil, arm.MissingAPIVersion()
	}
	if _, err := arm.ParseAPIVersion(version); err != nil {
		return nil, err
	}
	var body []byte
	if r.ContentLength != 0 { // GETs and DELETEs usually have none
		if body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1)); err != nil {
			return nil, arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "The request body could not be read.")
		}
	}
	if len(body) > maxBody {
		return nil, arm.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is larger than 8 MB.")
	}
	req.ID = path.ID
	req.APIVersion = version
	req.Body = body
	req.Header = r.Header
	req.Query = q
	req.Caller = caller(principal)
	req.BaseURL = "https://" + r.Host
	req.Path = path.ID.String() + tailPath(path.Tail)
	req.Filter, req.Select = q.Get("$filter"), q.Get("$select")
	if req.Top, err = arm.ParseTop(q.Get("$top")); err != nil {
		return nil, err
	}
	if tok := q.Get("$skipToken"); tok != "" {
		if req.SkipToken, err = arm.DecodeSkipToken(tok); err != nil {
			return nil, err
		}
	}
	who := authz.Principal{ObjectID: principal.ObjectID, Groups: principal.Groups}
	if principal.HasGroupOverflow { // too many groups for the token: look them up
		if who.Groups, err = f.identity.GroupsOf(r.Context(), principal.ObjectID); err != nil {
			return nil, err
		}
	}
	rt, err := f.route(r.Method, path, req, q.Get("$expand"), who)
	if err != nil {
		return nil, err
	}
	if req.Audit != nil {
		req.Audit.OperationName, req.Audit.Scope = rt.action, rt.scope
	}
	req.CanRead = func(typ, id string) bool { return f.authz.CanRead(who, typ, id) }
	switch {
	case rt.action != "":
		role, err := f.authz.Authorize(who, rt.action, rt.scope)
		if req.Audit != nil {
			req.Audit.Role = role
		}
		if err != nil {
			return nil, err
		}
	case mutating(r.Method):
		return nil, fmt.Errorf("route for %s %s has no authorization action", r.Method, r.URL.Path)
	}
	if rt.change == "" || f.policy == nil {
		return rt.serve(r.Context())
	}
	if err := f.enforcePolicy(r.Context(), rt.change, req); err != nil {
		return nil, err
	}
	resp, err = rt.serve(r.Context())
	if err == nil {
		f.policy.Written(req.ID)
	}
	return resp, err
}

// enforcePolicy applies Azure Policy to a create, update or delete before
// it reaches the resource framework; append and modify change the body.
func (f *FrontDoor) enforcePolicy(ctx context.Context, method string, req *resource.Request) error {
	changed, err := f.policy.Enforce(ctx, method, req.ID, req.Body, req.APIVersion)
	if err != nil {
		return err
	}
	if changed != nil {
		req.Body = changed
	}
	return nil
}

// mutating reports whether a method changes state.
func mutating(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}

func tailPath(tail []string) string {
	if len(tail) == 0 {
		return ""
	}
	return "/" + strings.Join(tail, "/")
}

func caller(p identity.Principal) resource.Caller {
	c := resource.Caller{ObjectID: p.ObjectID, Name: p.Name, Type: "User"}
	if p.Type == "ServicePrincipal" {
		c.Type = "Application"
		if c.Name == "" {
			c.Name = p.AppID
		}
	}
	return c
}

// writeResponse writes a provider's answer as JSON.
func writeResponse(w http.ResponseWriter, r *http.Request, resp *resource.Response) {
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if resp.Body == nil || resp.Status == http.StatusNoContent || r.Method == http.MethodHead {
		w.WriteHeader(resp.Status)
		return
	}
	b, raw := resp.Body.([]byte)
	if !raw {
		var err error
		if b, err = json.Marshal(resp.Body); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(resp.Status)
	w.Write(b)
}

// writeError turns any error into the ARM error envelope. Internal details
// go to the log, never to the client.
func (f *FrontDoor) writeError(ctx context.Context, w http.ResponseWriter, r *http.Request, requestID string, err error) {
	var ae *arm.Error
	if !errors.As(err, &ae) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			ae = arm.Errorf(http.StatusServiceUnavailable, "RequestTimeout", "The request was cancelled or timed out before it completed.")
		default:
			f.log.ErrorContext(ctx, "request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID, "err", err)
			ae = arm.Errorf(http.StatusInternalServerError, arm.CodeInternalServerError,
				"The server had an internal error. Quote request id '%s' to the operator.", requestID)
		}
	}
	status := ae.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	w.Header().Set("x-ms-error-code", ae.Code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+f.identity.Issuer()+`", error="invalid_token"`)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	body := arm.Envelope(ae)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// auditInfo describes a mutating request for its activity-log records.
func auditInfo(r *http.Request, p identity.Principal, correlationID string) *audit.EventInfo {
	caller := p.Name
	if caller == "" {
		caller = p.ObjectID
	}
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	return &audit.EventInfo{
		Time:            time.Now().UTC(), // when the request arrived: the Started record's date
		CorrelationID:   correlationID,
		Caller:          caller,
		Claims:          p.Claims(),
		ClientIP:        ip,
		ClientRequestID: r.Header.Get("x-ms-client-request-id"),
		Method:          r.Method,
		TenantID:        p.TenantID,
	}
}

// recordUnchanged writes the record of a mutating request that changed
// nothing: refused by RBAC, a lock or validation, or a no-op such as
// deleting what is not there. A failure to record is logged: the request
// itself has been decided.
func (f *FrontDoor) recordUnchanged(ctx context.Context, req *resource.Request, resp *resource.Response, err error) {
	if f.audit == nil {
		return
	}
	info := *req.Audit
	info.Time, info.ResourceID, info.Status = time.Now().UTC(), req.Path, audit.StatusSucceeded
	if !req.ID.IsZero() {
		info.ResourceID = req.ID.String()
	}
	if resp != nil {
		info.StatusCode = resp.Status
	}
	var ae *arm.Error
	if err != nil {
		info.Status, info.StatusCode = audit.StatusFailed, http.StatusInternalServerError
		if errors.As(err, &ae) && ae.Status != 0 {
			info.StatusCode = ae.Status
			info.Properties = map[string]string{"statusMessage": string(arm.Envelope(ae))}
		}
	}
	if err := f.audit.Record(context.WithoutCancel(ctx), audit.NewEvent(info)); err != nil {
		f.log.ErrorContext(ctx, "activity-log record not written", "path", req.Path, "err", err)
	}
}
