package template

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// resourceIndex finds the resources a dependsOn entry or a reference()
// names: a symbolic name (all its instances, or "name[i]"), a copy loop
// (all its instances), a resource ID, a "Namespace/type/name" reference, a
// resource name, or a nested child's name as written. Keys are lower case.
type resourceIndex struct {
	bySymbol, byLoop, byID, byShort, byName, byRelName map[string][]*Resource
}

func newIndex(all []*Resource) *resourceIndex {
	ix := &resourceIndex{
		bySymbol: map[string][]*Resource{}, byLoop: map[string][]*Resource{},
		byID: map[string][]*Resource{}, byShort: map[string][]*Resource{}, byName: map[string][]*Resource{},
		byRelName: map[string][]*Resource{},
	}
	add := func(m map[string][]*Resource, key string, r *Resource) {
		if key != "" {
			m[strings.ToLower(key)] = append(m[strings.ToLower(key)], r)
		}
	}
	for _, r := range all {
		add(ix.bySymbol, r.SymbolicName, r)
		if r.Copy != nil {
			add(ix.byLoop, r.Copy.Name, r)
		}
		add(ix.byID, r.ID, r)
		add(ix.byShort, shortForm(r.Type, r.Name), r)
		add(ix.byName, r.Name, r)
		add(ix.byRelName, r.relName, r) // siblings may name a nested child as written
	}
	return ix
}

// shortForm is "Namespace/type/name[/type/name]", the form older templates
// use in dependsOn and reference().
func shortForm(typ, name string) string {
	types, names := strings.Split(typ, "/"), strings.Split(name, "/")
	if len(types) != len(names)+1 {
		return ""
	}
	s := types[0]
	for i, n := range names {
		s += "/" + types[i+1] + "/" + n
	}
	return s
}

func (ix *resourceIndex) lookup(s string) []*Resource {
	k := strings.ToLower(strings.TrimSuffix(s, "/"))
	if rs := ix.bySymbol[k]; rs != nil {
		return rs
	}
	if name, i, ok := indexed(k); ok {
		for _, r := range ix.bySymbol[name] {
			if r.Copy != nil && r.Copy.Index == i {
				return []*Resource{r}
			}
		}
	}
	for _, m := range []map[string][]*Resource{ix.byLoop, ix.byID, ix.byShort, ix.byName, ix.byRelName} {
		if rs := m[k]; rs != nil {
			return rs
		}
	}
	return nil
}

// indexed parses "name[i]", the languageVersion 2.0 form for one instance
// of a symbolic resource loop.
func indexed(s string) (string, int64, bool) {
	name, rest, ok := strings.Cut(s, "[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", 0, false
	}
	i, err := strconv.ParseInt(strings.TrimSuffix(rest, "]"), 10, 64)
	return name, i, err == nil
}

// target resolves what reference() and list*() name to a resource ID and
// the API version the template declares for it: a resource of this
// template (or, for an outer-scope nested template, of its parent), or an
// ID.
func (x *expansion) target(s string) (id, apiVersion string, err error) {
	for t := x; t != nil; t = t.parent {
		switch rs := t.index.lookup(s); len(rs) {
		case 0:
		case 1:
			return rs[0].ID, rs[0].APIVersion, nil
		default:
			return "", "", fmt.Errorf("'%s' names %d resources; use a resource ID", s, len(rs))
		}
	}
	if strings.HasPrefix(s, "/") {
		return s, "", nil
	}
	if strings.Contains(s, "/") {
		id, err := x.relativeID(s)
		return id, "", err
	}
	return "", "", fmt.Errorf("'%s' is neither a resource of this template nor a resource ID", s)
}

// link resolves every resource's dependencies, explicit (dependsOn),
// implicit (a nested child on its parent, reference() and list*() on
// their target, a serial loop's batch on the batch before) and orders the
// resources to deploy so that each comes after its dependencies.
// Dependencies on a resource whose condition is false are satisfied, but
// still wait for what that resource depends on.
func (x *expansion) link() error {
	x.index = newIndex(x.all)
	batches := map[batchKey][]*Resource{}
	for _, r := range x.all {
		if err := x.explicitDependencies(r); err != nil {
			return err
		}
		x.implicitDependencies(r)
		if r.Copy != nil && r.Copy.Serial {
			k := batchKey{r.decl, r.parent}
			batches[k] = append(batches[k], r)
		}
	}
	for _, instances := range batches {
		for i, r := range instances {
			size := int(instances[0].Copy.BatchSize)
			if b := i / size; b > 0 {
				r.after = append(r.after, instances[(b-1)*size:b*size]...)
			}
		}
	}
	deps, err := effectiveDependencies(x.all)
	if err != nil {
		return err
	}
	return x.order(deps)
}

type batchKey struct {
	decl   *resourceDecl
	parent *Resource
}

func (x *expansion) explicitDependencies(r *Resource) error {
	if r.parent != nil {
		r.after = append(r.after, r.parent)
	}
	list, _ := r.decl.raw["dependsOn"].([]any)
	e := evaluator{x: x, fns: r.fns, loops: r.loops}
	for i, raw := range list {
		p := indexPath(keyPath(r.path, "dependsOn"), i)
		v, err := e.value(raw, p)
		if err != nil {
			return err
		}
		s, ok := v.(string)
		if !ok {
			return errorf(p, "must be a string, not %s", jsonType(v))
		}
		targets := x.index.lookup(s)
		if len(targets) == 0 && !x.declared[strings.ToLower(s)] { // a loop of count 0 is a valid target
			return errorf(p, "'%s' is not a resource, copy loop or symbolic name of this template", s)
		}
		r.after = append(r.after, targets...)
	}
	return nil
}

// implicitDependencies adds the resources of this template that the
// resource's reference() and list*() calls target, where the target can
// be told before the deployment runs.
func (x *expansion) implicitDependencies(r *Resource) {
	for _, c := range r.decl.refs {
		v, err := c.EvalArg(0, r.fns)
		if s, ok := v.(string); ok && err == nil {
			for _, t := range x.index.lookup(s) {
				if t != r {
					r.after = append(r.after, t)
				}
			}
		}
	}
}

// runtimeCalls lists the reference() and list*() calls with a target in a
// resource declaration, outside its dependsOn, its children and an
// inner-scope nested template (which reference their own resources).
func runtimeCalls(t *Template, d *resourceDecl) []armexpr.CallSite {
	raw := withoutKey(d.raw, "dependsOn")
	delete(raw, "resources")
	if props, ok := raw["properties"].(map[string]any); ok && d.isDeployment && d.inner {
		raw["properties"] = withoutKey(props, "template")
	}
	var calls []armexpr.CallSite
	walkExpressions(t, raw, d.path, func(e *armexpr.Expr, _ string) error {
		for _, c := range e.Calls() {
			name := strings.ToLower(c.Name)
			if c.NumArgs() > 0 && (name == "reference" || strings.HasPrefix(name, "list")) {
				calls = append(calls, c)
			}
		}
		return nil
	})
	return calls
}

// effectiveDependencies replaces each dependency on a skipped resource
// (condition false) with that resource's own dependencies.
func effectiveDependencies(all []*Resource) (map[*Resource][]*Resource, error) {
	memo := map[*Resource][]*Resource{}
	visiting := map[*Resource]bool{}
	var through func(r *Resource) ([]*Resource, error)
	through = func(r *Resource) ([]*Resource, error) {
		if deps, ok := memo[r]; ok {
			return deps, nil
		}
		if visiting[r] {
			return nil, fmt.Errorf("resources that are not deployed form a dependency cycle through %s", r.ID)
		}
		visiting[r] = true
		var deps []*Resource
		for _, d := range r.after {
			if !d.skipped {
				deps = append(deps, d)
				continue
			}
			inner, err := through(d)
			if err != nil {
				return nil, err
			}
			deps = append(deps, inner...)
		}
		memo[r] = deps
		return deps, nil
	}
	out := map[*Resource][]*Resource{}
	for _, r := range all {
		if r.skipped {
			continue
		}
		deps, err := through(r)
		if err != nil {
			return nil, err
		}
		out[r] = deps
	}
	return out, nil
}

// order sorts the resources to deploy topologically, keeping declaration
// order where dependencies allow, sets DependsOn, and fails on a cycle,
// naming it.
func (x *expansion) order(deps map[*Resource][]*Resource) error {
	var kept []*Resource
	waiting := map[*Resource]int{}
	next := map[*Resource][]*Resource{}
	for _, r := range x.all {
		if r.skipped {
			continue
		}
		kept = append(kept, r)
		seen := map[*Resource]bool{r: true}
		var ids []string
		for _, d := range deps[r] {
			if !seen[d] {
				seen[d] = true
				ids = append(ids, d.ID)
				waiting[r]++
				next[d] = append(next[d], r)
			}
		}
		slices.Sort(ids)
		r.DependsOn = slices.Compact(ids)
	}
	// ready holds declaration indexes, smallest first.
	pos := make(map[*Resource]int, len(kept))
	var ready []int
	for i, r := range kept {
		pos[r] = i
		if waiting[r] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		r := kept[ready[0]]
		ready = ready[1:]
		x.resources = append(x.resources, r)
		for _, n := range next[r] {
			if waiting[n]--; waiting[n] == 0 {
				at, _ := slices.BinarySearch(ready, pos[n])
				ready = slices.Insert(ready, at, pos[n])
			}
		}
	}
	if len(x.resources) == len(kept) {
		return nil
	}
	return x.cycleError(deps, waiting)
}

// cycleError names one dependency cycle among the resources left waiting.
func (x *expansion) cycleError(deps map[*Resource][]*Resource, waiting map[*Resource]int) error {
	var start *Resource
	for _, r := range x.all {
		if waiting[r] > 0 {
			start = r
			break
		}
	}
	pos := map[*Resource]int{}
	var path []*Resource
	for r := start; ; {
		if i, ok := pos[r]; ok {
			var names []string
			for _, c := range append(path[i:], r) {
				names = append(names, c.ID)
			}
			return errorf(r.path, "the resources depend on each other in a cycle: %s", strings.Join(names, " -> "))
		}
		pos[r] = len(path)
		path = append(path, r)
		for _, d := range deps[r] {
			if waiting[d] > 0 {
				r = d
				break
			}
		}
	}
}
