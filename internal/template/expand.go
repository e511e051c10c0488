package template

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// Context is where a deployment runs: what deployment(), resourceGroup(),
// subscription(), tenant() and the resourceId() family see.
type Context struct {
	Scope           Scope // where the deployment is created; "" means the scope of the template's $schema
	TenantID        string
	SubscriptionID  string
	ResourceGroup   string // resource group deployments
	ManagementGroup string // management group deployments
	Location        string // the resource group's location; the deployment's location at other scopes
	DeploymentName  string
	Deployer        string         // object ID of the principal deploying, for deployer()
	Environment     map[string]any // environment(); nil means DefaultEnvironment()
	Zones           []string       // availability zones of Location, for pickZones()
}

// Options are the inputs of Expand besides the template.
type Options struct {
	Context    Context
	Parameters map[string]any // parameter values by name (not expressions)
	// Source is where the template was read from, a path or URI; a
	// templateLink.relativePath resolves against its directory. A
	// template spec version's main template is at the version's ID
	// followed by '/': the version is the directory of its templates.
	Source string
	// Load reads a linked template (templateLink.uri, a resolved
	// relativePath or a template spec version ID). A link it can't serve
	// (ErrNotAvailable, or no Load at all) stays unexpanded: its Resource
	// has TemplateLink and no Deployment; any other error fails the
	// expansion, naming the link.
	Load func(location string) ([]byte, error)
}

// Deployment is an expanded template: its resources in an order where
// each comes after what it depends on, and its outputs as far as they are
// known before the deployment runs.
type Deployment struct {
	Name       string         `json:"name"`
	Scope      Scope          `json:"scope"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Resources  []*Resource    `json:"resources"`
	Outputs    map[string]any `json:"outputs,omitempty"`
	x          *expansion
}

// Resource is one resource to deploy (or, when Existing, only to refer
// to). Values only known during the deployment are still expressions in
// Body and Location; Evaluate gives them their values.
type Resource struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	APIVersion   string         `json:"apiVersion,omitempty"`
	Name         string         `json:"name"`
	SymbolicName string         `json:"symbolicName,omitempty"`
	Location     string         `json:"location,omitempty"`
	Existing     bool           `json:"existing,omitempty"`
	Condition    string         `json:"condition,omitempty"` // a condition only the deployment can decide
	Copy         *Copy          `json:"copy,omitempty"`
	DependsOn    []string       `json:"dependsOn,omitempty"`
	Body         map[string]any `json:"body,omitempty"`
	TemplateLink string         `json:"templateLink,omitempty"` // a linked template Expand could not load
	Deployment   *Deployment    `json:"deployment,omitempty"`   // the expanded template of a Microsoft.Resources/deployments
	// Deferred says why a nested deployment is only expanded during the
	// deployment (by Evaluate): its resources' names or counts depend on
	// parameters only the runtime knows.
	Deferred string `json:"deferred,omitempty"`

	decl    *resourceDecl
	x       *expansion
	fns     *armexpr.Functions // what the resource's expressions see (copyIndex included)
	loops   *loop
	parent  *Resource   // of a nested child
	relName string      // a nested child's name as written, relative to its parent
	scopeID string      // the ID its own ID is built under
	skipped bool        // condition false
	pending bool        // a nested deployment whose parameters the runtime decides
	after   []*Resource // dependencies, before skipped ones are removed
	path    string
}

// Copy says which instance of a copy loop a resource is.
type Copy struct {
	Name      string `json:"name"`
	Index     int64  `json:"index"`
	Count     int64  `json:"count"`
	Serial    bool   `json:"serial,omitempty"`
	BatchSize int64  `json:"batchSize,omitempty"`
}

// ErrNotAvailable is what Options.Load returns for a linked template it
// can't serve (a URI, when only local files are read): the deployment
// stays unexpanded instead of failing.
var ErrNotAvailable = errors.New("the linked template is not available here")

// maxCopies is ARM's limit on a copy loop's count.
const maxCopies = 800

// expansion is one template being expanded: the root template or a
// nested deployment's.
type expansion struct {
	t       *Template
	ctx     Context
	scope   Scope
	scopeID string // the deployment's scope as an ID ("" for the tenant)
	source  string
	load    func(string) ([]byte, error)
	parent  *expansion // outer-scope nested templates evaluate in their parent

	fns        *armexpr.Functions // parameters, variables, context, UDFs; runtime functions fail
	defaultFns *armexpr.Functions // fns plus utcNow() and newGuid(), for parameter defaults

	supplied  map[string]any
	pending   map[string]bool // parameters whose value the runtime decides
	params    map[string]any
	paramBusy map[string]bool
	vars      map[string]any
	varBusy   map[string]bool

	all       []*Resource     // every instance, in declaration order
	declared  map[string]bool // lower-case copy loop and symbolic names, also of loops with no instances
	index     *resourceIndex
	resources []*Resource // to deploy, in dependency order
}

// Expand expands a template: parameters are bound and validated,
// variables evaluated, copy loops and conditions applied, every resource
// given its ID and body, nested deployments expanded, dependencies
// resolved (a cycle is an error) and outputs evaluated as far as they can
// be without the runtime.
func Expand(t *Template, opts Options) (*Deployment, error) {
	scope := cmp.Or(opts.Context.Scope, t.Scope)
	if !slices.Contains([]Scope{ResourceGroupScope, SubscriptionScope, ManagementGroupScope, TenantScope}, scope) {
		return nil, fmt.Errorf("the deployment scope %q is not resourceGroup, subscription, managementGroup or tenant", scope)
	}
	x, err := newExpansion(t, opts.Context, scope, opts.Source, opts.Load)
	if err != nil {
		return nil, err
	}
	if err := x.bindParameters(opts.Parameters, nil); err != nil {
		return nil, err
	}
	return x.run()
}

// newExpansion prepares a template with its own parameters and variables.
func newExpansion(t *Template, ctx Context, scope Scope, source string, load func(string) ([]byte, error)) (*expansion, error) {
	x := &expansion{t: t, ctx: ctx, scope: scope, source: source, load: load}
	switch scope {
	case ResourceGroupScope:
		if ctx.SubscriptionID == "" || ctx.ResourceGroup == "" {
			return nil, errors.New("a resource group deployment needs a subscription ID and a resource group name")
		}
		x.scopeID = armexpr.ResourceGroupID(ctx.SubscriptionID, ctx.ResourceGroup)
	case SubscriptionScope:
		if ctx.SubscriptionID == "" {
			return nil, errors.New("a subscription deployment needs a subscription ID")
		}
		x.scopeID = armexpr.SubscriptionID(ctx.SubscriptionID)
	case ManagementGroupScope:
		if ctx.ManagementGroup == "" {
			return nil, errors.New("a management group deployment needs a management group name")
		}
		x.scopeID = armexpr.ManagementGroupID(ctx.ManagementGroup)
	}
	x.fns, x.defaultFns = x.functions()
	return x, nil
}

// run expands a template whose parameters are bound.
func (x *expansion) run() (*Deployment, error) {
	if err := x.checkFunctions(); err != nil {
		return nil, err
	}
	if x.parent == nil {
		if err := x.evaluateVariables(); err != nil {
			return nil, err
		}
	}
	for _, d := range x.t.resources {
		if err := x.instantiate(d, x.fns, nil, nil); err != nil {
			return nil, err
		}
	}
	if err := x.link(); err != nil {
		return nil, err
	}
	outputs, err := x.outputs(x.fns, nil)
	if err != nil {
		return nil, err
	}
	return &Deployment{
		Name: x.ctx.DeploymentName, Scope: x.scope,
		Parameters: x.params, Resources: x.resources, Outputs: outputs, x: x,
	}, nil
}

// evaluator evaluates raw template JSON: expression strings in values and
// object keys and, when copies is set, property copy loops.
type evaluator struct {
	x           *expansion
	fns         *armexpr.Functions
	loops       *loop
	keepRuntime bool // a value that needs the runtime stays as its expression
	copies      bool
}

// errNeedsRuntime is what reference(), list*() and providers() fail with
// when no runtime is there: the value is only known during the deployment.
var errNeedsRuntime = errors.New("the value is only known during the deployment (reference, list* and providers can't be used here)")

func (e evaluator) value(v any, p string) (any, error) {
	switch v := v.(type) {
	case string:
		return e.str(v, p)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			var err error
			if out[i], err = e.value(x, indexPath(p, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		loops, isCopy := propertyCopies(v)
		if e.copies && isCopy {
			for i, c := range loops {
				arr, err := e.copyLoop(c, keyPath(indexPath(keyPath(p, "copy"), i), "input"), false)
				if err != nil {
					return nil, err
				}
				out[c.name] = arr
			}
		}
		for k, x := range v {
			if e.copies && isCopy && k == "copy" {
				continue
			}
			key, err := e.str(k, keyPath(p, k))
			if err != nil {
				return nil, err
			}
			ks, ok := key.(string)
			if !ok {
				return nil, errorf(keyPath(p, k), "a property name must be a string, not %s", jsonType(key))
			}
			if out[ks], err = e.value(x, keyPath(p, k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// str evaluates a string: an expression, or a literal ("[[" unescaped).
func (e evaluator) str(s, p string) (any, error) {
	if !armexpr.IsExpression(s) {
		return armexpr.Unescape(s), nil
	}
	expr := e.x.t.exprs[s]
	if expr == nil {
		var err error
		if expr, err = armexpr.Parse(s); err != nil {
			return nil, wrap(p, err)
		}
	}
	v, err := expr.Eval(e.fns)
	if err != nil {
		if e.keepRuntime && errors.Is(err, errNeedsRuntime) {
			return s, nil
		}
		return nil, wrap(p, err)
	}
	return v, nil
}

// propertyCopies recognises a property copy: "copy": [{name, count, input}].
func propertyCopies(obj map[string]any) ([]*copyDecl, bool) {
	list, ok := obj["copy"].([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	var out []*copyDecl
	for _, c := range list {
		m, ok := c.(map[string]any)
		name, named := m["name"].(string)
		_, counted := m["count"]
		_, hasInput := m["input"]
		if !ok || !named || !counted || !hasInput {
			return nil, false
		}
		out = append(out, &copyDecl{name: name, count: m["count"], input: m["input"]})
	}
	return out, true
}

// count evaluates a copy count: an integer from 0 to 800, known before
// the deployment runs.
func (e evaluator) count(raw any, p string) (int64, error) {
	strict := e
	strict.keepRuntime = false
	v, err := strict.value(raw, p)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, errorf(p, "a copy count must be an integer, not %s", jsonType(v))
	}
	if n < 0 || n > maxCopies {
		return 0, errorf(p, "a copy count must be between 0 and %d, not %d", maxCopies, n)
	}
	return n, nil
}

// copyLoop evaluates a variable, property or output loop into an array;
// primary loops are what copyIndex() without a name refers to.
func (e evaluator) copyLoop(c *copyDecl, p string, primary bool) ([]any, error) {
	n, err := e.count(c.count, strings.TrimSuffix(p, ".input")+".count")
	if err != nil {
		return nil, err
	}
	out := make([]any, n)
	for i := range n {
		inner := e
		inner.loops = &loop{name: c.name, index: i, primary: primary, outer: e.loops}
		inner.fns = e.fns.With(map[string]armexpr.Func{"copyIndex": copyIndexFunc(inner.loops)})
		if out[i], err = inner.value(c.input, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// loop is one level of copy loops around an expression.
type loop struct {
	name    string
	index   int64
	primary bool // a resource or output loop: copyIndex() without a name
	outer   *loop
}

// copyIndexFunc is copyIndex([loopName], [offset]) inside loops.
func copyIndexFunc(l *loop) armexpr.Func {
	return armexpr.Eager(0, 2, func(args []any) (any, error) {
		name, offset := "", int64(0)
		for i, a := range args {
			switch a := a.(type) {
			case string:
				if i != 0 {
					return nil, errors.New("the loop name must be the first argument")
				}
				name = a
			case int64:
				offset = a
			default:
				return nil, fmt.Errorf("expects a loop name and an integer offset, not a value of type %s", jsonType(a))
			}
		}
		for c := l; c != nil; c = c.outer {
			if name == "" && c.primary || name != "" && strings.EqualFold(c.name, name) {
				return c.index + offset, nil
			}
		}
		if name == "" {
			return nil, errors.New("copyIndex() without a loop name is only valid in a resource or output copy loop")
		}
		return nil, fmt.Errorf("there is no copy loop named '%s' here", name)
	})
}

// evaluateVariables evaluates every variable, so that later evaluations
// (also concurrent ones in Resource.Evaluate) only read them.
func (x *expansion) evaluateVariables() error {
	x.vars, x.varBusy = map[string]any{}, map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(x.t.variables)) {
		if _, err := x.variable(name); err != nil {
			return err
		}
	}
	for _, c := range x.t.variableCopies {
		if _, err := x.variable(c.name); err != nil {
			return err
		}
	}
	return nil
}

// variable evaluates a variable on first use. Names are case-insensitive.
func (x *expansion) variable(name string) (any, error) {
	key, raw, c, ok := x.lookupVariable(name)
	if !ok {
		return nil, fmt.Errorf("the template has no variable '%s'", name)
	}
	if v, done := x.vars[key]; done {
		return v, nil
	}
	if x.varBusy[key] {
		return nil, fmt.Errorf("the variable '%s' depends on itself", key)
	}
	x.varBusy[key] = true
	defer delete(x.varBusy, key)
	e := evaluator{x: x, fns: x.fns, copies: true}
	p := keyPath("variables", key)
	var v any
	var err error
	if c != nil {
		v, err = e.copyLoop(c, keyPath(p, "input"), false)
	} else {
		v, err = e.value(raw, p)
	}
	if err != nil {
		return nil, wrap(p, err)
	}
	x.vars[key] = v
	return v, nil
}

func (x *expansion) lookupVariable(name string) (key string, raw any, c *copyDecl, ok bool) {
	for _, c := range x.t.variableCopies {
		if strings.EqualFold(c.name, name) {
			return c.name, nil, c, true
		}
	}
	if raw, ok := x.t.variables[name]; ok {
		return name, raw, nil, true
	}
	for k, raw := range x.t.variables {
		if strings.EqualFold(k, name) {
			return k, raw, nil, true
		}
	}
	return "", nil, nil, false
}

// instantiate creates the instances of a declared resource (one per copy
// index) and of its child resources.
func (x *expansion) instantiate(d *resourceDecl, fns *armexpr.Functions, loops *loop, parent *Resource) error {
	if x.declared == nil {
		x.declared = map[string]bool{}
	}
	x.declared[strings.ToLower(d.symbolic)] = d.symbolic != ""
	count, serial, batch := int64(1), false, int64(0)
	if d.copy != nil {
		x.declared[strings.ToLower(d.copy.name)] = true
		e := evaluator{x: x, fns: fns, loops: loops}
		var err error
		if count, err = e.count(d.copy.count, keyPath(keyPath(d.path, "copy"), "count")); err != nil {
			return err
		}
		if serial = d.copy.mode == "serial"; serial {
			batch = 1
			if d.copy.batchSize != nil {
				v, err := e.value(d.copy.batchSize, keyPath(keyPath(d.path, "copy"), "batchSize"))
				if err != nil {
					return err
				}
				if batch, _ = v.(int64); batch < 1 {
					return errorf(keyPath(keyPath(d.path, "copy"), "batchSize"), "must be a positive integer, not %v", v)
				}
			}
		}
	}
	for i := range count {
		f, l, p := fns, loops, d.path
		var cp *Copy
		if d.copy != nil {
			l = &loop{name: d.copy.name, index: i, primary: true, outer: loops}
			f = fns.With(map[string]armexpr.Func{"copyIndex": copyIndexFunc(l)})
			cp = &Copy{Name: d.copy.name, Index: i, Count: count, Serial: serial, BatchSize: batch}
			p = fmt.Sprintf("%s (copy index %d)", d.path, i)
		}
		r, err := x.newResource(d, f, l, parent, cp, p)
		if err != nil {
			return err
		}
		for _, c := range d.children {
			if err := x.instantiate(c, f, l, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// templateKeys are the keys of a resource declaration that are not part
// of the body sent to the resource provider.
var templateKeys = map[string]bool{
	"type": true, "apiversion": true, "name": true, "condition": true, "dependson": true,
	"copy": true, "comments": true, "scope": true, "resources": true, "existing": true,
	"subscriptionid": true, "resourcegroup": true, "metadata": true, "import": true,
}

// newResource evaluates one instance of a resource declaration.
func (x *expansion) newResource(d *resourceDecl, fns *armexpr.Functions, loops *loop, parent *Resource, cp *Copy, p string) (*Resource, error) {
	r := &Resource{SymbolicName: d.symbolic, Existing: d.existing, Copy: cp, decl: d, x: x, fns: fns, loops: loops, parent: parent, path: p}
	strict := evaluator{x: x, fns: fns, loops: loops}
	str := func(key string) (string, error) {
		raw, ok := d.raw[key]
		if !ok {
			return "", nil
		}
		v, err := strict.value(raw, keyPath(p, key))
		if err != nil {
			return "", err
		}
		s, ok := v.(string)
		if !ok {
			return "", errorf(keyPath(p, key), "must be a string, not %s", jsonType(v))
		}
		return s, nil
	}
	if raw, ok := d.raw["condition"]; ok {
		lenient := strict
		lenient.keepRuntime = true
		v, err := lenient.value(raw, keyPath(p, "condition"))
		if err != nil {
			return nil, err
		}
		switch v := v.(type) {
		case bool:
			r.skipped = !v
		case string:
			if s, _ := raw.(string); s != v || !armexpr.IsExpression(s) {
				return nil, errorf(keyPath(p, "condition"), "must be a boolean, not a string")
			}
			r.Condition = v
		default:
			return nil, errorf(keyPath(p, "condition"), "must be a boolean, not %s", jsonType(v))
		}
	}
	typ, err := str("type")
	if err != nil {
		return nil, err
	}
	if r.Name, err = str("name"); err != nil {
		return nil, err
	}
	if r.APIVersion, err = str("apiVersion"); err != nil {
		return nil, err
	}
	if parent != nil {
		r.relName = r.Name
		typ, r.Name = childTypeAndName(parent, typ, r.Name)
	}
	if err := x.identify(r, typ, parent, str); err != nil {
		return nil, wrap(p, err)
	}
	x.all = append(x.all, r)
	if r.skipped || r.Existing {
		return r, nil
	}
	lenient := evaluator{x: x, fns: fns, loops: loops, keepRuntime: true, copies: true}
	if r.Body, err = x.body(r, lenient); err != nil {
		return nil, err
	}
	r.Location, _ = r.Body["location"].(string)
	if d.isDeployment {
		if err := x.expandNested(r, lenient, nil); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// childTypeAndName makes a nested child's relative type and name full:
// type "subnets" under Microsoft.Network/virtualNetworks, name "sub" under
// "vnet".
func childTypeAndName(parent *Resource, typ, name string) (string, string) {
	if ns, _, _ := strings.Cut(typ, "/"); !strings.Contains(ns, ".") {
		typ = parent.Type + "/" + typ
	}
	if strings.Count(name, "/") < strings.Count(typ, "/")-1 {
		name = parent.Name + "/" + name
	}
	return typ, name
}

// identify sets a resource's Type, ID and the scope its ID is built under:
// an extension resource's scope property, a deployment's resourceGroup and
// subscriptionId, a nested child's parent, or the deployment's scope.
func (x *expansion) identify(r *Resource, typ string, parent *Resource, str func(string) (string, error)) error {
	scopeID := x.scopeID
	if parent != nil {
		scopeID = parent.scopeID
	}
	scope, err := str("scope")
	if err != nil {
		return err
	}
	sub, err := str("subscriptionId")
	if err != nil {
		return err
	}
	rg, err := str("resourceGroup")
	if err != nil {
		return err
	}
	switch {
	case scope != "":
		if scopeID, err = x.resolveScope(scope); err != nil {
			return fmt.Errorf("scope: %w", err)
		}
	case sub != "" || rg != "":
		if sub == "" {
			sub = x.ctx.SubscriptionID
		}
		if rg == "" && x.scope == ResourceGroupScope {
			rg = x.ctx.ResourceGroup
		}
		scopeID = armexpr.SubscriptionID(sub)
		if rg != "" {
			scopeID = armexpr.ResourceGroupID(sub, rg)
		}
	}
	r.scopeID = scopeID
	r.Type = typ
	base, ext, found := strings.Cut(typ, "/providers/")
	if !found {
		r.ID, err = armexpr.ResourceID(scopeID, typ, r.Name)
		return err
	}
	// The older extension syntax: type A.B/x/providers/y, name
	// xName/Namespace/yName.
	segs := strings.Split(r.Name, "/")
	k := strings.Count(base, "/")
	if len(segs) <= k+1 {
		return fmt.Errorf("the name '%s' of a resource of type '%s' needs the extension's namespace and name after the %d name(s) of '%s'", r.Name, typ, k, base)
	}
	baseID, err := armexpr.ResourceID(scopeID, base, segs[:k]...)
	if err != nil {
		return err
	}
	r.Type = segs[k] + "/" + ext
	r.ID, err = armexpr.ResourceID(baseID, r.Type, segs[k+1:]...)
	return err
}

// resolveScope turns a scope property into an ID: an ID, "/" for the
// tenant, a languageVersion 2.0 symbolic name, or a relative
// "Namespace/type/name" in the deployment's scope.
func (x *expansion) resolveScope(s string) (string, error) {
	switch {
	case s == "/":
		return "", nil
	case strings.HasPrefix(s, "/"):
		return strings.TrimSuffix(s, "/"), nil
	}
	if x.t.LanguageVersion != "" {
		for _, r := range x.all {
			if strings.EqualFold(r.SymbolicName, s) {
				return r.ID, nil
			}
		}
	}
	return x.relativeID(s)
}

// relativeID resolves "Namespace/type/name[/type/name]" in the
// deployment's scope; management groups and subscriptions are tenant
// resources.
func (x *expansion) relativeID(s string) (string, error) {
	segs := strings.Split(strings.Trim(s, "/"), "/")
	if len(segs) < 3 || len(segs)%2 == 0 {
		return "", fmt.Errorf("'%s' is neither a resource ID nor a 'Namespace/type/name' reference", s)
	}
	typ, names := segs[0], []string{}
	for i := 1; i < len(segs); i += 2 {
		typ += "/" + segs[i]
		names = append(names, segs[i+1])
	}
	scopeID := x.scopeID
	if strings.EqualFold(typ, "Microsoft.Management/managementGroups") {
		scopeID = ""
	}
	return armexpr.ResourceID(scopeID, typ, names...)
}

// body evaluates what a resource sends to its provider: everything but the
// template's own keys. A deployment's template is not evaluated here but
// expanded as its Deployment.
func (x *expansion) body(r *Resource, e evaluator) (map[string]any, error) {
	body := map[string]any{}
	for k, raw := range r.decl.raw {
		if templateKeys[strings.ToLower(k)] {
			continue
		}
		if props, ok := raw.(map[string]any); ok && r.decl.isDeployment && k == "properties" {
			raw = withoutKey(props, "template")
		}
		v, err := e.value(raw, keyPath(r.path, k))
		if err != nil {
			return nil, err
		}
		body[k] = v
	}
	return body, nil
}

func withoutKey(m map[string]any, key string) map[string]any {
	out := maps.Clone(m)
	delete(out, key)
	return out
}

// expandNested expands the template of a Microsoft.Resources/deployments
// resource, inline or linked, with inner scope (its own parameters, given
// by the deployment) or outer scope (the parent's parameters, variables
// and functions). rt, when set, resolves Key Vault parameter references.
func (x *expansion) expandNested(r *Resource, e evaluator, rt Runtime) error {
	p := keyPath(r.path, "properties")
	t := r.decl.nested
	source := x.source
	if t == nil {
		props, _ := r.Body["properties"].(map[string]any)
		link, ok := props["templateLink"].(map[string]any)
		if !ok {
			return errorf(p, "a deployment needs a template or a templateLink")
		}
		loc, err := x.linkLocation(link, keyPath(p, "templateLink"))
		if err != nil {
			return err
		}
		var data []byte
		err = ErrNotAvailable
		if x.load != nil {
			data, err = x.load(loc)
		}
		if errors.Is(err, ErrNotAvailable) {
			r.TemplateLink = loc
			return nil
		}
		if err != nil {
			return errorf(keyPath(p, "templateLink"), "loading %s: %w", loc, err)
		}
		if t, err = Parse(data); err != nil {
			return nest(keyPath(p, "templateLink")+" ("+loc+")", err)
		}
		source = loc
	}
	ctx, scope := x.nestedContext(r)
	var nx *expansion
	var err error
	if r.decl.inner || r.decl.nested == nil {
		params, pending, perr := x.nestedParameters(r, keyPath(p, "parameters"), rt)
		if errors.Is(perr, ErrNotAvailable) {
			r.Deferred = perr.Error()
			return nil
		}
		if perr != nil {
			return perr
		}
		r.pending = len(pending) > 0
		if nx, err = newExpansion(t, ctx, scope, source, x.load); err == nil {
			err = nx.bindParameters(params, pending)
		}
	} else {
		nx = &expansion{t: t, ctx: ctx, scope: scope, scopeID: r.scopeID, source: source, load: x.load, parent: x, fns: e.fns, defaultFns: e.fns}
	}
	if err != nil {
		return nest(keyPath(p, "template"), err)
	}
	d, err := nx.run()
	if r.pending && rt == nil && errors.Is(err, errNeedsRuntime) {
		r.Deferred = err.Error()
		return nil
	}
	if err != nil {
		return nest(keyPath(p, "template"), err)
	}
	r.Deployment = d
	return nil
}

// linkLocation is where a templateLink points: its uri, its id (a
// template spec version, as the directory of its templates: the ID
// followed by '/'), or its relativePath resolved against this template's
// own location.
func (x *expansion) linkLocation(link map[string]any, p string) (string, error) {
	if s, ok := link["uri"].(string); ok && s != "" {
		return s, nil
	}
	if s, ok := link["id"].(string); ok && s != "" {
		return strings.TrimSuffix(s, "/") + "/", nil
	}
	rel, ok := link["relativePath"].(string)
	if !ok || rel == "" {
		return "", errorf(p, "a templateLink needs a uri, an id or a relativePath")
	}
	if base, err := url.Parse(x.source); err == nil && base.IsAbs() {
		ref, err := url.Parse(rel)
		if err != nil {
			return "", errorf(keyPath(p, "relativePath"), "'%s' is not a valid relative path", rel)
		}
		return base.ResolveReference(ref).String(), nil
	}
	return path.Join(path.Dir(x.source), rel), nil
}

// nestedContext is the context of a nested deployment: named after the
// deployment resource, at the scope its ID is under.
func (x *expansion) nestedContext(r *Resource) (Context, Scope) {
	ctx := x.ctx
	ctx.DeploymentName = r.Name
	if loc, ok := r.Body["location"].(string); ok && loc != "" {
		ctx.Location = loc
	}
	segs := strings.Split(strings.Trim(r.scopeID, "/"), "/")
	switch {
	case r.scopeID == "":
		ctx.SubscriptionID, ctx.ResourceGroup, ctx.ManagementGroup = "", "", ""
		return ctx, TenantScope
	case len(segs) >= 4 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "resourceGroups"):
		ctx.SubscriptionID, ctx.ResourceGroup = segs[1], segs[3]
		return ctx, ResourceGroupScope
	case len(segs) >= 2 && strings.EqualFold(segs[0], "subscriptions"):
		ctx.SubscriptionID, ctx.ResourceGroup = segs[1], ""
		return ctx, SubscriptionScope
	case len(segs) >= 4 && strings.EqualFold(segs[2], "managementGroups"):
		ctx.ManagementGroup, ctx.SubscriptionID, ctx.ResourceGroup = segs[3], "", ""
		return ctx, ManagementGroupScope
	}
	return ctx, x.scope
}

// nestedParameters reads the parameter values an inner-scope deployment
// passes (already evaluated in the parent); pending are those only the
// runtime knows: values still holding an expression, and Key Vault
// references when there is no runtime to read them.
func (x *expansion) nestedParameters(r *Resource, p string, rt Runtime) (map[string]any, map[string]bool, error) {
	props, _ := r.Body["properties"].(map[string]any)
	raw, _ := props["parameters"].(map[string]any)
	params, pending := map[string]any{}, map[string]bool{}
	if link, ok := props["parametersLink"].(map[string]any); ok {
		loc, err := x.linkLocation(link, keyPath(p, "parametersLink"))
		if err != nil {
			return nil, nil, err
		}
		data, err := []byte(nil), ErrNotAvailable
		if x.load != nil {
			data, err = x.load(loc)
		}
		if err == nil {
			params, err = ParseParameters(data)
		}
		if err != nil {
			return nil, nil, errorf(keyPath(p, "parametersLink"), "loading %s: %w", loc, err)
		}
	}
	for name, pv := range raw {
		entry, ok := pv.(map[string]any)
		if !ok {
			return nil, nil, errorf(keyPath(p, name), "must be {\"value\": ...} or {\"reference\": ...}")
		}
		if v, ok := entry["value"]; ok {
			params[name] = v
			if holdsExpression(v) {
				pending[name] = true
			}
			continue
		}
		ref, ok := entry["reference"].(map[string]any)
		if !ok {
			return nil, nil, errorf(keyPath(p, name), "must be {\"value\": ...} or {\"reference\": ...}")
		}
		kv, _ := ref["keyVault"].(map[string]any)
		id, _ := kv["id"].(string)
		secret, _ := ref["secretName"].(string)
		version, _ := ref["secretVersion"].(string)
		if rt == nil {
			params[name] = fmt.Sprintf("<secret %s of key vault %s>", secret, id)
			pending[name] = true
			continue
		}
		v, err := rt.Secret(id, secret, version)
		if err != nil {
			return nil, nil, errorf(keyPath(p, name), "reading secret %s of key vault %s: %v", secret, id, err)
		}
		params[name] = v
	}
	return params, pending, nil
}

// holdsExpression reports whether a value still holds an unevaluated
// expression string.
func holdsExpression(v any) bool {
	switch v := v.(type) {
	case string:
		return armexpr.IsExpression(v)
	case []any:
		return slices.ContainsFunc(v, holdsExpression)
	case map[string]any:
		for _, x := range v {
			if holdsExpression(x) {
				return true
			}
		}
	}
	return false
}

// outputs evaluates the outputs section; without a runtime (rt nil), a
// value that needs it stays an expression.
func (x *expansion) outputs(fns *armexpr.Functions, rt Runtime) (map[string]any, error) {
	out := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(x.t.outputs)) {
		o := x.t.outputs[name]
		p := keyPath("outputs", name)
		e := evaluator{x: x, fns: fns, keepRuntime: rt == nil}
		if cond, ok := o["condition"]; ok {
			v, err := evaluator{x: x, fns: fns}.value(cond, keyPath(p, "condition"))
			if err != nil {
				return nil, err
			}
			if b, ok := v.(bool); !ok {
				return nil, errorf(keyPath(p, "condition"), "must be a boolean, not %s", jsonType(v))
			} else if !b {
				continue
			}
		}
		var v any
		var err error
		if c, ok := o["copy"].(map[string]any); ok {
			v, err = e.copyLoop(&copyDecl{count: c["count"], input: c["input"]}, keyPath(keyPath(p, "copy"), "input"), true)
		} else {
			v, err = e.value(o["value"], keyPath(p, "value"))
		}
		if err != nil {
			return nil, err
		}
		if typ, _ := o["type"].(string); rt != nil {
			if err := checkType(strings.ToLower(typ), v); err != nil {
				return nil, wrap(p, err)
			}
		}
		out[name] = v
	}
	return out, nil
}
