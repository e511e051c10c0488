package compliance_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/compliance"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// d lists compliance details from state, count pairs.
func d(pairs ...any) []compliance.ComplianceDetail {
	out := []compliance.ComplianceDetail{}
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, compliance.ComplianceDetail{ComplianceState: pairs[i].(string), Count: pairs[i+1].(int)})
	}
	return out
}

func TestSummarize(t *testing.T) {
	set := sub + "/providers/Microsoft.Authorization/policySetDefinitions/tagging"
	def := func(name string) string { return "/providers/Microsoft.Authorization/policyDefinitions/" + name }
	results := func(ncr, ncp int, resources, policies, groups []compliance.ComplianceDetail) compliance.SummaryResults {
		return compliance.SummaryResults{NonCompliantResources: ncr, NonCompliantPolicies: ncp,
			ResourceDetails: resources, PolicyDetails: policies, PolicyGroupDetails: groups}
	}
	tagSummary := compliance.AssignmentSummary{
		PolicyAssignmentID: tag, PolicySetDefinitionID: set,
		// vm1 and vm2 are non-compliant with a member each; sa1 is exempt
		// from owner and unknown to env.
		Results: results(2, 2, d("exempt", 1, "noncompliant", 2), d("noncompliant", 2), d("noncompliant", 2)),
		PolicyDefinitions: []compliance.DefinitionSummary{{
			PolicyDefinitionID: def("require-env"), PolicyDefinitionReferenceID: "env", PolicyDefinitionGroupNames: []string{"tags", "cost"}, Effect: "audit",
			Results: results(1, 1, d("compliant", 1, "noncompliant", 1, "unknown", 1), d("noncompliant", 1), d("noncompliant", 2)),
		}, {
			PolicyDefinitionID: def("require-owner"), PolicyDefinitionReferenceID: "owner", PolicyDefinitionGroupNames: []string{"tags"}, Effect: "audit",
			Results: results(1, 1, d("compliant", 1, "exempt", 1, "noncompliant", 1), d("noncompliant", 1), d("noncompliant", 1)),
		}},
		PolicyGroups: []compliance.GroupSummary{{
			PolicyGroupName: "cost", Results: results(1, 1, d("compliant", 1, "noncompliant", 1, "unknown", 1), d("noncompliant", 1), d("noncompliant", 1)),
		}, {
			PolicyGroupName: "tags", Results: results(2, 2, d("exempt", 1, "noncompliant", 2), d("noncompliant", 2), d("noncompliant", 1)),
		}},
	}
	locSummary := compliance.AssignmentSummary{
		PolicyAssignmentID: loc,
		Results:            results(1, 1, d("compliant", 2, "noncompliant", 1), d("noncompliant", 1), d()),
		PolicyDefinitions: []compliance.DefinitionSummary{{
			PolicyDefinitionID: def("allowed-locations"), Effect: "deny",
			Results: results(1, 1, d("compliant", 2, "noncompliant", 1), d("noncompliant", 1), d()),
		}},
		PolicyGroups: []compliance.GroupSummary{},
	}
	tests := []struct {
		name  string
		pairs []string
		want  compliance.Summary
	}{{
		name: "everything",
		want: compliance.Summary{
			// vm1 and vm2 are non-compliant; sa1 is compliant with loc, which
			// weighs more than exempt and unknown.
			Results:           results(2, 3, d("compliant", 1, "noncompliant", 2), d("noncompliant", 2), d("noncompliant", 2)),
			PolicyAssignments: []compliance.AssignmentSummary{tagSummary, locSummary},
		},
	}, {
		name:  "$top keeps the assignments with the most non-compliant resources",
		pairs: []string{"$top", "1"},
		want: compliance.Summary{
			Results:           results(2, 3, d("compliant", 1, "noncompliant", 2), d("noncompliant", 2), d("noncompliant", 2)),
			PolicyAssignments: []compliance.AssignmentSummary{tagSummary},
		},
	}, {
		name:  "$filter",
		pairs: []string{"$filter", "policyDefinitionAction eq 'deny'", "$top", "5"},
		want: compliance.Summary{
			Results:           results(1, 1, d("compliant", 2, "noncompliant", 1), d("noncompliant", 1), d()),
			PolicyAssignments: []compliance.AssignmentSummary{locSummary},
		},
	}, {
		name:  "nothing in the window",
		pairs: []string{"$to", "2026-07-01T00:00:00Z"},
		want:  compliance.Summary{Results: results(0, 0, d(), d(), d()), PolicyAssignments: []compliance.AssignmentSummary{}},
	}}
	ignoreLinks := cmpopts.IgnoreFields(compliance.SummaryResults{}, "QueryResultsURI")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			states := fixture()
			// IDs ignore case: vm1's loc state again, spelled otherwise and
			// compliant, changes no count: vm1 stays non-compliant.
			again := states[0]
			again.ResourceID, again.PolicyAssignmentID = strings.ToUpper(again.ResourceID), strings.ToLower(again.PolicyAssignmentID)
			again.PolicyDefinitionID, again.ComplianceState = strings.ToUpper(again.PolicyDefinitionID), compliance.Compliant
			got := compliance.Summarize(append(states, again), query(t, tt.pairs...), now)
			tt.want.Context = endpoint + "/$metadata#summary"
			if diff := cmp.Diff(tt.want, got, ignoreLinks); diff != "" {
				t.Errorf("Summarize(%q) (-want +got):\n%s", tt.pairs, diff)
			}
		})
	}
}

// TestSummarizeLinks checks that each queryResultsUri lists the
// non-compliant states of its level.
func TestSummarizeLinks(t *testing.T) {
	q := query(t, "$filter", "policyAssignmentName eq 'tag' or resourceGroup eq 'rg2'")
	sum := compliance.Summarize(fixture(), q, now)
	check := func(link string, wantFilter string, wantRows int) {
		t.Helper()
		prefix := endpoint + "/latest/queryResults?api-version=2019-10-01&"
		if !strings.HasPrefix(link, prefix) {
			t.Fatalf("queryResultsUri %s does not start with %s", link, prefix)
		}
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		v := u.Query()
		if got := v.Get("$filter"); got != wantFilter {
			t.Errorf("queryResultsUri $filter = %s, want %s", got, wantFilter)
		}
		if v.Get("$from") != "2026-07-31T12:00:00Z" || v.Get("$to") != "2026-08-01T12:00:00Z" {
			t.Errorf("queryResultsUri window %s..%s", v.Get("$from"), v.Get("$to"))
		}
		follow, err := compliance.ParseQuery(v)
		if err != nil {
			t.Fatalf("ParseQuery(queryResultsUri) = %v", err)
		}
		if got := len(follow.Results(fixture(), now.AddDate(0, 1, 0)).Rows); got != wantRows {
			t.Errorf("queryResultsUri $filter=%s lists %d states, want %d", wantFilter, got, wantRows)
		}
	}
	user := "(policyAssignmentName eq 'tag' or resourceGroup eq 'rg2') and complianceState eq 'NonCompliant'"
	check(sum.Results.QueryResultsURI, user, 2)
	tagSummary := sum.PolicyAssignments[0]
	check(tagSummary.Results.QueryResultsURI, user+" and policyAssignmentId eq '"+tag+"'", 2)
	check(tagSummary.PolicyDefinitions[0].Results.QueryResultsURI, user+" and policyAssignmentId eq '"+tag+"'"+
		" and policyDefinitionId eq '/providers/Microsoft.Authorization/policyDefinitions/require-env' and policyDefinitionReferenceId eq 'env'", 1)
	check(tagSummary.PolicyGroups[1].Results.QueryResultsURI, user+" and policyAssignmentId eq '"+tag+"' and 'tags' in policyDefinitionGroupNames", 2)
}

func TestSummaryJSON(t *testing.T) {
	q := query(t, "$filter", "policyAssignmentName eq 'loc'")
	data, err := json.Marshal(compliance.Summarize(fixture(), q, now))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Context string `json:"@odata.context"`
		Count   int    `json:"@odata.count"`
		Value   []struct {
			ID      *string `json:"@odata.id"`
			Context string  `json:"@odata.context"`
			Results struct {
				NonCompliantResources int `json:"nonCompliantResources"`
			} `json:"results"`
			PolicyAssignments []struct {
				PolicySetDefinitionID string `json:"policySetDefinitionId"`
				PolicyDefinitions     []map[string]any
			} `json:"policyAssignments"`
		} `json:"value"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatal(err)
	}
	if body.Count != 1 || len(body.Value) != 1 || body.Value[0].ID != nil || body.Value[0].Context != endpoint+"/$metadata#summary/$entity" ||
		body.Value[0].Results.NonCompliantResources != 1 || len(body.Value[0].PolicyAssignments) != 1 {
		t.Fatalf("summary JSON = %s", data)
	}
	if _, ok := body.Value[0].PolicyAssignments[0].PolicyDefinitions[0]["policyDefinitionGroupNames"]; ok {
		t.Errorf("a definition without groups has policyDefinitionGroupNames: %s", data)
	}
}
