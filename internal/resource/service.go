package resource

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/store"
)

// serialKeys prefixes the keys that serialise contending actions
// (Action.Serialize).
const serialKeys = "action-serial/"

// The store's collections.
var (
	resources     = store.NewCollection[record]("resources/")
	rawResources  = store.NewCollection[rawRecord]("resources/") // the same keys, resource left undecoded
	operations    = store.NewCollection[Operation]("operations/")
	activeOps     = store.NewCollection[struct{}]("operations-active/")
	subscriptions = store.NewCollection[Subscription]("subscriptions/")
	tenants       = store.NewCollection[Tenant]("tenants/")
)

// Config configures a Service.
type Config struct {
	Store    *store.Store
	Location string // the one region this control plane serves, e.g. "local"
	// Audit, when set, gets the activity-log record of every change, to
	// commit in the change's own transaction.
	Audit  AuditLog
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	// OperationWorkers is how many operations run at once; 0 means
	// DefaultOperationWorkers.
	OperationWorkers int
}

// DefaultOperationWorkers is how many operations run at once unless the
// configuration says otherwise. Most of an operation's time is spent
// waiting on something outside the control plane (a VM's host to report
// it running, a BMC to boot a machine), and a worker waits with it: 8
// workers queued 1,000 VM creates behind each other's waits (p99 57 s in
// BenchmarkVMCreate), 64 capped them at about 64 per host round trip.
// A VM's provisioning now reads projections and waits on watches, and
// the bookings of one machine are written together, so a worker per
// operation in flight costs nothing while it waits (with 1,024 and each
// booking written alone, the machines' compare-and-swaps conflicted
// and 1,000 creates took twice the CPU).
const DefaultOperationWorkers = 1024

// Service is the generic CRUD and operations engine behind every type.
type Service struct {
	store    *store.Store
	location string
	log      *slog.Logger
	now      func() time.Time
	types    registry
	workers  int                         // operations run at once
	subs     *store.Mirror[Subscription] // read on every request; set by Start
	audit    AuditLog
}

// AuditLog is where the records of changes go (package audit's Log).
type AuditLog interface {
	// Op is the write that records events, in order, for the change's
	// transaction.
	Op(events ...audit.Event) store.Op
}

// NewService returns a Service with no types; providers Register theirs.
func NewService(cfg Config) *Service {
	s := &Service{store: cfg.Store, location: cfg.Location, log: cfg.Logger, now: cfg.Now, audit: cfg.Audit,
		workers: cmp.Or(cfg.OperationWorkers, DefaultOperationWorkers)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "resource")
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Register adds types. It is called at start-up, before serving.
func (s *Service) Register(types ...*Type) {
	for _, t := range types {
		s.types.add(t)
	}
}

// Start loads what the service keeps in memory (the subscriptions) and
// keeps it current until ctx ends. Call it before serving requests.
func (s *Service) Start(ctx context.Context) error {
	s.subs = store.NewMirror(ctx, s.store, subscriptions)
	return s.subs.Wait(ctx)
}

// Types lists the registered types, sorted by full name.
func (s *Service) Types() []*Type { return s.types.sorted() }

// LatestAPIVersion is the newest stable api-version of the type with this
// full name, "" when it is not served: for requests the server makes on
// its own (a deployment's reference(), a remediation's re-write).
func (s *Service) LatestAPIVersion(fullName string) string {
	if t, ok := s.types.lookup(fullName); ok {
		return t.SortedAPIVersions()[0]
	}
	return ""
}

// TypeOf is the type with this full name, if it is served.
func (s *Service) TypeOf(fullName string) (*Type, bool) { return s.types.lookup(fullName) }

// Location is the region this control plane serves.
func (s *Service) Location() string { return s.location }

// Request is one ARM request, already authenticated and routed to a
// resource, a collection or an action.
type Request struct {
	ID         arm.ID // the resource; for a list, the parent scope
	APIVersion string
	Body       []byte
	Header     http.Header
	Caller     Caller
	BaseURL    string // "https://host:port", for Location and nextLink URLs
	Path       string // the request's normalised path, for nextLink
	Top        int    // $top, 0 when absent
	SkipToken  string // decoded $skipToken: the last store key of the previous page
	Filter     string // $filter as sent, carried into nextLink
	Select     string // $select as sent
	Query      url.Values
	// CanRead, when set, says whether the caller may read a resource of
	// type typ: lists leave out the others.
	CanRead func(typ, id string) bool
	// Audit, when set, describes the request for the activity log: the
	// record of a change it makes commits with the change.
	Audit *audit.EventInfo
	// recorded says that a change's record was committed.
	recorded bool
}

// Recorded reports whether the request's change committed with its
// activity-log record. The front door records every other mutating
// request itself.
func (r *Request) Recorded() bool { return r.recorded }

// auditOps is the record of a change made by req, if there is an activity
// log: status is Accepted for long-running work, Succeeded otherwise.
func (s *Service) auditOps(info *audit.EventInfo, resourceID, status string, code int) []store.Op {
	if s.audit == nil || info == nil {
		return nil
	}
	e := *info
	e.Time, e.ResourceID, e.Status, e.StatusCode = s.now().UTC(), resourceID, status, code
	return []store.Op{s.audit.Op(audit.NewEvent(e))}
}

// acceptedOps are the records of a long-running request accepted: Started,
// dated when the request arrived (info.Time, set by the front door), and
// Accepted, in one write; the operation's end adds Succeeded or Failed.
func (s *Service) acceptedOps(info *audit.EventInfo, resourceID string, code int) []store.Op {
	if s.audit == nil || info == nil {
		return nil
	}
	started, accepted := *info, *info
	if started.Time.IsZero() {
		started.Time = s.now().UTC()
	}
	started.ResourceID, started.Status, started.StatusCode = resourceID, audit.StatusStarted, 0
	accepted.Time, accepted.ResourceID, accepted.Status, accepted.StatusCode = s.now().UTC(), resourceID, audit.StatusAccepted, code
	return []store.Op{s.audit.Op(audit.NewEvent(started), audit.NewEvent(accepted))}
}

// Response is what the front door writes back.
type Response struct {
	Status int
	// Body is encoded as JSON, except a []byte, which is written as it is
	// with the Content-Type of Header.
	Body   any // nil: no body
	Header http.Header
}

func (r *Request) typeOf(s *Service) (*Type, error) {
	return s.lookupVersioned(r.ID.Type(), r.APIVersion)
}

// lookupVersioned finds a type that serves apiVersion.
func (s *Service) lookupVersioned(fullName, apiVersion string) (*Type, error) {
	t, ok := s.types.lookup(fullName)
	if !ok {
		ns, typ, _ := strings.Cut(fullName, "/")
		return nil, arm.Errorf(http.StatusBadRequest, arm.CodeInvalidResourceType,
			"The resource type '%s' could not be found in the namespace '%s' for api version '%s'.", typ, ns, apiVersion)
	}
	if !slices.ContainsFunc(t.APIVersions, func(v string) bool { return strings.EqualFold(v, apiVersion) }) {
		if strings.EqualFold(t.Namespace, "Microsoft.Resources") {
			// ARM's own types answer as ARM does, not as a provider.
			return nil, arm.InvalidAPIVersion(apiVersion, t.SortedAPIVersions())
		}
		return nil, arm.NoRegisteredProvider(s.location, apiVersion, t.Name, t.SortedAPIVersions(), []string{s.location})
	}
	return t, nil
}

// storeKey is where the resource with this id lives: type first, so that
// listing one type under a parent is one range read.
func storeKey(id arm.ID) string { return strings.ToLower(id.Type()) + "|" + id.Key() }

// typePrefix is the start of the store keys of every resource of type t.
func typePrefix(t *Type) string { return strings.ToLower(t.FullName()) + "|" }

// Get answers GET on a resource.
// The resource is passed through as stored, with its ETag added: the hot
// path decodes and encodes no JSON of its own, unless the type has
// sensitive properties to leave out or computed ones to add.
func (s *Service) Get(ctx context.Context, req *Request) (*Response, error) {
	t, err := req.typeOf(s)
	if err != nil {
		return nil, err
	}
	if t.Virtual != nil {
		if r, ok := t.Virtual(ctx, req.ID); ok {
			return &Response{Status: http.StatusOK, Body: r}, nil
		}
	}
	it, err := rawResources.Get(ctx, s.store, storeKey(req.ID))
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.read(ctx, req.ID) // says which part of the path is missing
	}
	if err != nil {
		return nil, err
	}
	if len(t.Sensitive) > 0 || t.Computed != nil {
		var r Resource
		if err := json.Unmarshal(it.Value.Resource, &r); err != nil {
			return nil, err
		}
		if t.Computed != nil {
			if err := t.Computed(ctx, &r); err != nil {
				return nil, err
			}
		}
		return s.resourceResponse(http.StatusOK, t, &r, it.Revision), nil
	}
	tag := etag(it.Revision)
	h := http.Header{}
	h.Set("ETag", tag)
	h.Set("Content-Type", "application/json; charset=utf-8")
	return &Response{Status: http.StatusOK, Body: []byte(withETag(it.Value.Resource, tag)), Header: h}, nil
}

// Head answers HEAD on a resource: 204 when it exists, 404 when not.
func (s *Service) Head(ctx context.Context, req *Request) (*Response, error) {
	if _, err := req.typeOf(s); err != nil {
		return nil, err
	}
	if _, err := s.read(ctx, req.ID); err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusNoContent}, nil
}

// read loads a resource or says which part of its path is missing.
func (s *Service) read(ctx context.Context, id arm.ID) (store.Item[record], error) {
	it, err := resources.Get(ctx, s.store, storeKey(id))
	if errors.Is(err, store.ErrNotFound) {
		if _, perr := s.checkParents(ctx, id); perr != nil {
			return it, perr
		}
		return it, arm.ResourceNotFound(id)
	}
	if err != nil {
		return it, err
	}
	return it, nil
}

// parentGuard is the store read a write depends on: the resource's group
// or parent resource, which must not change under it (for example start
// being deleted) before the write commits.
type parentGuard struct {
	key string
	rev int64
}

func (g parentGuard) op() (store.Op, bool) {
	if g.key == "" {
		return store.Op{}, false
	}
	return store.Unchanged(g.key, g.rev), true
}

// checkParents checks that the subscription, group and parent resource of
// id exist, returning the closest one as a guard for the write.
func (s *Service) checkParents(ctx context.Context, id arm.ID) (parentGuard, error) {
	if id.Subscription != "" { // else a tenant-level resource: the root always exists
		if _, err := s.Subscription(ctx, id.Subscription); err != nil {
			return parentGuard{}, err
		}
	}
	parent, ok := id.Parent()
	if !ok || parent.ResourceGroup == "" && len(parent.Types) == 0 {
		return parentGuard{}, nil // directly in the subscription
	}
	key := storeKey(parent)
	it, err := resources.Get(ctx, s.store, key)
	switch {
	case errors.Is(err, store.ErrNotFound) && len(parent.Types) == 0:
		return parentGuard{}, arm.ResourceGroupNotFound(parent.ResourceGroup)
	case errors.Is(err, store.ErrNotFound):
		if _, err := s.checkParents(ctx, parent); err != nil {
			return parentGuard{}, err
		}
		return parentGuard{}, arm.Errorf(http.StatusNotFound, arm.CodeParentResourceNotFound,
			"Can not perform requested operation on nested resource. Parent resource '%s' not found.", parent.Name())
	case err != nil:
		return parentGuard{}, err
	}
	if it.Value.Resource.ProvisioningState() == StateDeleting {
		return parentGuard{}, arm.Errorf(http.StatusConflict, arm.CodeConflict,
			"The parent '%s' is being deleted; no changes can be made below it.", it.Value.Resource.ID)
	}
	return parentGuard{key: resources.Key(key), rev: it.Revision}, nil
}

// putBody is the envelope of a PUT body; properties are kept generic.
type putBody struct {
	Location         string            `json:"location"`
	ExtendedLocation json.RawMessage   `json:"extendedLocation"`
	Tags             map[string]string `json:"tags"`
	Kind             string            `json:"kind"`
	ManagedBy        string            `json:"managedBy"`
	SKU              json.RawMessage   `json:"sku"`
	Identity         json.RawMessage   `json:"identity"`
	Properties       json.RawMessage   `json:"properties"`
}

// Put answers PUT: create or replace.
func (s *Service) Put(ctx context.Context, req *Request) (*Response, error) {
	t, err := req.typeOf(s)
	if err != nil {
		return nil, err
	}
	if t.SystemManaged {
		return nil, refuseSystemManaged(req.ID)
	}
	if err := s.validateName(t, req.ID); err != nil {
		return nil, err
	}
	decode := arm.DecodeStrict
	if t.LenientBody {
		decode = arm.DecodeLenient
	}
	var body putBody
	if err := decode(req.Body, &body); err != nil {
		return nil, err
	}
	props, err := decodeProperties(body.Properties)
	if err != nil {
		return nil, err
	}
	if err := validateTags(body.Tags); err != nil {
		return nil, err
	}
	if t.Keeper != nil {
		return s.putKept(ctx, req, t, props)
	}
	return retryConflicts(req, func() (*Response, error) {
		return s.putOnce(ctx, req, t, &body, maps.Clone(props)) // each attempt starts from the body
	})
}

// putKept hands a PUT to the type's Keeper, with the record of the change.
func (s *Service) putKept(ctx context.Context, req *Request, t *Type, props map[string]any) (*Response, error) {
	w := &Write{ID: req.ID, APIVersion: req.APIVersion, Caller: req.Caller, New: &Resource{
		ID: req.ID.String(), Name: req.ID.Name(), Type: t.FullName(), Properties: props,
	}}
	if t.Virtual != nil {
		w.Old, _ = t.Virtual(ctx, req.ID)
	}
	if t.Validate != nil {
		if err := t.Validate(ctx, w); err != nil {
			return nil, err
		}
	}
	if len(w.Claims) > 0 {
		return nil, fmt.Errorf("type %s: a Keeper's resources cannot hold claims", t.FullName())
	}
	r, created, err := t.Keeper.Put(ctx, w, s.auditOps(req.Audit, req.ID.String(), audit.StatusSucceeded, 0))
	if err != nil {
		return nil, err
	}
	req.recorded = true
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return &Response{Status: status, Body: r}, nil
}

func (s *Service) putOnce(ctx context.Context, req *Request, t *Type, body *putBody, props map[string]any) (*Response, error) {
	guard, err := s.checkParents(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	key := storeKey(req.ID)
	old, oldRev, err := s.readForWrite(ctx, key, req.Header)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	rec := record{
		Resource: Resource{
			ID:               req.ID.String(),
			Name:             req.ID.Name(),
			Type:             t.FullName(),
			ExtendedLocation: body.ExtendedLocation,
			Kind:             body.Kind,
			ManagedBy:        body.ManagedBy,
			SKU:              body.SKU,
			Identity:         body.Identity,
			Properties:       props,
		},
		CreatedTime: now,
		ChangedTime: now,
	}
	if t.Tracked || t.LocationOptional && body.Location != "" {
		loc, err := s.checkLocation(body.Location, old)
		if err != nil {
			return nil, err
		}
		rec.Resource.Location = loc
		rec.Resource.Tags = body.Tags
	}
	var oldRes *Resource
	if old != nil {
		oldRes = &old.Resource
		rec.CreatedTime = old.CreatedTime
		if err := keepExtendedLocation(&rec.Resource, oldRes); err != nil {
			return nil, err
		}
	}
	if err := keepReadOnly(t, rec.Resource.Properties, oldRes); err != nil {
		return nil, err
	}
	if oldRes != nil {
		keepSensitive(rec.Resource.Properties, oldRes.Properties, t.Sensitive)
	}
	rec.Resource.SystemData = systemData(oldRes, req.Caller, now)
	w := &Write{ID: req.ID, APIVersion: req.APIVersion, Caller: req.Caller, New: &rec.Resource, Old: oldRes}
	if old != nil {
		w.held = old.Claims
	}
	if t.Validate != nil {
		if err := t.Validate(ctx, w); err != nil {
			return nil, err
		}
	}
	cc, err := applyClaims(w, &rec)
	if err != nil {
		return nil, err
	}
	status := http.StatusCreated
	if old != nil {
		status = http.StatusOK
	}
	return s.commitWrite(ctx, req, t, key, &rec, oldRev, guard, cc, "put", status)
}

// commitWrite stores rec, as a long-running operation when the type has
// provisioning work, and answers the request.
func (s *Service) commitWrite(ctx context.Context, req *Request, t *Type, key string, rec *record, oldRev int64, guard parentGuard, cc claimChange, kind string, status int) (*Response, error) {
	ops := slices.Clone(cc.ops)
	if g, ok := guard.op(); ok {
		ops = append(ops, g)
	}
	var op *Operation
	if t.Provision != nil {
		op = s.newOperation(req, kind, "")
		rec.OperationID = op.ID
		rec.Resource.Properties["provisioningState"] = StateAccepted
		ops = append(ops, operations.Create(op.ID, *op), activeOps.Create(op.ID, struct{}{}))
	} else {
		rec.OperationID = ""
		rec.Resource.Properties["provisioningState"] = StateSucceeded
	}
	ops = append(ops, resources.Update(key, *rec, oldRev))
	switch {
	case op == nil:
		ops = append(ops, s.auditOps(req.Audit, rec.Resource.ID, audit.StatusSucceeded, status)...)
	case kind == "patch":
		ops = append(ops, s.acceptedOps(req.Audit, rec.Resource.ID, http.StatusAccepted)...)
	default:
		ops = append(ops, s.acceptedOps(req.Audit, rec.Resource.ID, status)...)
	}
	rev, err := s.commitClaims(ctx, cc, ops)
	if err != nil {
		return nil, err
	}
	req.recorded = true
	resp := s.resourceResponse(status, t, &rec.Resource, rev)
	if op != nil {
		resp.Header.Set("Azure-AsyncOperation", s.statusURL(req, op))
		resp.Header.Set("Retry-After", "1")
		if kind == "patch" {
			resp.Status = http.StatusAccepted
			resp.Header.Set("Location", s.resultURL(req, op))
		}
	}
	return resp, nil
}

// readForWrite reads the current record and applies If-Match and
// If-None-Match (arm-contract §2.4).
func (s *Service) readForWrite(ctx context.Context, key string, h http.Header) (*record, int64, error) {
	it, err := resources.Get(ctx, s.store, key)
	var old *record
	if err == nil {
		old = &it.Value
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, 0, err
	}
	if m := h.Get("If-Match"); m != "" {
		if old == nil {
			return nil, 0, preconditionFailed("The resource does not exist, but If-Match was given.")
		}
		if m != "*" {
			if rev, ok := etagRevision(m); !ok || rev != it.Revision {
				return nil, 0, preconditionFailed("The ETag '%s' does not match the resource's current ETag '%s'.", m, etag(it.Revision))
			}
		}
	}
	if m := h.Get("If-None-Match"); m != "" && old != nil {
		if m == "*" {
			return nil, 0, preconditionFailed("The resource already exists, but If-None-Match: * was given.")
		}
		if rev, ok := etagRevision(m); ok && rev == it.Revision {
			return nil, 0, preconditionFailed("The resource's ETag matches If-None-Match '%s'.", m)
		}
	}
	return old, it.Revision, nil
}

func preconditionFailed(format string, args ...any) error {
	return arm.Errorf(http.StatusPreconditionFailed, arm.CodePreconditionFailed, format, args...)
}

// checkLocation normalises a tracked resource's location, which must be the
// one this control plane serves and cannot change.
func (s *Service) checkLocation(loc string, old *record) (string, error) {
	if loc == "" {
		return "", withTarget("location", arm.Errorf(http.StatusBadRequest, "LocationRequired",
			"The location property is required for this definition."))
	}
	norm := normaliseLocation(loc)
	if norm != normaliseLocation(s.location) {
		return "", withTarget("location", arm.Errorf(http.StatusBadRequest, "LocationNotAvailableForResourceType",
			"The provided location '%s' is not available for this resource type. List of available regions is '%s'.", loc, s.location))
	}
	if old != nil && normaliseLocation(old.Resource.Location) != norm {
		return "", withTarget("location", arm.Errorf(http.StatusBadRequest, "InvalidResourceLocation",
			"The resource '%s' already exists in location '%s'. A resource with the same name cannot be created in location '%s'.", old.Resource.Name, old.Resource.Location, loc))
	}
	return norm, nil
}

func normaliseLocation(l string) string { return strings.ToLower(strings.ReplaceAll(l, " ", "")) }

// keepExtendedLocation applies ARM's rule that a resource's extended
// location is fixed at creation: a PUT without one keeps it (az resource
// tag and update send none back), and a PUT naming another is refused.
func keepExtendedLocation(r, old *Resource) error {
	if len(r.ExtendedLocation) == 0 {
		r.ExtendedLocation = old.ExtendedLocation
		return nil
	}
	var a, b any
	if json.Unmarshal(r.ExtendedLocation, &a) != nil || json.Unmarshal(old.ExtendedLocation, &b) != nil || !sameJSON(a, b) {
		return arm.FieldError("extendedLocation", "extendedLocation cannot change once the resource exists; it is %s.", old.ExtendedLocation)
	}
	return nil
}

// sameJSON compares decoded JSON values, strings without regard to case
// (resource IDs).
func sameJSON(a, b any) bool {
	switch a := a.(type) {
	case string:
		b, ok := b.(string)
		return ok && strings.EqualFold(a, b)
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if !sameJSON(v, b[k]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a, b)
	}
}

// keepReadOnly drops server-owned properties from a client's body and
// puts back the stored values. A provisioningState that differs from the
// stored one is an error (arm-contract §2.4); an equal one is ignored.
func keepReadOnly(t *Type, props map[string]any, old *Resource) error {
	current := ""
	if old != nil {
		current = old.ProvisioningState()
	}
	if ps, ok := props["provisioningState"]; ok {
		if s, _ := ps.(string); old == nil || !strings.EqualFold(s, current) {
			return arm.FieldError("properties.provisioningState", "provisioningState is read-only; it cannot be set to '%v'.", ps)
		}
	}
	delete(props, "provisioningState")
	for _, name := range t.ReadOnly {
		delete(props, name)
		if old != nil {
			if v, ok := old.Properties[name]; ok {
				props[name] = v
			}
		}
	}
	return nil
}

func systemData(old *Resource, c Caller, now time.Time) *SystemData {
	sd := &SystemData{CreatedBy: c.Name, CreatedByType: c.Type, CreatedAt: now}
	if old != nil && old.SystemData != nil {
		sd.CreatedBy, sd.CreatedByType, sd.CreatedAt = old.SystemData.CreatedBy, old.SystemData.CreatedByType, old.SystemData.CreatedAt
	}
	sd.LastModifiedBy, sd.LastModifiedByType, sd.LastModifiedAt = c.Name, c.Type, now
	return sd
}

func decodeProperties(raw json.RawMessage) (map[string]any, error) {
	props := map[string]any{}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return props, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&props); err != nil {
		return nil, arm.FieldError("properties", "properties must be a JSON object.")
	}
	return props, nil
}

// validateTags applies ARM's tag rules (arm-contract §2.5).
func validateTags(tags map[string]string) error {
	if len(tags) > 50 {
		return arm.FieldError("tags", "At most 50 tags are allowed; the request has %d.", len(tags))
	}
	for k, v := range tags {
		switch {
		case k == "":
			return arm.FieldError("tags", "A tag name cannot be empty.")
		case len(k) > 512:
			return arm.FieldError("tags", "The tag name '%s…' is longer than 512 characters.", k[:32])
		case strings.ContainsAny(k, `<>%&\?/`):
			return arm.FieldError("tags", "The tag name '%s' has a character that is not allowed (<, >, %%, &, \\, ?, /).", k)
		case len(v) > 256:
			return arm.FieldError("tags."+k, "The value of tag '%s' is longer than 256 characters.", k)
		}
	}
	return nil
}

func (s *Service) validateName(t *Type, id arm.ID) error {
	name := id.Name()
	if t.NamePattern != nil && !t.NamePattern.MatchString(name) {
		return withTarget("name", arm.Errorf(http.StatusBadRequest, arm.CodeInvalidResourceName,
			"The resource name '%s' is invalid. %s", name, t.NameRule))
	}
	return nil
}

// Patch answers PATCH: tags are replaced whole, properties merged (RFC 7396).
func (s *Service) Patch(ctx context.Context, req *Request) (*Response, error) {
	t, err := req.typeOf(s)
	if err != nil {
		return nil, err
	}
	var body putBody
	if err := arm.DecodeStrict(req.Body, &body); err != nil {
		return nil, err
	}
	if err := validateTags(body.Tags); err != nil {
		return nil, err
	}
	return retryConflicts(req, func() (*Response, error) { return s.patchOnce(ctx, req, t, &body) })
}

func (s *Service) patchOnce(ctx context.Context, req *Request, t *Type, body *putBody) (*Response, error) {
	guard, err := s.checkParents(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	key := storeKey(req.ID)
	old, oldRev, err := s.readForWrite(ctx, key, req.Header)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, arm.ResourceNotFound(req.ID)
	}
	rec := *old
	rec.Resource.ID = req.ID.String() // the latest casing wins
	rec.Resource.Name = req.ID.Name()
	if body.Tags != nil && t.Tracked {
		rec.Resource.Tags = body.Tags
	}
	for _, set := range []struct {
		dst *json.RawMessage
		src json.RawMessage
	}{{&rec.Resource.SKU, body.SKU}, {&rec.Resource.Identity, body.Identity}} {
		if len(set.src) > 0 {
			*set.dst = set.src
		}
	}
	propsChanged := len(body.Properties) > 0 && !bytes.Equal(bytes.TrimSpace(body.Properties), []byte("{}"))
	if propsChanged {
		merged, err := mergeProperties(old.Resource.Properties, body.Properties)
		if err != nil {
			return nil, err
		}
		if err := keepReadOnly(t, merged, &old.Resource); err != nil {
			return nil, err
		}
		keepSensitive(merged, old.Resource.Properties, t.Sensitive)
		rec.Resource.Properties = merged
	} else {
		rec.Resource.Properties = maps.Clone(old.Resource.Properties)
	}
	now := s.now().UTC()
	rec.ChangedTime = now
	rec.Resource.SystemData = systemData(&old.Resource, req.Caller, now)
	w := &Write{ID: req.ID, APIVersion: req.APIVersion, Caller: req.Caller, New: &rec.Resource, Old: &old.Resource, held: old.Claims}
	if t.Validate != nil {
		if err := t.Validate(ctx, w); err != nil {
			return nil, err
		}
	}
	cc, err := applyClaims(w, &rec)
	if err != nil {
		return nil, err
	}
	if !propsChanged {
		// Tags and other envelope fields need no provisioning work.
		rec.Resource.Properties["provisioningState"] = old.Resource.Properties["provisioningState"]
		ops := append(slices.Clone(cc.ops), resources.Update(key, rec, oldRev))
		ops = append(ops, s.auditOps(req.Audit, rec.Resource.ID, audit.StatusSucceeded, http.StatusOK)...)
		rev, err := s.commitClaims(ctx, cc, ops)
		if err != nil {
			return nil, err
		}
		req.recorded = true
		return s.resourceResponse(http.StatusOK, t, &rec.Resource, rev), nil
	}
	return s.commitWrite(ctx, req, t, key, &rec, oldRev, guard, cc, "patch", http.StatusOK)
}

func mergeProperties(old map[string]any, patch json.RawMessage) (map[string]any, error) {
	base, err := json.Marshal(old)
	if err != nil {
		return nil, err
	}
	merged, err := arm.MergePatch(base, patch)
	if err != nil {
		if e, ok := err.(*arm.Error); ok {
			e.Target = "properties"
		}
		return nil, err
	}
	return decodeProperties(merged)
}

// Delete answers DELETE. Children go with their parent.
func (s *Service) Delete(ctx context.Context, req *Request) (*Response, error) {
	t, err := req.typeOf(s)
	if err != nil {
		return nil, err
	}
	if t.SystemManaged {
		return nil, refuseSystemManaged(req.ID)
	}
	return retryConflicts(req, func() (*Response, error) { return s.deleteOnce(ctx, req, t) })
}

func (s *Service) deleteOnce(ctx context.Context, req *Request, t *Type) (*Response, error) {
	if t.Keeper != nil {
		existed, err := t.Keeper.Delete(ctx, req.ID, s.auditOps(req.Audit, req.ID.String(), audit.StatusSucceeded, http.StatusOK))
		if err != nil {
			return nil, err
		}
		if !existed {
			return &Response{Status: http.StatusNoContent}, nil
		}
		req.recorded = true
		return &Response{Status: http.StatusOK}, nil
	}
	if t.Virtual != nil {
		if _, ok := t.Virtual(ctx, req.ID); ok {
			return nil, arm.Errorf(http.StatusBadRequest, "NotSupported", "'%s' is built in and cannot be deleted.", req.ID)
		}
	}
	key := storeKey(req.ID)
	old, oldRev, err := s.readForWrite(ctx, key, req.Header)
	if err != nil {
		return nil, err
	}
	if old == nil {
		// Deleting what is not there succeeds (arm-contract §2.4), unless
		// its group or subscription is missing: 404 for those.
		if req.ID.Namespace == "" {
			return nil, arm.ResourceNotFound(req.ID)
		}
		_, err := s.checkParents(ctx, req.ID)
		var ae *arm.Error
		if err == nil || errors.As(err, &ae) && ae.Code == arm.CodeParentResourceNotFound {
			return &Response{Status: http.StatusNoContent}, nil
		}
		return nil, err
	}
	var guards []store.Op
	if t.OwnsPool {
		guard, err := s.poolGuard(ctx, req.ID)
		if err != nil {
			return nil, err
		}
		guards = append(guards, guard)
	}
	if t.ValidateDelete != nil {
		if err := t.ValidateDelete(ctx, &old.Resource); err != nil {
			return nil, err
		}
	}
	if t.Deprovision == nil {
		ops, err := s.deleteOps(ctx, t, req.ID, old.Claims)
		if err != nil {
			return nil, err
		}
		ops = append(append(ops, guards...), resources.DeleteAt(key, oldRev))
		ops = append(ops, s.auditOps(req.Audit, old.Resource.ID, audit.StatusSucceeded, http.StatusOK)...)
		if _, err := s.store.Txn(ctx, ops...); err != nil {
			return nil, err
		}
		req.recorded = true
		return &Response{Status: http.StatusOK}, nil
	}
	if old.Resource.ProvisioningState() == StateDeleting {
		// Already being deleted: point the caller at the same operation.
		if it, err := operations.Get(ctx, s.store, old.OperationID); err == nil {
			return s.acceptedResponse(req, &it.Value), nil
		}
	}
	op := s.newOperation(req, "delete", "")
	rec := *old
	rec.Resource.Properties = maps.Clone(old.Resource.Properties)
	rec.Resource.Properties["provisioningState"] = StateDeleting
	rec.OperationID = op.ID
	ops := append([]store.Op{
		resources.Update(key, rec, oldRev),
		operations.Create(op.ID, *op),
		activeOps.Create(op.ID, struct{}{}),
	}, append(guards, s.acceptedOps(req.Audit, rec.Resource.ID, http.StatusAccepted)...)...)
	if _, err := s.store.Txn(ctx, ops...); err != nil {
		return nil, err
	}
	req.recorded = true
	return s.acceptedResponse(req, op), nil
}

// Action answers POST {resource}/{action}.
func (s *Service) Action(ctx context.Context, req *Request, name string) (*Response, error) {
	t, err := req.typeOf(s)
	if err != nil {
		return nil, err
	}
	for n, query := range t.Queries {
		if strings.EqualFold(n, name) {
			return query(ctx, req)
		}
	}
	var action Action
	found := false
	for n, a := range t.Actions {
		if strings.EqualFold(n, name) {
			name, action, found = n, a, true
		}
	}
	if !found {
		return nil, arm.Errorf(http.StatusNotFound, "InvalidAction",
			"The action '%s' is not supported on resources of type '%s'.", name, t.FullName())
	}
	return retryConflicts(req, func() (*Response, error) { return s.actionOnce(ctx, req, t, name, action) })
}

func (s *Service) actionOnce(ctx context.Context, req *Request, t *Type, name string, action Action) (*Response, error) {
	it, err := s.read(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	if it.Value.OperationID != "" {
		return nil, arm.Errorf(http.StatusConflict, arm.CodeAnotherOperationInProgress,
			"Another operation is in progress on the resource '%s'; retry when it completes.", it.Value.Resource.ID)
	}
	input := json.RawMessage(bytes.TrimSpace(req.Body))
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	if !json.Valid(input) {
		var v any
		return nil, arm.DecodeStrict(input, &v)
	}
	var ops []store.Op
	if action.Serialize != nil {
		// Read the key before Validate; the commit changes it, guarded by
		// that read, so a contender accepted meanwhile makes this attempt
		// conflict and validate again.
		key := action.Serialize(&it.Value.Resource, input)
		kv, err := s.store.Get(ctx, serialKeys+key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		ops = append(ops, store.Update(serialKeys+key, []byte(req.ID.String()), kv.Revision))
	}
	if action.Validate != nil {
		if err := action.Validate(ctx, &it.Value.Resource, input); err != nil {
			return nil, err
		}
	}
	op := s.newOperation(req, "action", name)
	op.Input = input
	rec := it.Value
	rec.OperationID = op.ID
	ops = append(ops,
		resources.Update(storeKey(req.ID), rec, it.Revision),
		operations.Create(op.ID, *op),
		activeOps.Create(op.ID, struct{}{}),
	)
	ops = append(ops, s.acceptedOps(req.Audit, rec.Resource.ID, http.StatusAccepted)...)
	if _, err := s.store.Txn(ctx, ops...); err != nil {
		return nil, err
	}
	req.recorded = true
	return s.acceptedResponse(req, op), nil
}

func (s *Service) newOperation(req *Request, kind, action string) *Operation {
	return &Operation{
		ID:           uuid.NewString(),
		Kind:         kind,
		Action:       action,
		ResourceID:   req.ID.String(),
		Namespace:    operationNamespace(req.ID),
		Location:     s.location,
		Subscription: req.ID.Subscription,
		APIVersion:   req.APIVersion,
		Status:       OpInProgress,
		StartTime:    s.now().UTC(),
		Caller:       req.Caller,
		Audit:        req.Audit,
	}
}

// operationNamespace is the namespace whose locations/operationStatuses
// URL reports on an operation: the resource's, or Microsoft.Resources for
// resource groups.
func operationNamespace(id arm.ID) string {
	if id.Namespace == "" {
		return "Microsoft.Resources"
	}
	return id.Namespace
}

// acceptedResponse is 202 with both polling URLs (arm-contract §2.7-2.8).
func (s *Service) acceptedResponse(req *Request, op *Operation) *Response {
	h := http.Header{}
	h.Set("Location", s.resultURL(req, op))
	h.Set("Azure-AsyncOperation", s.statusURL(req, op))
	h.Set("Retry-After", "1")
	return &Response{Status: http.StatusAccepted, Header: h}
}

func (s *Service) statusURL(req *Request, op *Operation) string {
	return fmt.Sprintf("%s/subscriptions/%s/providers/%s/locations/%s/operationStatuses/%s?api-version=%s",
		req.BaseURL, op.Subscription, op.Namespace, op.Location, op.ID, op.APIVersion)
}

func (s *Service) resultURL(req *Request, op *Operation) string {
	if op.Namespace == "Microsoft.Resources" {
		return fmt.Sprintf("%s/subscriptions/%s/operationresults/%s?api-version=%s", req.BaseURL, op.Subscription, op.ID, op.APIVersion)
	}
	return fmt.Sprintf("%s/subscriptions/%s/providers/%s/locations/%s/operationResults/%s?api-version=%s",
		req.BaseURL, op.Subscription, op.Namespace, op.Location, op.ID, op.APIVersion)
}

// resourceResponse is a resource with its ETag, as the body and header of
// a response.
func (s *Service) resourceResponse(status int, t *Type, r *Resource, rev int64) *Response {
	out := *r
	out.ETag = etag(rev)
	if !t.Tracked {
		out.Location, out.Tags = "", nil
	}
	if len(t.Sensitive) > 0 {
		out.Properties = withoutSensitive(out.Properties, t.Sensitive)
	}
	h := http.Header{}
	h.Set("ETag", out.ETag)
	return &Response{Status: status, Body: &out, Header: h}
}

// withTarget names the field an error is about.
func withTarget(target string, e *arm.Error) *arm.Error {
	e.Target = target
	return e
}

// retryConflicts runs once again while it fails with a store conflict:
// somebody wrote the resource or its parent between its read and its
// commit, so it reads again and redoes the request. With If-Match the
// client asked for exactly the version it read, so a conflict is final.
//
// A write that lost an item it claimed to another writer runs again more
// often (maxClaimRetries), after a short random wait: its Validate then
// sees the item taken and claims another or refuses.
func retryConflicts(req *Request, once func() (*Response, error)) (*Response, error) {
	lost := 0
	for attempt := 0; ; attempt++ {
		resp, err := once()
		if !errors.Is(err, store.ErrConflict) {
			return resp, err
		}
		if errors.Is(err, errClaimTaken) && lost < maxClaimRetries {
			lost++
			attempt--
			claimBackoff(lost)
			continue
		}
		if attempt == 4 || req.Header.Get("If-Match") != "" {
			return nil, arm.Errorf(http.StatusConflict, arm.CodeConflict,
				"The resource '%s' was changed by another request at the same time. Retry the request.", req.ID)
		}
	}
}
