package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// The tenancy every test works in.
const (
	tenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	subID    = "6f1c3a52-0c1e-4d4b-9a57-2f0e0c9f7a11"
	baseURL  = "https://example.test"

	groupAPI  = "2021-04-01" // a Microsoft.Resources version
	widgetAPI = "2025-02-01" // the newest stable Test.Widgets version
	ns        = "Test.Widgets"
)

// widgetVersions are deliberately out of order: the error listing them
// must sort them newest-stable-first.
var widgetVersions = []string{"2023-05-01-preview", "2022-01-01", "2025-02-01", "2024-01-01"}

var (
	alice = resource.Caller{ObjectID: "oid-alice", Name: "alice@example.test", Type: "User"}
	bob   = resource.Caller{ObjectID: "oid-bob", Name: "deploy-app", Type: "Application"}
)

// fakeProvider is the behaviour behind Test.Widgets/slowWidgets, keyed by
// lower-cased resource name so that one environment serves many subtests.
type fakeProvider struct {
	mu sync.Mutex
	// fail, when set for a name, decides what the nth call (from 1) of
	// Provision returns; nil lets it succeed.
	fail map[string]func(n int) error
	// gates hold Provision, Deprovision and the restart action of a name
	// until the channel is closed.
	gates map[string]chan struct{}
	// subProgress, when set for a name, makes its Deprovision report that
	// much progress through its Task.
	subProgress map[string]float64

	provisions    map[string]int
	deprovisions  map[string]int // Deprovision calls begun
	deprovisioned map[string]int // Deprovision calls done
	restarts      map[string]int
}

func newFakeProvider() *fakeProvider {
	return &fakeProvider{
		fail:          map[string]func(int) error{},
		gates:         map[string]chan struct{}{},
		subProgress:   map[string]float64{},
		provisions:    map[string]int{},
		deprovisions:  map[string]int{},
		deprovisioned: map[string]int{},
		restarts:      map[string]int{},
	}
}

// gate makes the provider's work on name wait until the returned func is called.
func (p *fakeProvider) gate(name string) (open func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.gates[strings.ToLower(name)] = ch
	p.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (p *fakeProvider) setFail(name string, f func(n int) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail[strings.ToLower(name)] = f
}

func (p *fakeProvider) setSubProgress(name string, percent float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subProgress[strings.ToLower(name)] = percent
}

func (p *fakeProvider) count(m map[string]int, name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return m[strings.ToLower(name)]
}

func (p *fakeProvider) wait(ctx context.Context, name string) error {
	p.mu.Lock()
	ch := p.gates[strings.ToLower(name)]
	p.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *fakeProvider) provision(ctx context.Context, t *resource.Task) error {
	name := strings.ToLower(t.Resource.Name)
	p.mu.Lock()
	p.provisions[name]++
	n, fail := p.provisions[name], p.fail[name]
	p.mu.Unlock()
	if err := p.wait(ctx, name); err != nil {
		return err
	}
	if fail != nil {
		if err := fail(n); err != nil {
			return err
		}
	}
	t.Progress(ctx, 50)
	t.Resource.Properties["endpoint"] = "https://" + name + ".widgets.example.test"
	return nil
}

func (p *fakeProvider) deprovision(ctx context.Context, t *resource.Task) error {
	name := strings.ToLower(t.Resource.Name)
	p.mu.Lock()
	percent, report := p.subProgress[name]
	p.deprovisions[name]++
	p.mu.Unlock()
	if report {
		t.Progress(ctx, percent)
	}
	if err := p.wait(ctx, name); err != nil {
		return err
	}
	p.mu.Lock()
	p.deprovisioned[name]++
	p.mu.Unlock()
	return nil
}

// restartInput is the body of POST …/slowWidgets/{name}/restart.
type restartInput struct {
	Mode string `json:"mode"`
}

func (p *fakeProvider) restart(ctx context.Context, t *resource.Task) (any, error) {
	var in restartInput
	if err := t.Input(&in); err != nil {
		return nil, err
	}
	name := strings.ToLower(t.Resource.Name)
	if err := p.wait(ctx, name); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.restarts[name]++
	p.mu.Unlock()
	return map[string]string{"exitCode": "0", "mode": in.Mode}, nil
}

func validateRestart(_ context.Context, _ *resource.Resource, input json.RawMessage) error {
	var in restartInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if in.Mode != "soft" && in.Mode != "hard" {
		return arm.FieldError("mode", "mode must be 'soft' or 'hard', not '%s'.", in.Mode)
	}
	return nil
}

// widgetProps is the typed model of Test.Widgets/widgets.
type widgetProps struct {
	Size   int    `json:"size"`
	Color  string `json:"color"`
	Serial string `json:"serial"`
	Secret string `json:"secret"`
	Parts  []struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	} `json:"parts"`
}

// validateWidget decodes the properties strictly and gives a new widget
// its read-only serial number.
func validateWidget(_ context.Context, w *resource.Write) error {
	var p widgetProps
	if err := resource.DecodeProperties(w.New, &p); err != nil {
		return err
	}
	if w.Old == nil {
		w.New.Properties["serial"] = "SN-" + strings.ToLower(w.ID.Name())
	}
	return nil
}

// groupType is Microsoft.Resources/resourceGroups as providers/resources
// registers it.
func groupType(svc *resource.Service) *resource.Type {
	return &resource.Type{
		Namespace:   "Microsoft.Resources",
		Name:        "resourceGroups",
		APIVersions: []string{"2024-11-01", "2022-12-01", groupAPI, "2019-11-01"},
		Scope:       resource.ScopeSubscription,
		Tracked:     true,
		Deprovision: svc.DeleteContents,
	}
}

func testTypes(p *fakeProvider) []*resource.Type {
	return []*resource.Type{
		{
			Namespace:   ns,
			Name:        "widgets",
			APIVersions: widgetVersions,
			Tracked:     true,
			NamePattern: regexp.MustCompile(`^[A-Za-z0-9-]{1,40}$`),
			NameRule:    "Use 1-40 letters, digits and hyphens.",
			ReadOnly:    []string{"serial"},
			Sensitive:   []string{"secret", "parts[].key"},
			Validate:    validateWidget,
		},
		{Namespace: ns, Name: "widgets/gears", APIVersions: widgetVersions},
		// widgetSets shares its first letters with widgets: in store key
		// order "test.widgets/widgets|" sorts after "test.widgets/widgetsets|".
		// A widget set's GET shows a label computed from its name.
		{Namespace: ns, Name: "widgetSets", APIVersions: widgetVersions, Tracked: true,
			Computed: func(_ context.Context, r *resource.Resource) error {
				if r.Properties == nil {
					r.Properties = map[string]any{}
				}
				r.Properties["label"] = "set " + r.Name
				return nil
			}},
		{
			Namespace:   ns,
			Name:        "slowWidgets",
			APIVersions: widgetVersions,
			Tracked:     true,
			ReadOnly:    []string{"endpoint"},
			Provision:   p.provision,
			Deprovision: p.deprovision,
			Actions: map[string]resource.Action{
				"restart": {Validate: validateRestart, Run: p.restart},
			},
		},
		{Namespace: ns, Name: "slowWidgets/parts", APIVersions: widgetVersions},
		{
			Namespace:     ns,
			Name:          "sysWidgets",
			APIVersions:   widgetVersions,
			Tracked:       true,
			SystemManaged: true,
			Reported:      []string{"observed"},
			Actions:       map[string]resource.Action{"spin": {Run: p.spin}, "look": {Run: p.look}},
		},
		{Namespace: ns, Name: "sysWidgets/parts", APIVersions: widgetVersions},
	}
}

// look changes phase to "looked" without saving it, shows 10% progress,
// waits at its gate and refreshes the resource: its result is the
// "observed" it then sees.
func (p *fakeProvider) look(ctx context.Context, t *resource.Task) (any, error) {
	t.Resource.Properties["phase"] = "looked"
	t.Progress(ctx, 10)
	if err := p.wait(ctx, t.Resource.Name); err != nil {
		return nil, err
	}
	if err := t.Refresh(ctx); err != nil {
		return nil, err
	}
	return map[string]any{"observed": t.Resource.Properties["observed"]}, nil
}

// spin shows its progress on the resource before it ends: phase is
// "spinning" while it waits at its gate, then "spun".
func (p *fakeProvider) spin(ctx context.Context, t *resource.Task) (any, error) {
	t.Resource.Properties["phase"] = "spinning"
	if err := t.Save(ctx); err != nil {
		return nil, err
	}
	if err := p.wait(ctx, t.Resource.Name); err != nil {
		return nil, err
	}
	t.Resource.Properties["phase"] = "spun"
	return nil, nil
}

// clock ticks one millisecond on every reading, so that every write gets a
// later time than the one before.
type clock struct{ n atomic.Int64 }

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (c *clock) now() time.Time { return epoch.Add(time.Duration(c.n.Add(1)) * time.Millisecond) }

type env struct {
	st    *store.Store
	svc   *resource.Service
	p     *fakeProvider
	clock *clock // shared by every Service on st
}

// newEnv starts a store and a service with the test types, a tenant and
// its subscription. The operations controller is not running.
func newEnv(t testing.TB) *env {
	t.Helper()
	st := storetest.Start(t)
	e := &env{st: st, p: newFakeProvider(), clock: &clock{}}
	e.svc = e.service(t, "local")
	return e
}

// service starts another Service on the same store, as another replica
// (or a restarted one) would.
func (e *env) service(t testing.TB, location string) *resource.Service {
	t.Helper()
	svc := resource.NewService(resource.Config{
		Store:    e.st,
		Location: location,
		Now:      e.clock.now,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	svc.Register(groupType(svc))
	svc.Register(testTypes(e.p)...)
	ctx := t.Context()
	if err := svc.CreateTenancy(ctx,
		resource.Tenant{ID: tenantID, DisplayName: "Contoso", DefaultDomain: "contoso.example.test"},
		resource.Subscription{ID: subID, TenantID: tenantID, DisplayName: "Test", State: "Enabled"},
	); err != nil {
		t.Fatalf("CreateTenancy: %v", err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return svc
}

// runOperations starts the operations controller as replicaID and returns
// a func that stops it and waits for it to return. It is stopped at the
// end of the test in any case, before the store closes.
func runOperations(t testing.TB, svc *resource.Service, replicaID string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := svc.RunOperations(ctx, replicaID); err != nil {
			t.Errorf("RunOperations(%s) = %v", replicaID, err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// IDs.

func groupID(rg string) string { return "/subscriptions/" + subID + "/resourceGroups/" + rg }

func widgetID(rg, name string) string {
	return groupID(rg) + "/providers/" + ns + "/widgets/" + name
}

func gearID(rg, widget, name string) string { return widgetID(rg, widget) + "/gears/" + name }

func widgetSetID(rg, name string) string {
	return groupID(rg) + "/providers/" + ns + "/widgetSets/" + name
}

func slowID(rg, name string) string {
	return groupID(rg) + "/providers/" + ns + "/slowWidgets/" + name
}

func partID(rg, slow, name string) string { return slowID(rg, slow) + "/parts/" + name }

// req builds a request on id with body, as the front door would, in the
// api-version of id's namespace, from alice.
func req(t testing.TB, id, body string) *resource.Request {
	t.Helper()
	pid, err := arm.ParseID(id)
	if err != nil {
		t.Fatalf("ParseID(%q): %v", id, err)
	}
	v := widgetAPI
	if pid.Namespace == "" {
		v = groupAPI
	}
	return &resource.Request{
		ID:         pid,
		APIVersion: v,
		Body:       []byte(body),
		Header:     http.Header{},
		Caller:     alice,
		BaseURL:    baseURL,
		Path:       pid.String(),
	}
}

func withHeader(r *resource.Request, k, v string) *resource.Request {
	r.Header.Set(k, v)
	return r
}

func withCaller(r *resource.Request, c resource.Caller) *resource.Request {
	r.Caller = c
	return r
}

// Wire shapes, decoded from what the front door would write.

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

type opStatus struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	ResourceID      string         `json:"resourceId"`
	Status          string         `json:"status"`
	StartTime       time.Time      `json:"startTime"`
	EndTime         *time.Time     `json:"endTime"`
	PercentComplete float64        `json:"percentComplete"`
	Error           *apiError      `json:"error"`
	Properties      map[string]any `json:"properties"`
}

// decode round-trips a response body through JSON, as a client sees it.
func decode[T any](t testing.TB, body any) T {
	t.Helper()
	var v T
	b, raw := body.([]byte) // a body written as it is (GET passes the stored JSON through)
	if !raw {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatalf("marshal %T: %v", body, err)
		}
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("unmarshal %s into %T: %v", b, v, err)
	}
	return v
}

func resourceOf(t testing.TB, resp *resource.Response) resource.Resource {
	t.Helper()
	if resp == nil || resp.Body == nil {
		t.Fatalf("response %+v has no body", resp)
	}
	return decode[resource.Resource](t, resp.Body)
}

// checkError asserts that err is an *arm.Error with this status, code and
// target (any target when target is "*"), and returns it.
func checkError(t testing.TB, call string, err error, status int, code, target string) *arm.Error {
	t.Helper()
	if err == nil {
		t.Errorf("%s = nil error, want %d %s", call, status, code)
		return nil
	}
	ae, ok := errors.AsType[*arm.Error](err)
	if !ok {
		t.Errorf("%s = %v (%T), want *arm.Error %d %s", call, err, err, status, code)
		return nil
	}
	if ae.Status != status || ae.Code != code || target != "*" && ae.Target != target {
		t.Errorf("%s = %d %s (target %q): %s; want %d %s (target %q)", call, ae.Status, ae.Code, ae.Target, ae.Message, status, code, target)
	}
	return ae
}

// must fails the test on an error and returns the response.
func must(t testing.TB, call string, resp *resource.Response, err error) *resource.Response {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	return resp
}

func wantStatus(t testing.TB, call string, resp *resource.Response, err error, status int) *resource.Response {
	t.Helper()
	resp = must(t, call, resp, err)
	if resp.Status != status {
		t.Fatalf("%s = %d, want %d (body %+v)", call, resp.Status, status, resp.Body)
	}
	return resp
}

// Common operations.

func (e *env) putGroup(t testing.TB, rg string) {
	t.Helper()
	resp, err := e.svc.Put(t.Context(), req(t, groupID(rg), `{"location":"local"}`))
	wantStatus(t, "Put(group "+rg+")", resp, err, http.StatusCreated)
}

func (e *env) put(t testing.TB, id, body string) *resource.Response {
	t.Helper()
	resp, err := e.svc.Put(t.Context(), req(t, id, body))
	return must(t, fmt.Sprintf("Put(%s)", id), resp, err)
}

func (e *env) get(t testing.TB, id string) (resource.Resource, error) {
	t.Helper()
	resp, err := e.svc.Get(t.Context(), req(t, id, ""))
	if err != nil {
		return resource.Resource{}, err
	}
	return resourceOf(t, resp), nil
}

func (e *env) mustGet(t testing.TB, id string) resource.Resource {
	t.Helper()
	r, err := e.get(t, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

// opID is the operation id at the end of a polling URL.
func opID(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil || u == "" {
		t.Fatalf("polling URL %q: %v", u, err)
	}
	return path.Base(p.Path)
}

func (e *env) opStatus(t testing.TB, id string) opStatus {
	t.Helper()
	resp, err := e.svc.OperationStatus(t.Context(), req(t, groupID("rg"), ""), subID, id)
	resp = wantStatus(t, "OperationStatus("+id+")", resp, err, http.StatusOK)
	return decode[opStatus](t, resp.Body)
}

// waitOp polls the operation until it ends.
func (e *env) waitOp(t testing.TB, id string) opStatus {
	t.Helper()
	var st opStatus
	waitFor(t, "operation "+id+" to end", func() bool {
		st = e.opStatus(t, id)
		return st.Status != resource.OpInProgress
	})
	return st
}

// waitFor polls cond until it holds, for at most 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// putSlow creates a slowWidget and waits for it to be provisioned.
func (e *env) putSlow(t testing.TB, rg, name string) resource.Resource {
	t.Helper()
	resp := e.put(t, slowID(rg, name), `{"location":"local","properties":{"color":"red"}}`)
	if st := e.waitOp(t, opID(t, resp.Header.Get("Azure-AsyncOperation"))); st.Status != resource.OpSucceeded {
		t.Fatalf("provisioning %s ended %s: %+v", name, st.Status, st.Error)
	}
	return e.mustGet(t, slowID(rg, name))
}
