package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"unique"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// Compliance states of a result.
const (
	Compliant    = "Compliant"
	NonCompliant = "NonCompliant"
	Unknown      = "Unknown" // manual, before an attestation
)

// Result is one definition's verdict on one resource: which assignment
// (and which member of its initiative) gave it, and the verdict. Both are
// shared and read-only: members with the same definition and parameter
// values share one verdict on a resource, and a compliant verdict that
// says nothing more is the member's own, so evaluating a resource against
// many assignments allocates little and keeps little.
type Result struct {
	*Origin
	*Verdict
}

// Origin is where a result comes from: an assignment, and the definition
// it assigns or one member of the initiative it assigns.
type Origin struct {
	AssignmentID    string
	DefinitionID    string
	SetDefinitionID string   `json:",omitempty"`
	ReferenceID     string   `json:",omitempty"` // the member's policyDefinitionReferenceId
	GroupNames      []string `json:",omitempty"`
}

// Verdict is what a definition decided about a resource.
type Verdict struct {
	Effect Effect
	// Matched is whether the if condition held: the effect applies.
	Matched bool
	// State is the compliance state: empty when the definition does not
	// apply to the resource (its mode excludes it, or it is disabled).
	// An if-not-exists result that matched is NonCompliant until
	// Existence finds a related resource.
	State string `json:",omitempty"`
	// Reasons are the leaf conditions that decided, with the values they
	// compared; given when Matched.
	Reasons []Reason `json:",omitempty"`
	// Changes are what append or modify make to the request body.
	Changes []Change `json:",omitempty"`
	// Conflict says why append or modify could not make its changes: the
	// effect is then deny (append) or the modify conflictEffect.
	Conflict string `json:",omitempty"`
	// Existence is what an if-not-exists effect looks for.
	Existence *Existence `json:",omitempty"`
	// ActionNames are what a denyAction effect blocks ("delete").
	ActionNames []string `json:",omitempty"`
	// Err is an evaluation that failed (a function error, a type
	// mismatch); Azure counts it as deny on a request.
	Err error `json:"-"`
}

// Denies reports whether the verdict blocks a create or update request.
func (v *Verdict) Denies() bool {
	return v.Err != nil && v.Effect != Disabled || v.Matched && v.Effect == Deny
}

// Reason is a leaf condition as it was evaluated, like Azure's
// evaluatedExpressions.
type Reason struct {
	Condition  string // JSON path of the condition in the definition
	Kind       string // Field, Value or Count
	Expression string // the field or alias, the value expression or the counted field, as written
	Path       string `json:",omitempty"` // the JSON path read in the resource, for a field
	Value      any    // what the operand was: the selected values of a [*] alias, a count's number
	Operator   string
	Target     any // the operator's value
	Result     bool
}

// Message says what compliance asks of the value, in Azure's words:
// "Current value must be equal to the target value."
func (r Reason) Message() string {
	op := lookupOperator(r.Operator)
	if op == nil {
		return ""
	}
	negated := op.negated != r.Result // compliance asks for the other outcome
	if op.kind == opExists {
		want, _ := boolish(r.Target)
		if want == r.Result {
			return "Current value must not exist."
		}
		return "Current value must exist."
	}
	if opposite, ok := oppositeOrder[op.name]; ok && r.Result {
		op, negated = lookupOperator(opposite), false
	}
	phrase := map[opKind]string{
		opEquals: "be equal to", opLike: "be like", opMatch: "match", opMatchInsensitively: "match (ignoring case)",
		opContains: "contain", opIn: "be in", opContainsKey: "contain the key", opLess: "be less than",
		opLessOrEquals: "be less than or equal to", opGreater: "be greater than", opGreaterOrEquals: "be greater than or equal to",
	}[op.kind]
	if negated {
		phrase = "not " + phrase
	}
	return "Current value must " + phrase + " the target value."
}

// oppositeOrder is the ordering operator that holds exactly when one does
// not.
var oppositeOrder = map[string]string{"less": "greaterOrEquals", "lessOrEquals": "greater", "greater": "lessOrEquals", "greaterOrEquals": "less"}

// boundDefinition is a definition with the parameter values of its
// assignment, and what can be computed from them alone.
type boundDefinition struct {
	def    *Definition
	params map[string]any // lower-case names
	info   map[string]any // policy()
	origin *Origin        // the IDs every result carries
	consts map[*armexpr.Expr]any
	effect Effect
	effErr error
	// inapplicable and compliant are the member's verdicts that say
	// nothing more than that (compliant: when the effect is static).
	inapplicable, compliant *Verdict
	// same identifies the verdict apart from the IDs a result carries:
	// two members with the same definition and parameter values give the
	// same verdict on a resource, unless the rule reads policy() (then
	// shared is false). Assignments of one definition at several scopes,
	// and initiatives that share members, are common.
	same   verdictKey
	shared bool
}

// verdictKey is what a member's verdict depends on besides the resource:
// its definition and parameter values (their canonical JSON, interned so
// that keys compare as pointers).
type verdictKey struct {
	def    *Definition
	params unique.Handle[string]
}

// bind checks the parameter values and computes what depends on them
// alone: the effect and every expression over parameters.
func bind(def *Definition, values map[string]any, origin *Origin) (*boundDefinition, error) {
	params, err := bindParameters(def.Parameters, values)
	if err != nil {
		return nil, err
	}
	m := &boundDefinition{def: def, params: params, origin: origin, consts: map[*armexpr.Expr]any{}}
	m.info = map[string]any{"assignmentId": origin.AssignmentID, "definitionId": origin.DefinitionID,
		"setDefinitionId": origin.SetDefinitionID, "definitionReferenceId": origin.ReferenceID}
	fns := templateFunctions.With(map[string]armexpr.Func{
		"parameters": armexpr.Eager(1, 1, m.parameter),
		"policy":     armexpr.Eager(0, 0, m.policyInfo),
	})
	readsPolicy := false
	def.rule.walk(func(e *armexpr.Expr) {
		calls := e.Calls()
		readsPolicy = readsPolicy || slices.ContainsFunc(calls, func(c armexpr.CallSite) bool { return strings.EqualFold(c.Name, "policy") })
		for _, c := range calls {
			if _, ok := fns.Lookup(c.Name); !ok {
				return // reads the resource or the request: evaluated each time
			}
		}
		if v, err := e.Eval(fns); err == nil {
			m.consts[e] = v
		}
	})
	if def.rule.effect.static || m.consts[def.rule.effect.expr] != nil {
		ev := newEvaluation(m, nil, nil)
		m.effect, m.effErr = m.effectOf(ev)
		ev.release()
	}
	m.inapplicable = &Verdict{Effect: m.effect}
	if m.effect != "" {
		m.compliant = &Verdict{Effect: m.effect, State: Compliant}
	}
	if canonical, err := json.Marshal(params); err == nil && !readsPolicy {
		m.same, m.shared = verdictKey{def: def, params: unique.Make(string(canonical))}, true
	}
	return m, nil
}

func (m *boundDefinition) parameter(args []any) (any, error) {
	name, _ := args[0].(string)
	v, ok := m.params[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("the parameter '%s' is not defined", name)
	}
	return v, nil
}

func (m *boundDefinition) policyInfo([]any) (any, error) { return m.info, nil }

func (m *boundDefinition) effectOf(ev *evaluation) (Effect, error) {
	v, err := ev.get(m.def.rule.effect)
	if err != nil {
		return "", fmt.Errorf("the effect: %w", err)
	}
	return parseEffect(v)
}

// applies reports whether the definition's mode covers the resource. All
// covers everything; Indexed leaves out subscriptions, resource groups
// and child resources without a location (types that take no tags or
// location); a resource provider mode is its provider's to evaluate.
func (d *Definition) applies(res map[string]any) bool {
	if d.rpMode {
		return false
	}
	if strings.EqualFold(d.Mode, "All") {
		return true
	}
	t, _ := lookupKey(res, "type")
	typ, _ := t.(string)
	if strings.EqualFold(typ, "Microsoft.Resources/subscriptions") || strings.EqualFold(typ, "Microsoft.Resources/subscriptions/resourceGroups") ||
		strings.EqualFold(typ, "Microsoft.Resources/resourceGroups") {
		return false
	}
	loc, _ := lookupKey(res, "location")
	return strings.Count(typ, "/") < 2 || loc != nil
}

// evaluate is the definition's result on a resource.
func (m *boundDefinition) evaluate(res map[string]any, ctx *Context) Result {
	return Result{Origin: m.origin, Verdict: m.verdict(res, ctx)}
}

// verdict is what the definition decides about a resource.
func (m *boundDefinition) verdict(res map[string]any, ctx *Context) *Verdict {
	if !m.def.applies(res) {
		return m.inapplicable
	}
	ev := newEvaluation(m, res, ctx)
	v := &Verdict{Effect: m.effect, Err: m.effErr}
	defer func() {
		if v.Existence == nil { // an Existence keeps its evaluation
			ev.release()
		}
	}()
	if v.Effect == "" && v.Err == nil {
		v.Effect, v.Err = m.effectOf(ev)
	}
	if v.Err != nil {
		return v
	}
	if v.Effect == Disabled {
		return m.inapplicable
	}
	rule := m.def.rule
	if v.Matched, v.Err = ev.cond(rule.cond, nil); v.Err != nil {
		v.State = NonCompliant
		return v
	}
	if !v.Matched {
		if m.compliant != nil {
			return m.compliant
		}
		v.State = Compliant
		return v
	}
	v.State = NonCompliant
	// Evaluate again, recording why: only matches pay for it.
	if _, v.Err = ev.cond(rule.cond, &v.Reasons); v.Err != nil {
		return v
	}
	d := rule.details
	switch v.Effect {
	case Append:
		v.Changes, v.Conflict, v.Err = ev.changes(d.appends, false)
		if v.Conflict != "" {
			v.Effect, v.Changes = Deny, nil
		}
	case Modify:
		v.Changes, v.Conflict, v.Err = ev.changes(d.modify.operations, true)
		if v.Conflict != "" {
			v.Effect, v.Changes = d.modify.conflictEffect, nil
		}
	case AuditIfNotExists, DeployIfNotExists:
		v.Existence, v.Err = ev.existence(d.exists)
	case DenyAction, AuditAction:
		v.ActionNames = d.actionNames
	case Manual:
		v.State = Unknown
		if d.defaultState != "" {
			v.State = map[string]string{"compliant": Compliant, "noncompliant": NonCompliant, "unknown": Unknown}[strings.ToLower(d.defaultState)]
		}
	}
	return v
}

// Assignment is a definition or an initiative assigned with parameter
// values, ready to evaluate resources. It is immutable and safe for
// concurrent use.
type Assignment struct {
	ID      string
	members []*boundDefinition
}

// NewAssignment assigns a definition. params are the assignment's
// parameter values by name (the value of each {"value": ...}); a
// parameter without a value takes its default. The error says which
// value is missing, of the wrong type or not allowed.
func NewAssignment(id string, def *Definition, params map[string]any) (*Assignment, error) {
	m, err := bind(def, params, &Origin{AssignmentID: id, DefinitionID: def.ID})
	if err != nil {
		return nil, fmt.Errorf("assignment %s of %s: %w", id, def.ID, err)
	}
	return &Assignment{ID: id, members: []*boundDefinition{m}}, nil
}

// NewSetAssignment assigns an initiative. definitions finds each member's
// definition by its policyDefinitionId (IDs compare ignoring case). Each
// member gets the values the initiative passes it, evaluated over
// the initiative's parameters.
func NewSetAssignment(id string, set *SetDefinition, params map[string]any, definitions func(id string) (*Definition, bool)) (*Assignment, error) {
	setParams, err := bindParameters(set.Parameters, params)
	if err != nil {
		return nil, fmt.Errorf("assignment %s of %s: %w", id, set.ID, err)
	}
	outer := &boundDefinition{params: setParams, info: map[string]any{"assignmentId": id, "setDefinitionId": set.ID}}
	ev := newEvaluation(outer, nil, nil)
	defer ev.release()
	a := &Assignment{ID: id}
	var errs []error
	for _, mem := range set.Members {
		def, ok := definitions(mem.DefinitionID)
		if !ok {
			errs = append(errs, fmt.Errorf("member %s: the policy definition %s is not known", mem.ReferenceID, mem.DefinitionID))
			continue
		}
		values := map[string]any{}
		for _, name := range slices.Sorted(maps.Keys(mem.params)) {
			v, err := ev.get(mem.params[name])
			if err != nil {
				errs = append(errs, fmt.Errorf("member %s: parameter %s: %w", mem.ReferenceID, name, err))
			}
			values[name] = v
		}
		m, err := bind(def, values, &Origin{AssignmentID: id, DefinitionID: def.ID, SetDefinitionID: set.ID,
			ReferenceID: mem.ReferenceID, GroupNames: mem.GroupNames})
		if err != nil {
			errs = append(errs, fmt.Errorf("member %s: %w", mem.ReferenceID, err))
			continue
		}
		a.members = append(a.members, m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("assignment %s of %s: %w", id, set.ID, err)
	}
	return a, nil
}

// Evaluate returns the verdict of every definition of the assignment (one
// for a definition, one per member for an initiative) on a resource: its
// ARM JSON, with id, name, type and location as the request makes them.
func (a *Assignment) Evaluate(res map[string]any, ctx *Context) []Result {
	out := make([]Result, 0, len(a.members))
	for _, m := range a.members {
		out = append(out, m.evaluate(res, ctx))
	}
	return out
}

// verdicts evaluates members on one resource, each distinct verdict
// once: a member whose verdictKey was evaluated before shares that
// verdict.
type verdicts struct {
	seen map[verdictKey]*Verdict
}

func (v *verdicts) of(m *boundDefinition, res map[string]any, ctx *Context) Result {
	if !m.shared {
		return m.evaluate(res, ctx)
	}
	verdict, ok := v.seen[m.same]
	if !ok || verdict.Existence != nil { // an Existence is its evaluation's own
		verdict = m.verdict(res, ctx)
		if v.seen == nil {
			v.seen = map[verdictKey]*Verdict{}
		}
		v.seen[m.same] = verdict
	}
	return Result{Origin: m.origin, Verdict: verdict}
}

// EvaluateEach evaluates every assignment on a resource, as Evaluate
// does each, and returns their results in the same order; assignments
// that share a definition and parameter values are evaluated once.
func EvaluateEach(assignments []*Assignment, res map[string]any, ctx *Context) [][]Result {
	var v verdicts
	flat := make([]Result, 0, numResults(assignments))
	for _, a := range assignments {
		for _, m := range a.members {
			flat = append(flat, v.of(m, res, ctx))
		}
	}
	out := make([][]Result, len(assignments))
	for i, a := range assignments {
		out[i], flat = flat[:len(a.members):len(a.members)], flat[len(a.members):]
	}
	return out
}

// numResults is the number of results the assignments give.
func numResults(assignments []*Assignment) int {
	n := 0
	for _, a := range assignments {
		n += len(a.members)
	}
	return n
}

// Decision is the verdict of a create or update request.
type Decision struct {
	// Body is the request body after append and modify: body itself
	// when they change nothing, else a changed copy.
	Body map[string]any
	// Changed is whether append or modify changed the body.
	Changed bool
	// Results are the results that matched or failed, in the order of
	// the assignments and their members; the others found the request
	// compliant.
	Results []Result
}

// Denied returns the results that deny the request: a matched deny, an
// append conflict, a modify conflict with conflictEffect deny, or an
// evaluation that failed.
func (d *Decision) Denied() []Result {
	var out []Result
	for _, r := range d.Results {
		if r.Denies() {
			out = append(out, r)
		}
	}
	return out
}

// decisive is whether a request's decision keeps the result.
func (v *Verdict) decisive() bool { return v.Matched || v.Err != nil }

// EvaluateRequest evaluates a create or update request body in Azure's
// order: append and modify first, changing a copy of the body; then every
// other effect on the changed body. denyAction concerns deletes only.
func EvaluateRequest(assignments []*Assignment, body map[string]any, ctx *Context) *Decision {
	var v verdicts
	var results []Result
	var changes []Change
	for _, a := range assignments {
		for _, m := range a.members {
			r := v.of(m, body, ctx)
			if !r.decisive() {
				continue
			}
			if r.Matched && r.Err == nil && (r.Effect == Append || r.Effect == Modify) {
				changes = append(changes, r.Changes...)
			}
			results = append(results, r)
		}
	}
	if len(changes) == 0 {
		return &Decision{Body: body, Results: results}
	}
	changed := clone(body).(map[string]any)
	if err := ApplyChanges(changed, changes); err != nil {
		panic("policy: a change the engine made does not apply: " + err.Error())
	}
	// The other effects again, on the changed body; append and modify
	// keep their results on the body as sent.
	var again verdicts
	results = results[:0]
	for _, a := range assignments {
		for _, m := range a.members {
			r := v.of(m, body, ctx)
			if r.Effect != Append && r.Effect != Modify {
				r = again.of(m, changed, ctx)
			}
			if r.decisive() {
				results = append(results, r)
			}
		}
	}
	return &Decision{Body: changed, Changed: !reflect.DeepEqual(changed, body), Results: results}
}

// EvaluateDelete returns the denyAction results that block deleting a
// resource.
func EvaluateDelete(assignments []*Assignment, res map[string]any, ctx *Context) []Result {
	var out []Result
	for _, a := range assignments {
		for _, r := range a.Evaluate(res, ctx) {
			if r.Matched && r.Effect == DenyAction && slices.ContainsFunc(r.ActionNames, func(n string) bool { return strings.EqualFold(n, "delete") }) {
				out = append(out, r)
			}
		}
	}
	return out
}

// clone deep-copies a JSON value.
func clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = clone(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = clone(x)
		}
		return out
	}
	return v
}
