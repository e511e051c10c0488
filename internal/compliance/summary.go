package compliance

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Summary is the body of a summarize answer: SummarizeResults, with its one
// Summary.
type Summary struct {
	Context           string // @odata.context: {Endpoint}/$metadata#summary
	Results           SummaryResults
	PolicyAssignments []AssignmentSummary
}

// MarshalJSON writes the summary as Azure does: a collection of one.
func (s Summary) MarshalJSON() ([]byte, error) {
	type summary struct {
		ID                *string             `json:"@odata.id"`
		Context           string              `json:"@odata.context"`
		Results           SummaryResults      `json:"results"`
		PolicyAssignments []AssignmentSummary `json:"policyAssignments"`
	}
	return marshal(struct {
		Context string    `json:"@odata.context"`
		Count   int       `json:"@odata.count"`
		Value   []summary `json:"value"`
	}{s.Context, 1, []summary{{Context: s.Context + "/$entity", Results: s.Results, PolicyAssignments: s.PolicyAssignments}}})
}

// SummaryResults is the compliance of one level: the query scope, an
// assignment, a definition in it or a group of its definitions.
type SummaryResults struct {
	// QueryResultsURI is the queryResults request that lists the
	// non-compliant states of this level.
	QueryResultsURI       string `json:"queryResultsUri"`
	NonCompliantResources int    `json:"nonCompliantResources"`
	// NonCompliantPolicies counts the definitions, as assigned, with a
	// non-compliant state.
	NonCompliantPolicies int `json:"nonCompliantPolicies"`
	// ResourceDetails count the resources by their compliance state, the
	// worst of their states at this level: non-compliant, compliant,
	// exempt, unknown.
	ResourceDetails []ComplianceDetail `json:"resourceDetails"`
	// PolicyDetails count the assignments (at the query scope) or the
	// definitions (in an assignment) by their worst state.
	PolicyDetails []ComplianceDetail `json:"policyDetails"`
	// PolicyGroupDetails count the definition groups by their worst state.
	PolicyGroupDetails []ComplianceDetail `json:"policyGroupDetails"`
}

// ComplianceDetail is a count of one compliance state, in lower case as
// summarize writes it: "noncompliant".
type ComplianceDetail struct {
	ComplianceState string `json:"complianceState"`
	Count           int    `json:"count"`
}

// AssignmentSummary is the compliance of one assignment.
type AssignmentSummary struct {
	PolicyAssignmentID    string              `json:"policyAssignmentId"`
	PolicySetDefinitionID string              `json:"policySetDefinitionId"`
	Results               SummaryResults      `json:"results"`
	PolicyDefinitions     []DefinitionSummary `json:"policyDefinitions"`
	PolicyGroups          []GroupSummary      `json:"policyGroups"`
}

// DefinitionSummary is the compliance of one definition of an assignment.
type DefinitionSummary struct {
	PolicyDefinitionID          string         `json:"policyDefinitionId"`
	PolicyDefinitionReferenceID string         `json:"policyDefinitionReferenceId"`
	PolicyDefinitionGroupNames  []string       `json:"policyDefinitionGroupNames,omitempty"`
	Effect                      string         `json:"effect"`
	Results                     SummaryResults `json:"results"`
}

// GroupSummary is the compliance of one group of an initiative's
// definitions, in an assignment.
type GroupSummary struct {
	PolicyGroupName string         `json:"policyGroupName"`
	Results         SummaryResults `json:"results"`
}

// Weights of the compliance states: a resource, a definition or an
// assignment has the heaviest of its states, as Azure's compliance
// queries rank them. Any other state weighs as unknown.
const (
	weightUnknown uint8 = iota
	weightExempt
	weightCompliant
	weightNonCompliant
)

// weightNames are the states as summarize writes them, by weight.
var weightNames = [...]string{"unknown", "exempt", "compliant", "noncompliant"}

func weight(state string) uint8 {
	switch {
	case strings.EqualFold(state, NonCompliant):
		return weightNonCompliant
	case strings.EqualFold(state, Compliant):
		return weightCompliant
	case strings.EqualFold(state, Exempt):
		return weightExempt
	}
	return weightUnknown
}

// tally collects the states of one level: the weight of each, with its
// resource. A resource has the worst of its states.
type tally struct {
	entries []uint64 // resource<<2 | weight, in any order
	worst   uint8
}

func (t *tally) add(resource int32, w uint8) {
	t.entries = append(t.entries, uint64(resource)<<2|uint64(w))
	t.worst = max(t.worst, w)
}

// merge is the tally of the states of definitions together.
func merge(definitions []*definitionTally) tally {
	n := 0
	for _, d := range definitions {
		n += len(d.entries)
	}
	t := tally{entries: make([]uint64, 0, n)}
	for _, d := range definitions {
		t.entries = append(t.entries, d.entries...)
		t.worst = max(t.worst, d.worst)
	}
	return t
}

// byResource counts the resources by their worst state. Sorting puts the
// entries of a resource together, the heaviest last.
func (t *tally) byResource() [len(weightNames)]int {
	slices.Sort(t.entries)
	var counts [len(weightNames)]int
	for i, e := range t.entries {
		if i+1 == len(t.entries) || t.entries[i+1]>>2 != e>>2 {
			counts[e&3]++
		}
	}
	return counts
}

type assignmentTally struct {
	id, setID   string
	definitions []*definitionTally
	groups      map[string]*groupTally // by name in lower case
}

type definitionTally struct {
	tally
	id, referenceID, effect string
	groupNames              []string
}

type groupTally struct {
	name        string
	definitions []*definitionTally
}

// worstOf is the heaviest state of definitions.
func worstOf(definitions []*definitionTally) uint8 {
	var w uint8
	for _, d := range definitions {
		w = max(w, d.worst)
	}
	return w
}

// interner numbers strings, ignoring case; it folds each distinct spelling
// once.
type interner struct{ exact, folded map[string]int32 }

func (in *interner) id(s string) int32 {
	if id, ok := in.exact[s]; ok {
		return id
	}
	f := strings.ToLower(s)
	id, ok := in.folded[f]
	if !ok {
		id = int32(len(in.folded))
		in.folded[f] = id
	}
	in.exact[s] = id
	return id
}

// definitionKey is what a state is the verdict of: a definition, by its
// reference, in an assignment.
type definitionKey struct{ assignment, definition, reference string }

// collector gathers the states of a summary by resource and by definition:
// a state costs a lookup of each.
type collector struct {
	resources   interner
	worst       []uint8                            // by resource: the heaviest weight of its states, plus one
	exact       map[definitionKey]*definitionTally // by the key as written
	folded      map[definitionKey]*definitionTally // by the key in lower case
	assignments map[string]*assignmentTally        // by ID in lower case
	order       []*assignmentTally                 // as first seen
}

func newCollector() *collector {
	return &collector{resources: interner{exact: map[string]int32{}, folded: map[string]int32{}},
		exact: map[definitionKey]*definitionTally{}, folded: map[definitionKey]*definitionTally{}, assignments: map[string]*assignmentTally{}}
}

func (c *collector) add(s *State) {
	w, resource := weight(s.ComplianceState), c.resources.id(s.ResourceID)
	if int(resource) == len(c.worst) {
		c.worst = append(c.worst, 0)
	}
	c.worst[resource] = max(c.worst[resource], w+1)
	key := definitionKey{s.PolicyAssignmentID, s.PolicyDefinitionID, s.PolicyDefinitionReferenceID}
	d := c.exact[key]
	if d == nil {
		d = c.definition(s, key)
		c.exact[key] = d
	}
	d.add(resource, w)
}

// definition is the tally of a key not seen as written before: one seen in
// another case, or a new one in its assignment.
func (c *collector) definition(s *State, key definitionKey) *definitionTally {
	folded := definitionKey{strings.ToLower(key.assignment), strings.ToLower(key.definition), strings.ToLower(key.reference)}
	if d := c.folded[folded]; d != nil {
		return d
	}
	a := c.assignments[folded.assignment]
	if a == nil {
		a = &assignmentTally{id: s.PolicyAssignmentID, setID: s.PolicySetDefinitionID, groups: map[string]*groupTally{}}
		c.assignments[folded.assignment] = a
		c.order = append(c.order, a)
	}
	d := &definitionTally{id: s.PolicyDefinitionID, referenceID: s.PolicyDefinitionReferenceID,
		effect: s.PolicyDefinitionAction, groupNames: s.PolicyDefinitionGroupNames}
	c.folded[folded] = d
	a.definitions = append(a.definitions, d)
	for _, name := range d.groupNames {
		g := a.groups[strings.ToLower(name)]
		if g == nil {
			g = &groupTally{name: name}
			a.groups[strings.ToLower(name)] = g
		}
		g.definitions = append(g.definitions, d)
	}
	return d
}

// byResource counts all resources by their worst state.
func (c *collector) byResource() [len(weightNames)]int {
	var counts [len(weightNames)]int
	for _, w := range c.worst {
		counts[w-1]++
	}
	return counts
}

// Summarize answers summarize: the compliance of the states of the time
// window that pass $filter, overall, by assignment (the $top with the most
// non-compliant resources, all without $top), by definition in each and by
// group of definitions. $apply, $select, $orderby and $skiptoken do not
// apply to it.
func Summarize(states []State, q *Query, now time.Time) Summary {
	from, to := q.window(now)
	c := newCollector()
	for _, i := range q.matching(states, from, to) {
		c.add(&states[i])
	}

	link := func(conds ...expr) string { return q.summaryLink(from, to, conds...) }
	nonCompliant := stringCondition("complianceState", NonCompliant)
	sum := Summary{Context: q.Endpoint + "/$metadata#summary", PolicyAssignments: []AssignmentSummary{}}
	var assignmentWorst, groupWorst []uint8
	nonCompliantPolicies := 0
	for _, a := range c.order {
		summary := a.summarize(link, nonCompliant)
		sum.PolicyAssignments = append(sum.PolicyAssignments, summary)
		assignmentWorst = append(assignmentWorst, worstOf(a.definitions))
		for _, g := range a.groups {
			groupWorst = append(groupWorst, worstOf(g.definitions))
		}
		nonCompliantPolicies += summary.Results.NonCompliantPolicies
	}
	sum.Results = results(link(nonCompliant), c.byResource(), assignmentWorst, groupWorst, nonCompliantPolicies)
	slices.SortStableFunc(sum.PolicyAssignments, func(a, b AssignmentSummary) int {
		if c := b.Results.NonCompliantResources - a.Results.NonCompliantResources; c != 0 {
			return c
		}
		return compareFold(a.PolicyAssignmentID, b.PolicyAssignmentID)
	})
	if q.top >= 0 && q.top < len(sum.PolicyAssignments) {
		sum.PolicyAssignments = sum.PolicyAssignments[:q.top]
	}
	return sum
}

// summarize is the summary of one assignment.
func (a *assignmentTally) summarize(link func(...expr) string, nonCompliant expr) AssignmentSummary {
	inAssignment := stringCondition("policyAssignmentId", a.id)
	out := AssignmentSummary{PolicyAssignmentID: a.id, PolicySetDefinitionID: a.setID,
		PolicyDefinitions: []DefinitionSummary{}, PolicyGroups: []GroupSummary{}}
	var definitionWorst []uint8
	for _, d := range a.definitions {
		conds := []expr{nonCompliant, inAssignment, stringCondition("policyDefinitionId", d.id)}
		if d.referenceID != "" {
			conds = append(conds, stringCondition("policyDefinitionReferenceId", d.referenceID))
		}
		groups := make([]uint8, len(d.groupNames))
		for i := range groups {
			groups[i] = d.worst
		}
		out.PolicyDefinitions = append(out.PolicyDefinitions, DefinitionSummary{
			PolicyDefinitionID: d.id, PolicyDefinitionReferenceID: d.referenceID, PolicyDefinitionGroupNames: d.groupNames,
			Effect: d.effect, Results: results(link(conds...), d.byResource(), []uint8{d.worst}, groups, nonCompliantCount(d)),
		})
		definitionWorst = append(definitionWorst, d.worst)
	}
	slices.SortStableFunc(out.PolicyDefinitions, func(x, y DefinitionSummary) int {
		if c := y.Results.NonCompliantResources - x.Results.NonCompliantResources; c != 0 {
			return c
		}
		if c := compareFold(x.PolicyDefinitionReferenceID, y.PolicyDefinitionReferenceID); c != 0 {
			return c
		}
		return compareFold(x.PolicyDefinitionID, y.PolicyDefinitionID)
	})
	var groupWorst []uint8
	for _, key := range slices.Sorted(maps.Keys(a.groups)) {
		g := a.groups[key]
		members := merge(g.definitions)
		var memberWorst []uint8
		for _, d := range g.definitions {
			memberWorst = append(memberWorst, d.worst)
		}
		groupWorst = append(groupWorst, members.worst)
		out.PolicyGroups = append(out.PolicyGroups, GroupSummary{PolicyGroupName: g.name, Results: results(
			link(nonCompliant, inAssignment, &contains{item: g.name, collection: stateColumn("policyDefinitionGroupNames")}),
			members.byResource(), memberWorst, []uint8{members.worst}, nonCompliantCount(g.definitions...))})
	}
	all := merge(a.definitions)
	out.Results = results(link(nonCompliant, inAssignment), all.byResource(), definitionWorst, groupWorst, nonCompliantCount(a.definitions...))
	return out
}

// nonCompliantCount is how many of the definitions are non-compliant.
func nonCompliantCount(definitions ...*definitionTally) int {
	n := 0
	for _, d := range definitions {
		if d.worst == weightNonCompliant {
			n++
		}
	}
	return n
}

// results are the counts of one level.
func results(uri string, byResource [len(weightNames)]int, policies, groups []uint8, nonCompliantPolicies int) SummaryResults {
	return SummaryResults{
		QueryResultsURI:       uri,
		NonCompliantResources: byResource[weightNonCompliant],
		NonCompliantPolicies:  nonCompliantPolicies,
		ResourceDetails:       details(byResource),
		PolicyDetails:         details(countWeights(policies)),
		PolicyGroupDetails:    details(countWeights(groups)),
	}
}

func countWeights(weights []uint8) [len(weightNames)]int {
	var counts [len(weightNames)]int
	for _, w := range weights {
		counts[w]++
	}
	return counts
}

// details lists the states with a count, by name as Azure lists them.
func details(counts [len(weightNames)]int) []ComplianceDetail {
	out := []ComplianceDetail{}
	for w, n := range counts {
		if n > 0 {
			out = append(out, ComplianceDetail{ComplianceState: weightNames[w], Count: n})
		}
	}
	slices.SortFunc(out, func(a, b ComplianceDetail) int { return strings.Compare(a.ComplianceState, b.ComplianceState) })
	return out
}

// stringCondition is "name eq 'value'".
func stringCondition(name, v string) expr {
	return &comparison{op: "eq", left: operand{col: stateColumn(name)}, right: operand{lit: value{kind: kindString, str: v}}}
}

// summaryLink is the queryResults request of the latest states of the
// window that pass $filter and conds.
func (q *Query) summaryLink(from, to time.Time, conds ...expr) string {
	cond := q.filter
	for _, c := range conds {
		if cond == nil {
			cond = c
			continue
		}
		cond = &logical{and: true, left: cond, right: c}
	}
	u := q.queryResultsURL("latest")
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "$from=" + url.QueryEscape(formatTime(from)) + "&$to=" + url.QueryEscape(formatTime(to)) +
		"&$filter=" + url.QueryEscape(cond.String())
}
