package compliance_test

import (
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/compliance"
	"github.com/google/go-cmp/cmp"
)

// rowsOf runs a query over the fixture and returns its rows.
func rowsOf(t *testing.T, pairs ...string) []compliance.Row {
	t.Helper()
	return query(t, pairs...).Results(fixture(), now).Rows
}

func TestApply(t *testing.T) {
	vm1 := sub + "/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"
	vm2 := sub + "/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm2"
	sa1 := sub + "/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/sa1"
	row := func(pairs ...any) compliance.Row {
		r := compliance.Row{}
		for i := 0; i < len(pairs); i += 2 {
			r = append(r, compliance.Field{Name: pairs[i].(string), Value: pairs[i+1]})
		}
		return r
	}
	tests := []struct {
		name  string
		pairs []string
		want  []compliance.Row
	}{{
		name:  "groupby with aggregate, as az documents it",
		pairs: []string{"$apply", "groupby((policyAssignmentId, resourceId), aggregate($count as numStates))"},
		want: []compliance.Row{
			row("policyAssignmentId", loc, "resourceId", vm1, "numStates", int64(1)),
			row("policyAssignmentId", loc, "resourceId", vm2, "numStates", int64(1)),
			row("policyAssignmentId", loc, "resourceId", sa1, "numStates", int64(1)),
			row("policyAssignmentId", tag, "resourceId", vm1, "numStates", int64(2)),
			row("policyAssignmentId", tag, "resourceId", vm2, "numStates", int64(2)),
			row("policyAssignmentId", tag, "resourceId", sa1, "numStates", int64(2)),
		},
	}, {
		name:  "groupby without aggregate is distinct, keys in any case",
		pairs: []string{"$apply", "GroupBy((ResourceGroup))"},
		want:  []compliance.Row{row("resourceGroup", "rg1"), row("resourceGroup", "rg2")},
	}, {
		name:  "groups ignore case",
		pairs: []string{"$apply", "groupby((complianceState))", "$filter", "complianceState eq 'compliant'"},
		want:  []compliance.Row{row("complianceState", "Compliant")},
	}, {
		name:  "aggregate alone counts the filtered states",
		pairs: []string{"$filter", "PolicyDefinitionAction eq 'deny'", "$apply", "aggregate($count as NumDenyStates)"},
		want:  []compliance.Row{row("NumDenyStates", int64(3))},
	}, {
		name:  "aggregate of nothing is a zero",
		pairs: []string{"$filter", "resourceGroup eq 'none'", "$apply", "aggregate($count as n)"},
		want:  []compliance.Row{row("n", int64(0))},
	}, {
		name:  "filter then groupby",
		pairs: []string{"$apply", "filter(complianceState eq 'NonCompliant')/groupby((policyAssignmentId), aggregate($count as n))"},
		want:  []compliance.Row{row("policyAssignmentId", loc, "n", int64(1)), row("policyAssignmentId", tag, "n", int64(2))},
	}, {
		name: "two groupbys, as Azure's example counts non-compliant resources by definition",
		pairs: []string{"$filter", "IsCompliant eq false", "$apply",
			"groupby((PolicyAssignmentId, PolicySetDefinitionId, PolicyDefinitionReferenceId, ResourceId))/" +
				"groupby((PolicyAssignmentId, PolicySetDefinitionId, PolicyDefinitionReferenceId), aggregate($count as NumNonCompliantResources))",
			"$orderby", "NumNonCompliantResources desc, policyDefinitionReferenceId asc"},
		want: []compliance.Row{
			row("policyAssignmentId", tag, "policySetDefinitionId", sub+"/providers/Microsoft.Authorization/policySetDefinitions/tagging",
				"policyDefinitionReferenceId", "env", "NumNonCompliantResources", int64(2)),
			row("policyAssignmentId", tag, "policySetDefinitionId", sub+"/providers/Microsoft.Authorization/policySetDefinitions/tagging",
				"policyDefinitionReferenceId", "owner", "NumNonCompliantResources", int64(2)),
			row("policyAssignmentId", loc, "policySetDefinitionId", nil, "policyDefinitionReferenceId", nil, "NumNonCompliantResources", int64(1)),
		},
	}, {
		name:  "filter on a count",
		pairs: []string{"$apply", "filter(complianceState ne 'Compliant')/groupby((resourceId), aggregate($count as n))/filter(n ge 2)"},
		want:  []compliance.Row{row("resourceId", vm1, "n", int64(2)), row("resourceId", sa1, "n", int64(2))},
	}, {
		name:  "group by a count",
		pairs: []string{"$apply", "groupby((resourceId), aggregate($count as n))/groupby((n), aggregate($count as resources))"},
		want:  []compliance.Row{row("n", int64(3), "resources", int64(3))},
	}, {
		name: "order, select and top over groups",
		pairs: []string{"$apply", "groupby((policyAssignmentId, policyDefinitionAction, resourceId), aggregate($count as NumStates))",
			"$orderby", "NumStates desc, resourceId", "$select", "resourceId, NumStates", "$top", "2"},
		// desc is the default direction, as Azure documents it.
		want: []compliance.Row{row("resourceId", sa1, "NumStates", int64(2)), row("resourceId", vm2, "NumStates", int64(2))},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, rowsOf(t, tt.pairs...)); diff != "" {
				t.Errorf("%q: rows (-want +got):\n%s", tt.pairs, diff)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		pairs []string
		param string
		pos   int
		msg   string
	}{
		{[]string{"$apply", "groupby(resourceId)"}, "$apply", 9, "expected the ( of the list of properties to group by, got 'resourceId'"},
		{[]string{"$apply", "groupby((foo))"}, "$apply", 10, "'foo' is not a property of policy states"},
		{[]string{"$apply", "groupby((resourceId, resourceid))"}, "$apply", 22, "'resourceid' is grouped by twice"},
		{[]string{"$apply", "groupby((policyDefinitionGroupNames))"}, "$apply", 10, "cannot be grouped by"},
		{[]string{"$apply", "groupby((resourceId), aggregate(resourceId with sum as x))"}, "$apply", 33, "expected $count, the only aggregate of policy states, got 'resourceId'"},
		{[]string{"$apply", "groupby((resourceId), aggregate($count as resourceId))"}, "$apply", 43, "'resourceId' is already a property of the rows"},
		{[]string{"$apply", "aggregate($count as and)"}, "$apply", 21, "'and' cannot name a count"},
		{[]string{"$apply", "aggregate($count n)"}, "$apply", 18, "expected as, got 'n'"},
		{[]string{"$apply", "groupby((resourceId))/filter(complianceState eq 'x')"}, "$apply", 30,
			"'complianceState' is not a property of the rows at this point of $apply (resourceId)"},
		{[]string{"$apply", "topcount(1)"}, "$apply", 1, "expected groupby, aggregate or filter, got 'topcount'"},
		{[]string{"$apply", "aggregate($count as n) filter(n gt 1)"}, "$apply", 24, "expected / or the end, got 'filter'"},
		{[]string{"$apply", "aggregate($count as n)/"}, "$apply", 24, "expected groupby, aggregate or filter, got the end"},
		{[]string{"$apply", "filter(n gt 1)"}, "$apply", 8, "'n' is not a property of policy states"},
		{[]string{"$apply", "groupby((resourceId))", "$select", "resourceId, complianceState"}, "$select", 13,
			"'complianceState' is not a property of the rows at this point of $apply (resourceId)"},
		{[]string{"$apply", "aggregate($count as n)", "$orderby", "count desc"}, "$orderby", 1, "'count' is not a property"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.pairs, " "), func(t *testing.T) {
			err := queryError(t, tt.pairs...)
			if err.Parameter != tt.param || err.Pos != tt.pos || !strings.Contains(err.Message, tt.msg) {
				t.Errorf("ParseQuery(%q) = %+v, want %s at %d: %s", tt.pairs, err, tt.param, tt.pos, tt.msg)
			}
		})
	}
}
