package compliance_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/compliance"
)

// largeStates are 1,000,000 states: 10,000 resources × 100 assignments,
// one in five of an initiative; 20% non-compliant, 10% exempt, the rest
// compliant, evaluated over the last ten hours; in no order, as a map of
// the server would give them. Built once: it takes a while and half a
// gigabyte.
var largeStates = sync.OnceValue(func() []compliance.State {
	const resources, assignments = 10_000, 100
	ids := make([]string, resources)
	groups := make([]string, resources)
	for r := range ids {
		groups[r] = fmt.Sprintf("rg%d", r%100)
		ids[r] = fmt.Sprintf("%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/vm%d", sub, groups[r], r)
	}
	type assignment struct{ id, name, definition, set, reference, effect string }
	as := make([]assignment, assignments)
	for a := range as {
		as[a] = assignment{id: fmt.Sprintf("%s/providers/Microsoft.Authorization/policyAssignments/a%d", sub, a), name: fmt.Sprintf("a%d", a),
			definition: fmt.Sprintf("/providers/Microsoft.Authorization/policyDefinitions/d%d", a%40),
			effect:     []string{"deny", "audit", "auditifnotexists"}[a%3]}
		if a%5 == 0 {
			as[a].set = sub + "/providers/Microsoft.Authorization/policySetDefinitions/s1"
			as[a].reference = fmt.Sprintf("ref%d", a)
		}
	}
	inGroup := []string{"tags"}
	states := make([]compliance.State, 0, resources*assignments)
	for r := range resources {
		for a := range assignments {
			state := compliance.Compliant
			switch (r*31 + a*17) % 10 {
			case 0, 1:
				state = compliance.NonCompliant
			case 2:
				state = compliance.Exempt
			}
			s := compliance.State{
				Timestamp: now.Add(-time.Duration(r%600) * time.Minute), ResourceID: ids[r], SubscriptionID: "00000000-0000-0000-0000-000000000001",
				ResourceGroup: groups[r], ResourceType: "Microsoft.Compute/virtualMachines", ResourceLocation: "local",
				PolicyAssignmentID: as[a].id, PolicyAssignmentName: as[a].name, PolicyAssignmentScope: sub,
				PolicyDefinitionID: as[a].definition, PolicyDefinitionAction: as[a].effect, ComplianceState: state,
				PolicySetDefinitionID: as[a].set, PolicyDefinitionReferenceID: as[a].reference,
			}
			if as[a].set != "" {
				s.PolicyDefinitionGroupNames = inGroup
			}
			states = append(states, s)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(states), func(i, j int) { states[i], states[j] = states[j], states[i] })
	return states
})

func benchmarkResults(b *testing.B, pairs ...string) {
	states := largeStates()
	q, err := compliance.ParseQuery(params(pairs...))
	if err != nil {
		b.Fatal(err)
	}
	var rows int
	for b.Loop() {
		rows = len(q.Results(states, now).Rows)
	}
	b.ReportMetric(float64(rows), "rows")
}

// BenchmarkResultsFilter is az policy state list --filter over a million
// states: 67,000 match, the first 1,000 in order make the page.
func BenchmarkResultsFilter(b *testing.B) {
	benchmarkResults(b, "$filter", "complianceState eq 'NonCompliant' and policyDefinitionAction eq 'deny'")
}

// BenchmarkResultsAll is the first page of all of them.
func BenchmarkResultsAll(b *testing.B) { benchmarkResults(b) }

// BenchmarkResultsApply counts the non-compliant resources of each
// assignment.
func BenchmarkResultsApply(b *testing.B) {
	benchmarkResults(b, "$filter", "isCompliant eq false", "$apply", "groupby((policyAssignmentId), aggregate($count as n))")
}

// BenchmarkSummarize is az policy state summarize over a million states.
func BenchmarkSummarize(b *testing.B) {
	states := largeStates()
	q, err := compliance.ParseQuery(params())
	if err != nil {
		b.Fatal(err)
	}
	var assignments int
	for b.Loop() {
		assignments = len(compliance.Summarize(states, q, now).PolicyAssignments)
	}
	b.ReportMetric(float64(assignments), "assignments")
}
