package policies

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/policy"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Compliance states are derived data: a pure function of the stored
// resources and the policy in force. Each replica keeps the latest
// evaluation of every resource against every assignment in memory,
// computed on every write and by a full scan at start and every
// ScanInterval; a replica that starts recomputes them, so they are not
// stored.

// evaluated is the latest result of one assignment (or initiative member)
// on one resource.
type evaluated struct {
	result   policy.Result
	state    string // Compliant, NonCompliant, Unknown or Exempt
	assigned *assigned
	*subject // shared by the resource's evaluations
}

// subject is a resource as it was evaluated, and when.
type subject struct {
	resource *resource.Resource
	at       time.Time
}

// stateStore holds the latest evaluations by resource, and which
// resources have if-not-exists results by the type of resource they look
// for.
type stateStore struct {
	mu         sync.RWMutex
	byResource map[string][]evaluated       // lower(resource id) → its evaluations
	byRelated  map[string]map[string]string // lower(related type) → lower(resource id) → resource id
	scanned    time.Time
}

func newStateStore() *stateStore {
	return &stateStore{byResource: map[string][]evaluated{}, byRelated: map[string]map[string]string{}}
}

func (s *stateStore) set(id string, evs []evaluated) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(id)
	s.unindex(key)
	if len(evs) == 0 {
		delete(s.byResource, key)
		return
	}
	s.byResource[key] = evs
	s.index(key, evs)
}

func (s *stateStore) replace(all map[string][]evaluated, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byResource, s.byRelated, s.scanned = all, map[string]map[string]string{}, at
	for key, evs := range all {
		s.index(key, evs)
	}
}

func (s *stateStore) index(key string, evs []evaluated) {
	for _, ev := range evs {
		if x := ev.result.Existence; x != nil {
			typ := strings.ToLower(x.Type)
			if s.byRelated[typ] == nil {
				s.byRelated[typ] = map[string]string{}
			}
			s.byRelated[typ][key] = ev.resource.ID
		}
	}
}

func (s *stateStore) unindex(key string) {
	for _, ev := range s.byResource[key] {
		if x := ev.result.Existence; x != nil {
			delete(s.byRelated[strings.ToLower(x.Type)], key)
		}
	}
}

// relatedTo returns the resources, other than id, whose if-not-exists
// results look for a resource of id's type in id's resource group (or
// subscription, for a subscription-wide existence scope).
func (s *stateStore) relatedTo(id arm.ID) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	self := strings.ToLower(id.String())
	var out []string
	for key, rid := range s.byRelated[strings.ToLower(id.Type())] {
		dep, err := arm.ParseID(rid)
		if key == self || err != nil || !strings.EqualFold(dep.Subscription, id.Subscription) {
			continue
		}
		if strings.EqualFold(dep.ResourceGroup, id.ResourceGroup) || s.subscriptionWide(key, id.Type()) {
			out = append(out, rid)
		}
	}
	return out
}

// subscriptionWide reports whether a resource has an if-not-exists
// result looking for typ anywhere in its subscription.
func (s *stateStore) subscriptionWide(key, typ string) bool {
	for _, ev := range s.byResource[key] {
		if x := ev.result.Existence; x != nil && strings.EqualFold(x.Type, typ) && strings.EqualFold(x.ExistenceScope, "subscription") {
			return true
		}
	}
	return false
}

// within returns the evaluations of the resources at or below scope.
func (s *stateStore) within(scope string) []evaluated {
	scope = normScope(scope)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []evaluated
	for id, evs := range s.byResource {
		if within(id, scope) {
			out = append(out, evs...)
		}
	}
	return out
}

// dirty is a resource whose compliance may have changed: written (or
// deleted) itself, or a related resource of its if-not-exists results
// was.
type dirty struct {
	id      string
	written bool
}

// Written tells the provider that a resource was created, changed or
// deleted: its compliance is evaluated again shortly, off the request
// path, and so is that of the resources whose if-not-exists results look
// for a resource like it.
func (p *Provider) Written(id arm.ID) { p.queue(dirty{id: id.String(), written: true}) }

func (p *Provider) queue(d dirty) {
	select {
	case p.dirty <- d:
	default:
		p.log.Debug("policy evaluation queue full; the next scan covers the resource", "resource", d.id)
	}
}

func (p *Provider) evaluateWrites(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-p.dirty:
			rid, err := arm.ParseID(d.id)
			if err != nil {
				continue
			}
			if d.written {
				p.queueDependents(rid)
			}
			s := p.snapshot()
			if len(s.assignments) == 0 {
				p.states.set(d.id, nil) // nothing in force: no need to read the resource
				continue
			}
			r, err := p.svc.Lookup(ctx, rid)
			if err != nil {
				p.states.set(d.id, nil) // deleted
				continue
			}
			evs := p.evaluate(ctx, s, r, p.context(ctx, rid, ""), time.Now().UTC())
			p.states.set(d.id, evs)
			if d.written {
				p.deployMissing(ctx, r, evs)
			}
		}
	}
}

// queueDependents queues the resources whose if-not-exists results look
// for a resource of id's type where id is: writing or deleting a related
// resource changes their compliance (a deployIfNotExists deployment makes
// the resource it ran for compliant).
func (p *Provider) queueDependents(id arm.ID) {
	for _, dep := range p.states.relatedTo(id) {
		p.queue(dirty{id: dep})
	}
}

// deployMissing is deployIfNotExists on a write: for each enforced
// assignment with an identity whose related resource is missing, the
// assignment's deployment runs as that identity once the written resource
// is provisioned (Azure's AfterProvisioning), so under the roles given to
// it. An assignment without an identity reports NonCompliant, and a
// remediation deploys acting for whoever created it.
func (p *Provider) deployMissing(ctx context.Context, r *resource.Resource, evs []evaluated) {
	for i := range evs {
		ev := &evs[i]
		if ev.state != policy.NonCompliant || ev.result.Effect != policy.DeployIfNotExists || !ev.assigned.enforce {
			continue
		}
		who, ok := identityOf(ev.assigned.resource)
		if !ok {
			continue
		}
		switch r.ProvisioningState() {
		case resource.StateSucceeded:
		case resource.StateFailed, resource.StateCanceled:
			return
		default: // still provisioning: look again shortly
			key := strings.ToLower(r.ID)
			if _, waiting := p.provisioning.LoadOrStore(key, true); !waiting {
				time.AfterFunc(provisioningPoll, func() {
					p.provisioning.Delete(key)
					p.Written(mustID(r.ID))
				})
			}
			return
		}
		if err := p.deployFor(ctx, who, uuid.NewString(), r, ev); err != nil {
			p.log.WarnContext(ctx, "deployIfNotExists did not start", "resource", r.ID, "assignment", ev.result.AssignmentID, "err", err)
		}
	}
}

// provisioningPoll is how often deployIfNotExists looks again at a
// written resource that is still provisioning.
const provisioningPoll = 2 * time.Second

func (p *Provider) scanEvery(ctx context.Context) {
	for {
		if _, err := p.Scan(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("policy compliance scan failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.interval):
		}
	}
}

// Scan evaluates every stored resource against the policy in force and
// replaces the compliance states; it returns how many resources it
// evaluated.
func (p *Provider) Scan(ctx context.Context) (int, error) {
	s := p.snapshot()
	now := time.Now().UTC()
	all := map[string][]evaluated{}
	n := 0
	contexts := map[string]*policy.Context{} // by resource group: one read of each
	contextOf := func(id arm.ID) *policy.Context {
		key := strings.ToLower(id.Subscription + "/" + id.ResourceGroup)
		c, ok := contexts[key]
		if !ok {
			c = p.context(ctx, id, "")
			contexts[key] = c
		}
		return c
	}
	for _, t := range p.svc.Types() {
		if t.Keeper != nil || t.Virtual != nil && t.List != nil {
			continue // kept elsewhere or computed: identities, built-in roles
		}
		rs, err := p.svc.ResourcesOfType(ctx, t.FullName())
		if err != nil {
			return n, err
		}
		for _, r := range rs {
			n++
			if evs := p.evaluate(ctx, s, r, contextOf(mustID(r.ID)), now); len(evs) > 0 {
				all[strings.ToLower(r.ID)] = evs
			}
		}
	}
	p.states.replace(all, now)
	p.log.Info("policy compliance scanned", "resources", n, "assignments", len(s.assignments), "took", time.Since(now))
	return n, nil
}

// evaluate gives r's compliance with every assignment in scope; pctx is
// what resourceGroup() and subscription() see for it.
func (p *Provider) evaluate(ctx context.Context, s *snapshot, r *resource.Resource, pctx *policy.Context, now time.Time) []evaluated {
	in := s.inScope(r.ID, r.Type)
	if len(in.assigned) == 0 {
		return nil
	}
	each := policy.EvaluateEach(in.compiled, resourceMap(r), pctx)
	out := make([]evaluated, 0, len(in.assigned))
	subj := &subject{resource: r, at: now}
	for j, a := range in.assigned {
		for _, res := range each[j] {
			if res.State == "" {
				continue // the definition does not apply to this resource
			}
			state := res.State
			if res.Existence != nil && res.Matched {
				state = p.existenceState(ctx, r, res.Existence)
			}
			if ok, _ := s.exempt(r.ID, res, now); ok {
				state = "Exempt"
			}
			out = append(out, evaluated{result: res, state: state, assigned: a, subject: subj})
		}
	}
	return out
}

// existenceState decides an if-not-exists effect: compliant when a related
// resource of the type, in the scope the details name, meets the
// existence condition.
func (p *Provider) existenceState(ctx context.Context, r *resource.Resource, x *policy.Existence) string {
	id := mustID(r.ID)
	scope := arm.ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}
	if x.ResourceGroupName != "" {
		scope.ResourceGroup = x.ResourceGroupName
	}
	if strings.EqualFold(x.ExistenceScope, "Subscription") {
		scope.ResourceGroup = ""
	}
	if strings.HasPrefix(strings.ToLower(x.Type), strings.ToLower(r.Type)+"/") {
		scope = id // a child of the evaluated resource
	}
	related, err := p.svc.Resources(ctx, scope, x.Type)
	if err != nil {
		return policy.Unknown
	}
	for _, rel := range related {
		if x.Name != "" && !nameMatches(rel.Name, x.Name) {
			continue
		}
		if ok, err := x.Satisfied(resourceMap(rel)); err == nil && ok {
			return policy.Compliant
		}
	}
	return policy.NonCompliant
}

// nameMatches compares a related resource's name with the details' name,
// whose last segment may be the wildcard "?".
func nameMatches(name, want string) bool {
	if i := strings.LastIndex(want, "/"); i >= 0 {
		want = want[i+1:]
	}
	return want == "?" || strings.EqualFold(name, want)
}

// resourceMap is a stored resource as policy rules read it.
func resourceMap(r *resource.Resource) map[string]any {
	var m map[string]any
	b, _ := json.Marshal(r)
	json.Unmarshal(b, &m)
	return m
}

// triggerEvaluation answers POST …/policyStates/latest/triggerEvaluation:
// a full scan now, answered when it is done.
func (p *Provider) triggerEvaluation(ctx context.Context, req *resource.Request) (*resource.Response, error) {
	if !strings.EqualFold(req.ID.Name(), "latest") {
		return nil, arm.Errorf(http.StatusBadRequest, "InvalidPolicyStatesResource", "Evaluation is triggered on policyStates/latest.")
	}
	if _, err := p.Scan(ctx); err != nil {
		return nil, err
	}
	return &resource.Response{Status: http.StatusOK}, nil
}
