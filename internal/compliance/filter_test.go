package compliance_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFilter(t *testing.T) {
	locs := []string{"vm1/loc", "vm2/loc", "sa1/loc"}
	tags := []string{"vm1/tag:env", "vm1/tag:owner", "vm2/tag:env", "vm2/tag:owner", "sa1/tag:env", "sa1/tag:owner"}
	tests := []struct {
		filter string
		want   []string
	}{
		{"", []string{"vm1/loc", "vm1/tag:env", "vm1/tag:owner", "vm2/loc", "vm2/tag:env", "vm2/tag:owner", "sa1/loc", "sa1/tag:env", "sa1/tag:owner"}},
		// eq and ne, strings ignoring case
		{"complianceState eq 'NonCompliant'", []string{"vm1/loc", "vm1/tag:owner", "vm2/tag:env"}},
		{"ComplianceState EQ 'noncompliant'", []string{"vm1/loc", "vm1/tag:owner", "vm2/tag:env"}},
		{"policyDefinitionAction ne 'audit'", locs},
		{"'deny' eq PolicyDefinitionAction", locs},
		// order operators on strings, unquoted, quoted and datetime'' timestamps
		{"resourceGroup gt 'RG1'", []string{"sa1/loc", "sa1/tag:env", "sa1/tag:owner"}},
		{"resourceGroup ge 'rg2'", []string{"sa1/loc", "sa1/tag:env", "sa1/tag:owner"}},
		{"resourceGroup lt 'rg2' and policyAssignmentName le 'loc'", []string{"vm1/loc", "vm2/loc"}},
		{"timestamp gt 2026-08-01T10:30:00Z", []string{"vm1/loc", "vm1/tag:env", "vm1/tag:owner"}},
		{"Timestamp ge datetime'2026-08-01T10:00:00Z'", []string{"vm1/loc", "vm1/tag:env", "vm1/tag:owner", "vm2/loc", "vm2/tag:env", "vm2/tag:owner"}},
		{"timestamp lt '2026-08-01T10:00:00Z'", []string{"sa1/loc", "sa1/tag:env", "sa1/tag:owner"}},
		{"timestamp le 2026-08-01T10:00:00.000Z and timestamp ge 2026-08-01T11:00:00+01:00", []string{"vm2/loc", "vm2/tag:env", "vm2/tag:owner"}},
		{"timestamp eq 2026-08-01T11:00:00Z", []string{"vm1/loc", "vm1/tag:env", "vm1/tag:owner"}},
		// Booleans: isCompliant is complianceState eq 'Compliant'
		{"isCompliant eq true", []string{"vm1/tag:env", "vm2/loc", "vm2/tag:owner", "sa1/loc"}},
		{"IsCompliant", []string{"vm1/tag:env", "vm2/loc", "vm2/tag:owner", "sa1/loc"}},
		{"not isCompliant and policyAssignmentName eq 'tag'", []string{"vm1/tag:owner", "vm2/tag:env", "sa1/tag:env", "sa1/tag:owner"}},
		{"IsCompliant eq false and (PolicyDefinitionAction eq 'audit' or PolicyDefinitionAction eq 'deny')",
			[]string{"vm1/loc", "vm1/tag:owner", "vm2/tag:env", "sa1/tag:env", "sa1/tag:owner"}},
		// null, which an empty string is
		{"policySetDefinitionId eq null", locs},
		{"policySetDefinitionId ne null", tags},
		{"policyDefinitionReferenceId eq ''", locs},
		// in
		{"complianceState in ('Exempt', 'unknown')", []string{"sa1/tag:env", "sa1/tag:owner"}},
		{"'cost' in policyDefinitionGroupNames", []string{"vm1/tag:env", "vm2/tag:env", "sa1/tag:env"}},
		{"'TAGS' IN PolicyDefinitionGroupNames", tags},
		// precedence: not over and over or; parentheses
		{"policyAssignmentName eq 'loc' or complianceState eq 'NonCompliant' and resourceGroup eq 'rg2'", locs},
		{"(policyAssignmentName eq 'loc' or complianceState eq 'NonCompliant') and resourceGroup eq 'rg2'", []string{"sa1/loc"}},
		{"not (resourceGroup eq 'rg1') and not not isCompliant", []string{"sa1/loc"}},
		{"((((resourceGroup eq 'rg2'))))", []string{"sa1/loc", "sa1/tag:env", "sa1/tag:owner"}},
		{"policyAssignmentName eq 'it''s'", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			got := keys(t, "$filter", tt.filter)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("$filter=%s: rows (-want +got):\n%s", tt.filter, diff)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	tests := []struct {
		filter string
		pos    int
		msg    string
	}{
		{"complianceState eq", 19, "expected a property or a literal, got the end"},
		{"foo eq 'x'", 1, "'foo' is not a property of policy states"},
		{"complianceState eq 'x", 20, "the string is not closed with a quote"},
		{"complianceState", 16, "expected eq, ne, gt, ge, lt, le or in after complianceState, got the end"},
		{"complianceState eq 'x' resourceId eq 'y'", 24, "expected and, or, or the end, got 'resourceId'"},
		{"(complianceState eq 'x'", 24, "expected and, or, or ), got the end"},
		{"complianceState eq 'x' and", 27, "expected a property or a literal, got the end"},
		{"complianceState eq 'x' and or", 28, "expected a property or a literal, got 'or'"},
		{"isCompliant eq 'true'", 16, "isCompliant (Edm.Boolean) cannot be compared with 'true' (Edm.String)"},
		{"resourceId eq 12", 15, "cannot be compared with 12 (Edm.Int64)"},
		{"timestamp gt 'yesterday'", 14, "'yesterday' is compared with timestamp but is not an ISO 8601 timestamp"},
		{"isCompliant gt false", 1, "gt does not order: isCompliant is of type Edm.Boolean"},
		{"resourceId lt null", 15, "lt does not order"},
		{"policyDefinitionGroupNames eq 'a'", 1, "policyDefinitionGroupNames is a collection: test it with 'value' in policyDefinitionGroupNames"},
		{"policyEvaluationDetails eq null", 1, "policyEvaluationDetails cannot be compared"},
		{"'a' in resourceId", 8, "expected a list in parentheses or a collection property after in, got 'resourceId'"},
		{"resourceId in policyDefinitionGroupNames", 1, "what is in policyDefinitionGroupNames must be a quoted string, not resourceId"},
		{"complianceState in ('a', 1)", 26, "cannot be compared with 1"},
		{"complianceState in ('a' 'b')", 25, "expected , or ), got 'b'"},
		{"complianceState in (resourceId)", 21, "expected a literal in the list of in, got 'resourceId'"},
		{"resourceId # 'x'", 12, "unexpected character '#'"},
		{"timestamp gt 2026-13-01", 14, "'2026-13-01' is neither a number nor an ISO 8601 timestamp"},
		{"timestamp gt datetime'soon'", 14, "datetime'soon' is not an ISO 8601 timestamp"},
		{"groupby((resourceId))", 1, "'groupby' is not a property of policy states"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			err := queryError(t, "$filter", tt.filter)
			if err.Parameter != "$filter" || err.Pos != tt.pos || !strings.Contains(err.Message, tt.msg) {
				t.Errorf("ParseQuery($filter=%s) = %+v, want $filter at %d: %s", tt.filter, err, tt.pos, tt.msg)
			}
			if err.Code() != "InvalidFilterInQueryString" {
				t.Errorf("Code() = %s, want InvalidFilterInQueryString", err.Code())
			}
		})
	}
}
