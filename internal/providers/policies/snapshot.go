package policies

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/policy"
	"github.com/citadel-cloud/citadel/internal/resource"
)

var regexpName = regexp.MustCompile(`^[^<>*%&:\\?.+/\x00-\x1f]{1,64}$`)

// assigned is a compiled assignment with what decides where it applies.
type assigned struct {
	resource   *resource.Resource
	props      assignmentProperties
	scope      string // lower-case, without a trailing "/"
	notScopes  []string
	enforce    bool
	compiled   *policy.Assignment
	definition *resource.Resource // the definition or initiative assigned
}

// exemption takes an assignment (or some members of an initiative) off a
// scope until it expires.
type exemption struct {
	scope      string
	assignment string // lower-case id
	references []string
	category   string
	expires    time.Time
}

// snapshot is the policy in force: every assignment compiled, with the
// exemptions.
type snapshot struct {
	assignments []*assigned
	exemptions  []exemption
	atScope     map[string][]*assigned // by scope
	// marked are the scopes where what is in force can change: those of
	// assignments and their notScopes.
	marked map[string]bool

	mu sync.Mutex
	// inForce caches what is in force per resource type below each marked
	// scope: a write looks it up rather than testing every assignment.
	inForce map[scopeType]*inForce
}

type scopeType struct{ scope, typ string }

func newSnapshot() *snapshot {
	return &snapshot{atScope: map[string][]*assigned{}, marked: map[string]bool{}, inForce: map[scopeType]*inForce{}}
}

// add puts an assignment in force.
func (s *snapshot) add(a *assigned) {
	s.assignments = append(s.assignments, a)
	s.atScope[a.scope] = append(s.atScope[a.scope], a)
	s.marked[a.scope] = true
	for _, ns := range a.notScopes {
		s.marked[ns] = true
	}
}

// inForce is the policy in force on resources of one type in one place.
type inForce struct {
	assigned []*assigned          // the assignments that apply
	compiled []*policy.Assignment // the same, compiled
	// enforced are those that can refuse or change a create or update
	// ([0]) or a delete ([1]), compiled and as assigned.
	enforced   [2][]*policy.Assignment
	enforcedAs [2][]*assigned
}

func newInForce(in []*assigned) *inForce {
	f := &inForce{assigned: in}
	for _, a := range in {
		f.compiled = append(f.compiled, a.compiled)
		for i, onDelete := range []bool{false, true} {
			if a.enforce && a.compiled.Affects(onDelete) {
				f.enforced[i] = append(f.enforced[i], a.compiled)
				f.enforcedAs[i] = append(f.enforcedAs[i], a)
			}
		}
	}
	return f
}

// snapshot returns the current snapshot, rebuilt when a definition,
// initiative, assignment or exemption has changed.
func (p *Provider) snapshot() *snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	versions := [4]uint64{p.definitions.Version(), p.sets.Version(), p.assignments.Version(), p.exemptions.Version()}
	if p.snap != nil && versions == p.versions {
		return p.snap
	}
	// Assignments are compiled again only when they or the definitions
	// changed, and definitions parsed again only when they changed: a
	// bulk of new assignments costs one compile each, not a rebuild each.
	defsVersion := [2]uint64{versions[0], versions[1]}
	if defsVersion != p.compiledDefs {
		p.compiled, p.compiledDefs = map[string]*assigned{}, defsVersion
	}
	defs := map[string]*resource.Resource{}
	for _, m := range []*resource.TypeMirror{p.definitions, p.sets} {
		rs, _ := m.All()
		for _, r := range rs {
			defs[strings.ToLower(r.ID)] = r
		}
	}
	lookup := func(_ context.Context, id string) (*resource.Resource, error) {
		if r, ok := p.builtIns[strings.ToLower(id)]; ok {
			return r, nil
		}
		if r, ok := defs[strings.ToLower(id)]; ok {
			return r, nil
		}
		return nil, arm.Errorf(http.StatusNotFound, arm.CodeResourceNotFound, "The policy definition '%s' was not found.", id)
	}
	s := newSnapshot()
	all, _ := p.assignments.All()
	compiled := make(map[string]*assigned, len(all))
	for _, r := range all {
		key := strings.ToLower(r.ID)
		a, ok := p.compiled[key]
		if !ok || a.resource.ETag != r.ETag {
			var err error
			if a, err = p.compile(context.Background(), r, lookup); err != nil {
				p.log.Warn("policy assignment not in force: its definition no longer loads", "assignment", r.ID, "err", err)
				continue
			}
		}
		compiled[key] = a
		s.add(a)
	}
	p.compiled = compiled
	exs, _ := p.exemptions.All()
	for _, r := range exs {
		scope, _ := mustID(r.ID).Parent()
		e := exemption{scope: normScope(scopeString(scope)), assignment: strings.ToLower(str(r.Properties["policyAssignmentId"])),
			category: str(r.Properties["exemptionCategory"])}
		if refs, ok := r.Properties["policyDefinitionReferenceIds"].([]any); ok {
			for _, ref := range refs {
				e.references = append(e.references, strings.ToLower(str(ref)))
			}
		}
		if t, err := time.Parse(time.RFC3339, str(r.Properties["expiresOn"])); err == nil {
			e.expires = t
		}
		s.exemptions = append(s.exemptions, e)
	}
	p.snap, p.versions = s, versions
	return s
}

// compile binds an assignment to its definition or initiative, found with
// lookup.
func (p *Provider) compile(ctx context.Context, r *resource.Resource, lookup func(context.Context, string) (*resource.Resource, error)) (*assigned, error) {
	a := &assigned{resource: r}
	if err := resource.DecodeProperties(r, &a.props); err != nil {
		return nil, err
	}
	def, err := lookup(ctx, a.props.PolicyDefinitionID)
	if err != nil {
		return nil, arm.FieldError("properties.policyDefinitionId", "The policy definition '%s' was not found.", a.props.PolicyDefinitionID)
	}
	a.definition = def
	params := map[string]any{}
	for name, raw := range a.props.Parameters {
		var v struct {
			Value any `json:"value"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, arm.FieldError("properties.parameters."+name, "The parameter '%s' must be an object with a value.", name)
		}
		params[name] = v.Value
	}
	if strings.HasSuffix(strings.ToLower(def.Type), "/policysetdefinitions") {
		set, err := p.parsedSet(def)
		if err != nil {
			return nil, invalid("InvalidPolicySetDefinition", err)
		}
		a.compiled, err = policy.NewSetAssignment(r.ID, set, params, func(id string) (*policy.Definition, bool) {
			d, err := lookup(ctx, id)
			if err != nil {
				return nil, false
			}
			parsed, err := p.parsedDefinition(d)
			return parsed, err == nil
		})
		if err != nil {
			return nil, arm.FieldError("properties.parameters", "%s", err)
		}
	} else {
		parsed, err := p.parsedDefinition(def)
		if err != nil {
			return nil, invalid("InvalidPolicyRule", err)
		}
		if a.compiled, err = policy.NewAssignment(r.ID, parsed, params); err != nil {
			return nil, arm.FieldError("properties.parameters", "%s", err)
		}
	}
	a.scope = normScope(str(r.Properties["scope"]))
	for _, ns := range a.props.NotScopes {
		a.notScopes = append(a.notScopes, normScope(ns))
	}
	a.enforce = !strings.EqualFold(a.props.EnforcementMode, "DoNotEnforce")
	return a, nil
}

// parsed is a definition or initiative as loaded, for the ETag it had.
type parsed struct {
	etag string
	def  *policy.Definition
	set  *policy.SetDefinition
	err  error
}

// parsedDefinition loads a definition, once per version of it.
func (p *Provider) parsedDefinition(r *resource.Resource) (*policy.Definition, error) {
	e := p.parse(r, func(b []byte) parsed { d, err := policy.ParseDefinition(b, p.aliases); return parsed{def: d, err: err} })
	return e.def, e.err
}

// parsedSet loads an initiative, once per version of it.
func (p *Provider) parsedSet(r *resource.Resource) (*policy.SetDefinition, error) {
	e := p.parse(r, func(b []byte) parsed { s, err := policy.ParseSetDefinition(b); return parsed{set: s, err: err} })
	return e.set, e.err
}

func (p *Provider) parse(r *resource.Resource, load func([]byte) parsed) parsed {
	key := strings.ToLower(r.ID)
	p.parsedMu.Lock()
	e, ok := p.parsed[key]
	p.parsedMu.Unlock()
	if ok && e.etag == r.ETag {
		return e
	}
	e = load(resourceJSON(r))
	e.etag = r.ETag
	p.parsedMu.Lock()
	p.parsed[key] = e
	p.parsedMu.Unlock()
	return e
}

func normScope(s string) string { return strings.TrimSuffix(strings.ToLower(s), "/") }

// within reports whether id is at or below scope ("" is the tenant root).
func within(id, scope string) bool {
	return scope == "" || strings.HasPrefix(id, scope) && (len(id) == len(scope) || id[len(scope)] == '/')
}

// inScope is the policy in force on the resource id of type typ: the
// assignments at or above it, not excluded by a notScope, whose
// definition can apply to the type. It is the same for every resource
// below the deepest marked scope above (or at) id, and shared: callers
// must not change it.
func (s *snapshot) inScope(id, typ string) *inForce {
	id = normScope(id)
	deepest := ""
	for end := 0; end < len(id); {
		if next := strings.IndexByte(id[end+1:], '/'); next >= 0 {
			end += 1 + next
		} else {
			end = len(id)
		}
		if s.marked[id[:end]] {
			deepest = id[:end]
		}
	}
	key := scopeType{deepest, strings.ToLower(typ)}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.inForce[key]
	if !ok {
		f = newInForce(s.applicable(deepest, typ))
		s.inForce[key] = f
	}
	return f
}

// applicable lists the assignments that apply to the scope (and to what
// is below it but not marked) for resources of type typ.
func (s *snapshot) applicable(scope, typ string) []*assigned {
	var out []*assigned
	for end := 0; ; {
		for _, a := range s.atScope[scope[:end]] { // "" (the tenant root), then each ancestor, then scope
			if a.compiled.AppliesTo(typ) && !slices.ContainsFunc(a.notScopes, func(ns string) bool { return within(scope, ns) }) {
				out = append(out, a)
			}
		}
		if end == len(scope) {
			return out
		}
		if next := strings.IndexByte(scope[end+1:], '/'); next >= 0 {
			end += 1 + next
		} else {
			end = len(scope)
		}
	}
}

// exempt reports whether a result on resource id is exempted, and how.
func (s *snapshot) exempt(id string, r policy.Result, now time.Time) (bool, string) {
	if len(s.exemptions) == 0 {
		return false, ""
	}
	id = normScope(id)
	for _, e := range s.exemptions {
		if e.assignment != strings.ToLower(r.AssignmentID) || !within(id, e.scope) {
			continue
		}
		if !e.expires.IsZero() && now.After(e.expires) {
			continue
		}
		if len(e.references) > 0 && !containsFold(e.references, r.ReferenceID) {
			continue
		}
		return true, e.category
	}
	return false, ""
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Enforce applies the policy in force to a request on the resource id:
// a PUT's body is evaluated and changed by append and modify (the changed
// body is returned; nil when nothing changed), a PATCH's result (the
// stored resource with the patch merged) is evaluated for deny, a DELETE
// for denyAction. A refusal is 403 RequestDisallowedByPolicy naming each
// assignment and definition. apiVersion is the request's.
func (p *Provider) Enforce(ctx context.Context, method string, id arm.ID, body []byte, apiVersion string) ([]byte, error) {
	if method == http.MethodDelete {
		return nil, p.enforceDelete(ctx, id)
	}
	s := p.snapshot()
	f := s.inScope(id.String(), id.Type())
	enforced, in := f.enforced[0], f.enforcedAs[0]
	if len(enforced) == 0 {
		return nil, nil
	}
	var req map[string]any
	if json.Unmarshal(body, &req) != nil || req == nil {
		return nil, nil // not a JSON object: the framework refuses it
	}
	full := withIdentity(req, id)
	if method == http.MethodPatch {
		current, err := p.svc.Lookup(ctx, id)
		if err != nil {
			return nil, nil // nothing to patch: the framework answers
		}
		stored, _ := json.Marshal(current)
		merged, err := arm.MergePatch(stored, body)
		if err != nil {
			return nil, nil // a patch that is not an object: the framework refuses it
		}
		var m map[string]any
		if err := json.Unmarshal(merged, &m); err != nil {
			return nil, err
		}
		full = withIdentity(m, id)
	}
	d := policy.EvaluateRequest(enforced, full, p.context(ctx, id, apiVersion))
	now := time.Now()
	var denied []policy.Result
	for _, r := range d.Denied() {
		if ok, _ := s.exempt(id.String(), r, now); !ok {
			denied = append(denied, r)
		}
	}
	if len(denied) > 0 {
		return nil, disallowed(id, denied, in)
	}
	if method == http.MethodPatch || !d.Changed {
		return nil, nil
	}
	out := make(map[string]any, len(d.Body))
	for k, v := range d.Body {
		if k != "id" && k != "name" && k != "type" {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

// withIdentity is body with the id, name and type ARM gives the resource.
func withIdentity(body map[string]any, id arm.ID) map[string]any {
	full := make(map[string]any, len(body)+3)
	for k, v := range body {
		full[k] = v
	}
	full["id"], full["name"], full["type"] = id.String(), id.Name(), id.Type()
	return full
}

// context is what requestContext(), resourceGroup() and subscription()
// return for a resource. The group and the subscription are read only if
// a rule calls for them.
func (p *Provider) context(ctx context.Context, id arm.ID, apiVersion string) *policy.Context {
	ctx = context.WithoutCancel(ctx) // an Existence may read them after the request
	return &policy.Context{APIVersion: apiVersion, Load: func(c *policy.Context) {
		if id.Subscription != "" {
			c.Subscription = map[string]any{"id": "/subscriptions/" + id.Subscription, "subscriptionId": id.Subscription, "displayName": id.Subscription}
			if sub, err := p.svc.Subscription(ctx, id.Subscription); err == nil {
				c.Subscription["tenantId"], c.Subscription["displayName"] = sub.TenantID, sub.DisplayName
			}
		}
		if id.ResourceGroup != "" {
			rgID := arm.ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}
			c.ResourceGroup = map[string]any{"id": rgID.String(), "name": id.ResourceGroup, "type": "Microsoft.Resources/resourceGroups"}
			if rg, err := p.svc.Lookup(ctx, rgID); err == nil {
				c.ResourceGroup["name"], c.ResourceGroup["location"], c.ResourceGroup["tags"] = rg.Name, rg.Location, rg.Tags
			}
		}
	}}
}

// disallowed is ARM's refusal of a write by policy, naming each
// assignment and definition (additionalInfo PolicyViolation).
func disallowed(id arm.ID, denied []policy.Result, in []*assigned) error {
	var idents []map[string]any
	var messages []string
	e := arm.Errorf(http.StatusForbidden, "RequestDisallowedByPolicy", "")
	for _, r := range denied {
		var a *assigned
		for _, x := range in {
			if strings.EqualFold(x.resource.ID, r.AssignmentID) {
				a = x
			}
		}
		defName := mustID(r.DefinitionID).Name()
		idents = append(idents, map[string]any{
			"policyAssignment": map[string]any{"name": a.resource.Name, "id": a.resource.ID},
			"policyDefinition": map[string]any{"name": defName, "id": r.DefinitionID},
		})
		for _, m := range a.props.NonComplianceMessages {
			if m.PolicyDefinitionReferenceID == "" || strings.EqualFold(m.PolicyDefinitionReferenceID, r.ReferenceID) {
				messages = append(messages, m.Message)
			}
		}
		var expressions []map[string]any
		for _, reason := range r.Reasons {
			expressions = append(expressions, map[string]any{
				"result": map[bool]string{true: "True", false: "False"}[reason.Result], "expressionKind": reason.Kind,
				"expression": reason.Expression, "path": reason.Path, "expressionValue": reason.Value,
				"targetValue": reason.Target, "operator": reason.Operator,
			})
		}
		info := map[string]any{
			"evaluationDetails":           map[string]any{"evaluatedExpressions": expressions},
			"policyDefinitionId":          r.DefinitionID,
			"policyDefinitionName":        defName,
			"policyDefinitionEffect":      string(r.Effect),
			"policyAssignmentId":          a.resource.ID,
			"policyAssignmentName":        a.resource.Name,
			"policyAssignmentDisplayName": a.props.DisplayName,
			"policyAssignmentScope":       a.props.Scope,
			"policyAssignmentParameters":  a.props.Parameters,
		}
		if a.definition != nil {
			info["policyDefinitionDisplayName"] = a.definition.Properties["displayName"]
		}
		if r.SetDefinitionID != "" {
			info["policySetDefinitionId"], info["policyDefinitionReferenceId"] = r.SetDefinitionID, r.ReferenceID
		}
		if r.Err != nil {
			info["evaluationError"] = r.Err.Error()
		}
		e.AdditionalInfo = append(e.AdditionalInfo, arm.AdditionalInfo{Type: "PolicyViolation", Info: info})
	}
	b, _ := json.Marshal(idents)
	e.Message = "Resource '" + id.Name() + "' was disallowed by policy."
	if len(messages) > 0 {
		e.Message += " Reasons: '" + strings.Join(messages, "', '") + "'."
	}
	e.Message += " Policy identifiers: '" + string(b) + "'."
	e.Target = id.Name()
	return e
}

// enforceDelete refuses a delete that a denyAction assignment blocks.
func (p *Provider) enforceDelete(ctx context.Context, id arm.ID) error {
	s := p.snapshot()
	f := s.inScope(id.String(), id.Type())
	enforced, in := f.enforced[1], f.enforcedAs[1]
	if len(enforced) == 0 || denyActionExempt(id.Type()) {
		return nil
	}
	r, err := p.svc.Lookup(ctx, id)
	if err != nil {
		return nil // nothing to delete: the service answers
	}
	denied := policy.EvaluateDelete(enforced, resourceMap(r), p.context(ctx, id, ""))
	if len(denied) == 0 {
		return nil
	}
	return disallowed(id, denied, in)
}

// denyActionExempt are the types denyAction never blocks, so that nobody
// is locked out (Azure's list).
func denyActionExempt(typ string) bool {
	for _, t := range []string{"Microsoft.Authorization/policyAssignments", "Microsoft.Authorization/denyAssignments",
		"Microsoft.Authorization/locks", "Microsoft.Resources/subscriptions", "Microsoft.Resources/deploymentStacks",
		"Microsoft.Blueprint/blueprintAssignments"} {
		if strings.EqualFold(typ, t) {
			return true
		}
	}
	return false
}

func str(v any) string { s, _ := v.(string); return s }

func mustID(s string) arm.ID { id, _ := arm.ParseID(s); return id }
