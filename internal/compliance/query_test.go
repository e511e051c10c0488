package compliance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/compliance"
	"github.com/google/go-cmp/cmp"
)

func TestSelect(t *testing.T) {
	rows := rowsOf(t, "$select", "ResourceId,  COMPLIANCESTATE ,timestamp", "$top", "1")
	want := compliance.Row{
		{Name: "resourceId", Value: sub + "/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"},
		{Name: "complianceState", Value: "NonCompliant"},
		{Name: "timestamp", Value: "2026-08-01T11:00:00Z"},
	}
	if len(rows) != 1 {
		t.Fatalf("rows = %d, want 1", len(rows))
	}
	if diff := cmp.Diff(want, rows[0]); diff != "" {
		t.Errorf("$select row (-want +got):\n%s", diff)
	}
}

func TestFullRow(t *testing.T) {
	want := []string{"timestamp", "resourceId", "policyAssignmentId", "policyDefinitionId", "effectiveParameters", "isCompliant",
		"subscriptionId", "resourceType", "resourceLocation", "resourceGroup", "resourceTags", "policyAssignmentName",
		"policyAssignmentOwner", "policyAssignmentParameters", "policyAssignmentScope", "policyDefinitionName",
		"policyDefinitionAction", "policyDefinitionCategory", "policySetDefinitionId", "policySetDefinitionName",
		"policySetDefinitionOwner", "policySetDefinitionCategory", "policySetDefinitionParameters", "managementGroupIds",
		"policyDefinitionReferenceId", "complianceState", "policyDefinitionGroupNames", "policyDefinitionVersion",
		"policySetDefinitionVersion", "policyAssignmentVersion"}
	rows := rowsOf(t, "$top", "1")
	if diff := cmp.Diff(want, names(rows[0])); diff != "" {
		t.Errorf("properties of a state (-want +got):\n%s", diff)
	}
	f := fields(rows[0])
	for name, v := range map[string]any{"isCompliant": false, "resourceType": "Microsoft.Compute/virtualMachines",
		"policySetDefinitionId": nil, "policyDefinitionGroupNames": []string{}, "policyDefinitionAction": "deny"} {
		if !cmp.Equal(f[name], v) {
			t.Errorf("%s = %#v, want %#v", name, f[name], v)
		}
	}

	// $expand adds policyEvaluationDetails, at Azure's place.
	states := fixture()
	details := &compliance.EvaluationDetails{EvaluatedExpressions: []compliance.ExpressionDetails{{
		Result: "True", ExpressionKind: "Field", Expression: "location", Path: "location",
		ExpressionValue: "local", TargetValue: []any{"eastus"}, Operator: "NotIn"}}}
	states[0].PolicyEvaluationDetails = details
	page := query(t, "$expand", "policyEvaluationDetails", "$top", "1").Results(states, now)
	got := names(page.Rows[0])
	if got[26] != "policyEvaluationDetails" || len(got) != len(want)+1 || fields(page.Rows[0])["policyEvaluationDetails"] != details {
		t.Errorf("$expand=policyEvaluationDetails: properties %v", got)
	}
}

func TestOrderBy(t *testing.T) {
	tests := []struct {
		orderBy string
		want    []string
	}{
		// desc is Azure's default direction
		{"timestamp asc, resourceId, policyDefinitionReferenceId asc",
			[]string{"sa1/loc", "sa1/tag:env", "sa1/tag:owner", "vm2/loc", "vm2/tag:env", "vm2/tag:owner", "vm1/loc", "vm1/tag:env", "vm1/tag:owner"}},
		{"PolicyDefinitionReferenceId DESC,resourceGroup asc",
			[]string{"vm1/tag:owner", "vm2/tag:owner", "sa1/tag:owner", "vm1/tag:env", "vm2/tag:env", "sa1/tag:env", "vm1/loc", "vm2/loc", "sa1/loc"}},
		// ties fall back to resource, assignment and reference
		{"complianceState", []string{"sa1/tag:env", "vm1/loc", "vm1/tag:owner", "vm2/tag:env", "sa1/tag:owner", "vm1/tag:env", "vm2/loc", "vm2/tag:owner", "sa1/loc"}},
		{"isCompliant asc, policyAssignmentName", []string{"vm1/tag:owner", "vm2/tag:env", "sa1/tag:env", "sa1/tag:owner", "vm1/loc",
			"vm1/tag:env", "vm2/tag:owner", "vm2/loc", "sa1/loc"}},
	}
	for _, tt := range tests {
		t.Run(tt.orderBy, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, keys(t, "$orderby", tt.orderBy)); diff != "" {
				t.Errorf("$orderby=%s (-want +got):\n%s", tt.orderBy, diff)
			}
		})
	}
}

func TestTopAndPaging(t *testing.T) {
	all := keys(t)
	for _, tt := range []struct {
		top      string
		pageSize int
		want     []string
	}{
		{"", 1000, all},
		{"", 2, all},
		{"", 4, all},
		{"", 9, all},
		{"5", 2, all[:5]},
		{"5", 5, all[:5]},
		{"0", 2, []string{}},
		{"100", 1, all},
	} {
		t.Run(fmt.Sprintf("top=%s,pageSize=%d", tt.top, tt.pageSize), func(t *testing.T) {
			pairs := []string{"$orderby", "resourceId asc"}
			if tt.top != "" {
				pairs = append(pairs, "$top", tt.top)
			}
			var got []string
			var pages int
			for token := ""; ; pages++ {
				q := query(t, append(pairs, "$skiptoken", token)...)
				q.PageSize = tt.pageSize
				page := q.Results(fixture(), now)
				if len(page.Rows) > tt.pageSize {
					t.Fatalf("page %d has %d rows, more than %d", pages, len(page.Rows), tt.pageSize)
				}
				for _, r := range page.Rows {
					f := fields(r)
					k := f["resourceId"].(string)[strings.LastIndex(f["resourceId"].(string), "/")+1:] + "/" + f["policyAssignmentName"].(string)
					if ref, ok := f["policyDefinitionReferenceId"].(string); ok {
						k += ":" + ref
					}
					got = append(got, k)
				}
				if page.NextLink == "" {
					break
				}
				if !strings.HasPrefix(page.NextLink, endpoint+"/latest/queryResults?") {
					t.Fatalf("NextLink = %s, not queryResults of %s", page.NextLink, endpoint)
				}
				u, err := url.Parse(page.NextLink)
				if err != nil {
					t.Fatal(err)
				}
				if u.Query().Get("api-version") != "2019-10-01" || u.Query().Get("$top") != tt.top {
					t.Errorf("NextLink %s lost the query's parameters", page.NextLink)
				}
				token = u.Query().Get("$skiptoken")
			}
			if diff := cmp.Diff(tt.want, append([]string{}, got...)); diff != "" {
				t.Errorf("$top=%s in pages of %d: rows (-want +got):\n%s", tt.top, tt.pageSize, diff)
			}
		})
	}
}

func TestSkipTokenKeepsTheWindow(t *testing.T) {
	q := query(t)
	q.PageSize = 5
	first := q.Results(fixture(), now)
	u, _ := url.Parse(first.NextLink)
	next := query(t, "$skiptoken", u.Query().Get("$skiptoken"))
	// A day later the fixture's states are out of the default window; the
	// second page still reads the first page's window.
	if rows := next.Results(fixture(), now.AddDate(0, 0, 1)).Rows; len(rows) != 4 {
		t.Errorf("second page a day later has %d rows, want 4", len(rows))
	}
	// A token belongs to its query.
	err := queryError(t, "$filter", "isCompliant", "$skiptoken", u.Query().Get("$skiptoken"))
	if err.Parameter != "$skiptoken" || err.Code() != "InvalidSkipTokenInQueryString" {
		t.Errorf("a token of another query: %+v", err)
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		pairs []string
		want  int
	}{
		{nil, 9},
		{[]string{"$from", "2026-07-30T00:00:00Z"}, 10},
		{[]string{"$from", "2026-07-30 00:00:00Z", "$to", "2026-07-31T12:00:00.000Z"}, 1},
		{[]string{"$from", "2026-08-01T09:00:00Z", "$to", "2026-08-01T10:00:00Z"}, 6},
		{[]string{"$to", "2026-08-01T10:30:00+00:00"}, 6},
		{[]string{"$from", "2026-08-01"}, 9},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.pairs, " "), func(t *testing.T) {
			if got := len(rowsOf(t, tt.pairs...)); got != tt.want {
				t.Errorf("%q: %d states, want %d", tt.pairs, got, tt.want)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	tests := []struct {
		pairs []string
		param string
		pos   int
		code  string
		msg   string
	}{
		{[]string{"$skip", "1"}, "$skip", 0, "BadRequest", "policy states take $filter"},
		{[]string{"$filter", "isCompliant", "$Filter", "isCompliant"}, "$filter", 0, "InvalidFilterInQueryString", "given more than once"},
		{[]string{"$top", "-1"}, "$top", 0, "InvalidTopInQueryString", "'-1' is not a whole number of 0 or more"},
		{[]string{"$top", "ten"}, "$top", 0, "InvalidTopInQueryString", "'ten' is not a whole number"},
		{[]string{"$from", "yesterday"}, "$from", 0, "InvalidFromInQueryString", "'yesterday' is not an ISO 8601 timestamp"},
		{[]string{"$to", "2026-02-30T00:00:00Z"}, "$to", 0, "InvalidToInQueryString", "not an ISO 8601 timestamp"},
		{[]string{"$from", "2026-08-02T00:00:00Z", "$to", "2026-08-01T00:00:00Z"}, "$from", 0, "InvalidFromInQueryString",
			"2026-08-02T00:00:00Z is after $to, 2026-08-01T00:00:00Z"},
		{[]string{"$expand", "PolicyEvaluationDetails, components"}, "$expand", 26, "InvalidExpandInQueryString",
			"'components' cannot be expanded"},
		{[]string{"$select", "resourceId,,timestamp"}, "$select", 12, "InvalidSelectInQueryString", "expected a property"},
		{[]string{"$select", "resourceId, ResourceID"}, "$select", 13, "InvalidSelectInQueryString", "'ResourceID' is selected twice"},
		{[]string{"$select", "name"}, "$select", 1, "InvalidSelectInQueryString", "'name' is not a property of policy states"},
		{[]string{"$orderby", "timestamp up"}, "$orderby", 11, "InvalidOrderByInQueryString", "expected asc or desc, got 'up'"},
		{[]string{"$orderby", "timestamp, timestamp asc"}, "$orderby", 12, "InvalidOrderByInQueryString", "'timestamp' is ordered by twice"},
		{[]string{"$orderby", "resourceId asc x"}, "$orderby", 16, "InvalidOrderByInQueryString", "expected , after the direction, got 'x'"},
		{[]string{"$orderby", "policyDefinitionGroupNames"}, "$orderby", 1, "InvalidOrderByInQueryString", "does not order"},
		{[]string{"$orderby", "resourceId,"}, "$orderby", 12, "InvalidOrderByInQueryString", "expected a property"},
		{[]string{"$skiptoken", "!!"}, "$skiptoken", 0, "InvalidSkipTokenInQueryString", "not a skip token of this query"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.pairs, " "), func(t *testing.T) {
			err := queryError(t, tt.pairs...)
			if err.Parameter != tt.param || err.Pos != tt.pos || err.Code() != tt.code || !strings.Contains(err.Message, tt.msg) {
				t.Errorf("ParseQuery(%q) = %+v (%s), want %s at %d (%s): %s", tt.pairs, err, err.Code(), tt.param, tt.pos, tt.code, tt.msg)
			}
		})
	}
}

func TestPageJSON(t *testing.T) {
	q := query(t, "$select", "resourceId, isCompliant", "$filter", "resourceGroup eq 'rg2'", "$orderby", "policyAssignmentId asc")
	q.PageSize = 2
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as the server writes it: & stays & in the link
	if err := enc.Encode(q.Results(fixture(), now)); err != nil {
		t.Fatal(err)
	}
	data := bytes.TrimSpace(b.Bytes())
	skipToken := strings.Split(strings.SplitAfter(string(data), "%24skiptoken=")[1], "&")[0]
	sa1 := sub + "/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/sa1"
	want := `{"@odata.context":"` + endpoint + `/$metadata#latest","@odata.count":2,"value":[` +
		`{"@odata.id":null,"@odata.context":"` + endpoint + `/$metadata#latest/$entity","resourceId":"` + sa1 + `","isCompliant":true},` +
		`{"@odata.id":null,"@odata.context":"` + endpoint + `/$metadata#latest/$entity","resourceId":"` + sa1 + `","isCompliant":false}],` +
		`"@odata.nextLink":"` + endpoint + `/latest/queryResults?%24filter=resourceGroup+eq+%27rg2%27&%24orderby=policyAssignmentId+asc` +
		`&%24select=resourceId%2C+isCompliant&%24skiptoken=` + skipToken + `&api-version=2019-10-01"}`
	if string(data) != want {
		t.Errorf("page JSON:\n got %s\nwant %s", data, want)
	}

	// The default virtual resource names itself in the context and the link.
	q.Resource = "default"
	page := q.Results(fixture(), now)
	if page.Context != endpoint+"/$metadata#default" || !strings.HasPrefix(page.NextLink, endpoint+"/default/queryResults?") {
		t.Errorf("policyStates/default: context %s, next link %s", page.Context, page.NextLink)
	}

	// A state on its own is written with every property.
	state, err := json.Marshal(fixture()[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`"timestamp":"2026-08-01T11:00:00Z"`, `"isCompliant":false`, `"policyEvaluationDetails":null`,
		`"policyDefinitionGroupNames":["tags"]`, `"policyDefinitionReferenceId":"owner"`, `"effectiveParameters":null`} {
		if !strings.Contains(string(state), part) {
			t.Errorf("json.Marshal(state) = %s, want %s in it", state, part)
		}
	}
}
