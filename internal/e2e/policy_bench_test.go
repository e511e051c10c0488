package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// BenchmarkPolicyScan evaluates the compliance of 10,000 stored resources
// (ipPrefixes in 10 groups) against 100 assignments at the subscription:
// the periodic full scan (issue 9 target: ≤ 10 s).
//
//	go test ./internal/e2e -run '^$' -bench PolicyScan -benchtime 3x
func BenchmarkPolicyScan(b *testing.B) {
	cp := servertest.Start(b)
	sub := cp.Creds.SubscriptionID
	const groups, perGroup, assignments = 10, 1000, 100
	for g := range groups {
		group := fmt.Sprintf("scan-%d", g)
		if r, err := cp.Client.Do(b.Context(), http.MethodPut, "/subscriptions/"+sub+"/resourceGroups/"+group+"?api-version=2021-04-01",
			map[string]any{"location": "local"}); err != nil || r.Status >= 300 {
			b.Fatalf("group: %v %v", r, err)
		}
		for i := range perGroup {
			id, _ := arm.ParseID(fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p%d", sub, group, i))
			if _, err := cp.Resources.Upsert(b.Context(), id, func(r *resource.Resource, _ bool) error {
				r.Location = "local"
				r.Properties = map[string]any{"provisioningState": "Succeeded", "ipPrefixRules": []any{map[string]any{
					"action": "Permit", "sequenceNumber": i + 1, "networkPrefix": "10.0.0.0/8", "condition": "EqualTo", "subnetMaskLength": "8"}}}
				if i%3 == 0 {
					r.Tags = map[string]string{"env": "prod"}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	scope := "/subscriptions/" + sub
	for name, rule := range map[string]string{
		"scan-env":   `{"if":{"allOf":[{"field":"type","equals":"Microsoft.ManagedNetworkFabric/ipPrefixes"},{"field":"tags['env']","exists":"false"}]},"then":{"effect":"audit"}}`,
		"scan-rules": `{"if":{"count":{"field":"Microsoft.ManagedNetworkFabric/ipPrefixes/ipPrefixRules[*]","where":{"field":"Microsoft.ManagedNetworkFabric/ipPrefixes/ipPrefixRules[*].action","equals":"Deny"}},"greater":0},"then":{"effect":"audit"}}`,
	} {
		r, err := cp.Client.Do(b.Context(), http.MethodPut, scope+"/providers/Microsoft.Authorization/policyDefinitions/"+name+"?api-version=2021-06-01",
			map[string]any{"properties": map[string]any{"mode": "Indexed", "policyRule": json.RawMessage(rule)}})
		if err != nil || r.Status >= 300 {
			b.Fatalf("definition %s: %v %v", name, r, err)
		}
	}
	for i := range assignments {
		def := []string{"scan-env", "scan-rules"}[i%2]
		r, err := cp.Client.Do(b.Context(), http.MethodPut, fmt.Sprintf("%s/providers/Microsoft.Authorization/policyAssignments/scan-%d?api-version=2021-06-01", scope, i),
			map[string]any{"properties": map[string]any{"policyDefinitionId": scope + "/providers/Microsoft.Authorization/policyDefinitions/" + def}})
		if err != nil || r.Status >= 300 {
			b.Fatalf("assignment %d: %v %v", i, r, err)
		}
	}
	for b.Loop() {
		n, err := cp.Policies.Scan(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if n < groups*perGroup {
			b.Fatalf("scanned %d resources, want at least %d", n, groups*perGroup)
		}
	}
}
