package compliance_test

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/compliance"
)

// now is when every test asks.
var now = time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

const (
	sub      = "/subscriptions/00000000-0000-0000-0000-000000000001"
	endpoint = "https://citadel.test" + sub + "/providers/Microsoft.PolicyInsights/policyStates"
	loc      = sub + "/providers/Microsoft.Authorization/policyAssignments/loc"
	tag      = sub + "/providers/Microsoft.Authorization/policyAssignments/tag"
)

// fixture is three resources evaluated against two assignments: loc, of
// the deny definition allowed-locations, and tag, of an initiative whose
// members owner (group tags) and env (groups tags and cost) audit. vm3 was
// evaluated 30 hours ago, out of the default window.
//
//	        loc           tag/owner     tag/env
//	vm1     NonCompliant  NonCompliant  Compliant     an hour ago
//	vm2     Compliant     Compliant     NonCompliant  two hours ago
//	sa1     Compliant     Exempt        Unknown       three hours ago
//	vm3     NonCompliant                              30 hours ago
func fixture() []compliance.State {
	res := func(rg, typ, name string) string {
		return sub + "/resourceGroups/" + rg + "/providers/" + typ + "/" + name
	}
	vm1 := res("rg1", "Microsoft.Compute/virtualMachines", "vm1")
	vm2 := res("rg1", "Microsoft.Compute/virtualMachines", "vm2")
	sa1 := res("rg2", "Microsoft.Storage/storageAccounts", "sa1")
	vm3 := res("rg1", "Microsoft.Compute/virtualMachines", "vm3")
	locState := func(id string, age time.Duration, state string) compliance.State {
		return compliance.State{
			Timestamp: now.Add(-age), ResourceID: id, SubscriptionID: sub[len("/subscriptions/"):],
			ResourceGroup: strings.Split(id, "/")[4], ResourceType: path.Dir(strings.SplitN(id, "/providers/", 2)[1]),
			ResourceLocation: "local", PolicyAssignmentID: loc, PolicyAssignmentName: "loc", PolicyAssignmentScope: sub,
			PolicyDefinitionID:     "/providers/Microsoft.Authorization/policyDefinitions/allowed-locations",
			PolicyDefinitionName:   "allowed-locations",
			PolicyDefinitionAction: "deny", ComplianceState: state,
		}
	}
	tagState := func(id string, age time.Duration, ref string, groups []string, state string) compliance.State {
		s := locState(id, age, state)
		s.PolicyAssignmentID, s.PolicyAssignmentName = tag, "tag"
		s.PolicyDefinitionID = "/providers/Microsoft.Authorization/policyDefinitions/require-" + ref
		s.PolicyDefinitionName = "require-" + ref
		s.PolicyDefinitionAction = "audit"
		s.PolicySetDefinitionID = sub + "/providers/Microsoft.Authorization/policySetDefinitions/tagging"
		s.PolicySetDefinitionName = "tagging"
		s.PolicyDefinitionReferenceID = ref
		s.PolicyDefinitionGroupNames = groups
		return s
	}
	owner, env := []string{"tags"}, []string{"tags", "cost"}
	return []compliance.State{
		locState(vm1, time.Hour, compliance.NonCompliant),
		tagState(vm1, time.Hour, "owner", owner, compliance.NonCompliant),
		tagState(vm1, time.Hour, "env", env, compliance.Compliant),
		locState(vm2, 2*time.Hour, compliance.Compliant),
		tagState(vm2, 2*time.Hour, "owner", owner, compliance.Compliant),
		tagState(vm2, 2*time.Hour, "env", env, compliance.NonCompliant),
		locState(sa1, 3*time.Hour, compliance.Compliant),
		tagState(sa1, 3*time.Hour, "owner", owner, compliance.Exempt),
		tagState(sa1, 3*time.Hour, "env", env, compliance.Unknown),
		locState(vm3, 30*time.Hour, compliance.NonCompliant),
	}
}

// params builds query parameters from name, value pairs, with the
// api-version az sends.
func params(pairs ...string) url.Values {
	v := url.Values{"api-version": {"2019-10-01"}}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	return v
}

// query parses parameters that must parse.
func query(t *testing.T, pairs ...string) *compliance.Query {
	t.Helper()
	q, err := compliance.ParseQuery(params(pairs...))
	if err != nil {
		t.Fatalf("ParseQuery(%q) = %v", pairs, err)
	}
	q.Endpoint = endpoint
	return q
}

// keys runs the query over the fixture and names each state row
// resource/assignment[:reference], in the order of the page.
func keys(t *testing.T, pairs ...string) []string {
	t.Helper()
	page := query(t, pairs...).Results(fixture(), now)
	out := []string{}
	for _, r := range page.Rows {
		f := fields(r)
		k := path.Base(f["resourceId"].(string)) + "/" + f["policyAssignmentName"].(string)
		if ref, ok := f["policyDefinitionReferenceId"].(string); ok {
			k += ":" + ref
		}
		out = append(out, k)
	}
	return out
}

// fields maps a row's names to its values.
func fields(r compliance.Row) map[string]any {
	m := map[string]any{}
	for _, f := range r {
		m[f.Name] = f.Value
	}
	return m
}

// names lists a row's names in order.
func names(r compliance.Row) []string {
	var out []string
	for _, f := range r {
		out = append(out, f.Name)
	}
	return out
}

// queryError parses parameters that must not parse, and returns the error.
func queryError(t *testing.T, pairs ...string) *compliance.QueryError {
	t.Helper()
	_, err := compliance.ParseQuery(params(pairs...))
	qe, ok := errors.AsType[*compliance.QueryError](err)
	if !ok {
		t.Fatalf("ParseQuery(%q) = %v, want a *QueryError", pairs, err)
	}
	return qe
}
