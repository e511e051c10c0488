package compliance

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

// fuzzNow and fuzzStates are what fuzzed queries run over: states with
// empty, odd and non-ASCII values.
var fuzzNow = time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

func fuzzStates() []State {
	return []State{
		{Timestamp: fuzzNow.Add(-time.Hour), ResourceID: "/subscriptions/s/resourceGroups/rg/providers/A.B/c/x", ResourceGroup: "rg",
			PolicyAssignmentID: "/a/1", PolicyDefinitionID: "/d/1", PolicyDefinitionAction: "deny", ComplianceState: NonCompliant},
		{Timestamp: fuzzNow.Add(-2 * time.Hour), ResourceID: "/subscriptions/s/resourceGroups/RG/providers/A.B/c/Ünï", ResourceGroup: "RG",
			PolicyAssignmentID: "/a/2", PolicyDefinitionID: "/d/2", PolicySetDefinitionID: "/s/1", PolicyDefinitionReferenceID: "r'1",
			PolicyDefinitionGroupNames: []string{"g", "Ğ"}, PolicyDefinitionAction: "audit", ComplianceState: Exempt,
			PolicyEvaluationDetails: &EvaluationDetails{EvaluatedExpressions: []ExpressionDetails{{Result: "True", Operator: "Equals"}}}},
		{Timestamp: fuzzNow.Add(-2 * time.Hour), ResourceID: "/subscriptions/s/resourceGroups/RG/providers/A.B/c/Ünï",
			PolicyAssignmentID: "/A/2", PolicyDefinitionID: "/d/3", PolicySetDefinitionID: "/s/1", PolicyDefinitionReferenceID: "r2",
			PolicyDefinitionGroupNames: []string{"G"}, ComplianceState: "Conflict"},
		{Timestamp: fuzzNow.Add(-3 * time.Hour), ComplianceState: Compliant},
	}
}

// checkQueryError fails unless err is a QueryError of param at a position
// inside src or just after it.
func checkQueryError(t *testing.T, err error, param, src string) {
	t.Helper()
	qe, ok := errors.AsType[*QueryError](err)
	if !ok || qe.Parameter != param || qe.Pos < 1 || qe.Pos > len(src)+1 {
		t.Fatalf("parsing %s=%q: %#v, want a QueryError of %s at a position in it", param, src, err, param)
	}
}

// run answers the parameters over the fuzz states, which must not panic.
func run(t *testing.T, values url.Values) {
	t.Helper()
	q, err := ParseQuery(values)
	if err != nil {
		t.Fatalf("ParseQuery(%v) = %v", values, err)
	}
	q.PageSize = 2
	q.Results(fuzzStates(), fuzzNow)
	Summarize(fuzzStates(), q, fuzzNow)
}

// FuzzFilter feeds $filter arbitrary text: it parses or is a QueryError at
// a position in it, never a panic; what parses writes back as a filter
// that parses to the same text, and runs.
func FuzzFilter(f *testing.F) {
	for _, seed := range []string{
		"complianceState eq 'NonCompliant'",
		"IsCompliant eq false and (PolicyDefinitionAction eq 'audit' or PolicyDefinitionAction eq 'deny')",
		"not (resourceGroup ne 'rg') or timestamp ge 2026-08-01T10:00:00Z and timestamp lt datetime'2026-08-01T11:30:00.5+01:00'",
		"'g' IN policyDefinitionGroupNames and complianceState in ('Exempt', 'Conflict')",
		"policySetDefinitionId eq null or policyDefinitionReferenceId gt 'r''1'",
		"timestamp le '2026-08-01' and not not isCompliant",
		"((a eq 1", "x eq 'unclosed", "1 eq 1", "-5 lt 12", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := parseFilter(src)
		if err != nil {
			if src != "" {
				checkQueryError(t, err, "$filter", src)
			}
			return
		}
		printed := e.String()
		again, err := parseFilter(printed)
		if err != nil {
			t.Fatalf("$filter=%q writes back as %q, which does not parse: %v", src, printed, err)
		}
		if again.String() != printed {
			t.Fatalf("$filter=%q writes back as %q, which writes back as %q", src, printed, again.String())
		}
		run(t, url.Values{"$filter": {src}})
	})
}

// FuzzApply is FuzzFilter for $apply.
func FuzzApply(f *testing.F) {
	for _, seed := range []string{
		"groupby((policyAssignmentId, resourceId), aggregate($count as numStates))",
		"filter(complianceState ne 'Compliant')/groupby((resourceId), aggregate($count as n))/filter(n ge 2)",
		"groupby((ResourceId), aggregate($count as n))/groupby((n), aggregate($count as Resources))",
		"groupby((PolicyAssignmentId, PolicySetDefinitionId, PolicyDefinitionReferenceId, ResourceId))/groupby((PolicyAssignmentId), aggregate($count as c))",
		"aggregate($count as NumDenyStates)",
		"groupby((isCompliant, timestamp))/filter(not isCompliant)",
		"groupby((", "aggregate($count as)", "filter(x)/",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		steps, _, err := parseApply(src)
		if err != nil {
			checkQueryError(t, err, "$apply", src)
			return
		}
		printed := applyString(steps)
		again, _, err := parseApply(printed)
		if err != nil {
			t.Fatalf("$apply=%q writes back as %q, which does not parse: %v", src, printed, err)
		}
		if applyString(again) != printed {
			t.Fatalf("$apply=%q writes back as %q, which writes back as %q", src, printed, applyString(again))
		}
		run(t, url.Values{"$apply": {src}})
	})
}
