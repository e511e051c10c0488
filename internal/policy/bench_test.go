package policy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/citadel-cloud/citadel/internal/policy"
)

// corpusAssignments assigns every definition of the corpus, with its
// default parameters or a first allowed value, over and over until there
// are n assignments.
func corpusAssignments(b *testing.B, n int) []*policy.Assignment {
	b.Helper()
	dir := corpus(b)
	aliases := corpusAliases(b)
	var defs []*policy.Definition
	for _, f := range jsonFiles(b, filepath.Join(dir, "policyDefinitions")) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		d, err := policy.ParseDefinition(data, aliases)
		if err != nil {
			b.Fatal(err)
		}
		defs = append(defs, d)
	}
	var out []*policy.Assignment
	for i := 0; len(out) < n; i++ {
		d := defs[i%len(defs)]
		params := map[string]any{}
		for name, p := range d.Parameters {
			if p.DefaultValue != nil {
				continue
			}
			params[name] = map[string]any{"String": "x", "Array": []any{"x"}, "Object": map[string]any{}, "Boolean": false,
				"Integer": int64(1), "Float": 1.0, "DateTime": "2026-01-01T00:00:00Z"}[p.Type]
			if p.AllowedValues != nil {
				params[name] = p.AllowedValues[0]
				if p.Type == "Array" {
					params[name] = []any{p.AllowedValues[0]}
				}
			}
		}
		a, err := policy.NewAssignment(fmt.Sprintf("/assignments/%d", len(out)), d, params)
		if err != nil {
			b.Fatalf("%s: %v", d.DisplayName, err)
		}
		out = append(out, a)
	}
	return out
}

// vm is a virtual machine create request, as the front door evaluates it.
func vm(i int) map[string]any {
	return map[string]any{
		"id":       fmt.Sprintf("/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm%d", i),
		"name":     fmt.Sprintf("vm%d", i),
		"type":     "Microsoft.Compute/virtualMachines",
		"location": []string{"eastus2", "westeurope", "northeurope"}[i%3],
		"tags":     map[string]any{"env": []string{"prod", "dev"}[i%2], "owner": "ops"},
		"identity": map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{
			"hardwareProfile": map[string]any{"vmSize": "Standard_D2s_v5"},
			"storageProfile": map[string]any{
				"imageReference": map[string]any{"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
				"osDisk":         map[string]any{"createOption": "FromImage", "managedDisk": map[string]any{"id": "/disks/os"}},
				"dataDisks":      []any{map[string]any{"lun": int64(0), "managedDisk": map[string]any{"id": "/disks/d0"}}},
			},
			"networkProfile": map[string]any{"networkInterfaces": []any{map[string]any{"id": "/nics/n0"}}},
		},
	}
}

var benchContext = &policy.Context{APIVersion: "2024-07-01",
	ResourceGroup: map[string]any{"name": "rg1", "location": "eastus2", "tags": map[string]any{"costCenter": "cc-1"}},
	Subscription:  map[string]any{"subscriptionId": "s1", "displayName": "dev"}}

// BenchmarkRequest500 is the policy step of one write: a request against
// 500 assignments, modify and append then the rest (target: well under
// 1 ms at the 99th percentile).
func BenchmarkRequest500(b *testing.B) {
	assignments := corpusAssignments(b, 500)
	body := vm(1)
	for b.Loop() {
		policy.EvaluateRequest(assignments, body, benchContext)
	}
}

// BenchmarkScan10kx100 is a compliance scan: 10,000 resources against 100
// assignments (target: 10 s).
func BenchmarkScan10kx100(b *testing.B) {
	assignments := corpusAssignments(b, 100)
	resources := make([]map[string]any, 10_000)
	for i := range resources {
		resources[i] = vm(i)
	}
	for b.Loop() {
		for _, res := range resources {
			for _, a := range assignments {
				a.Evaluate(res, benchContext)
			}
		}
	}
}

// BenchmarkRequestBenchAPI is the policy work of `citadel bench api
// --policy-assignments 500` on an ipPrefix PUT: 500 assignments of its
// three definitions, 333 of them deny rules that read the resource.
// /request is the request path's step, /compliance the evaluation of the
// written resource against every assignment that follows each write.
func BenchmarkRequestBenchAPI(b *testing.B) {
	aliases := policy.NewAliases(policy.CitadelAliases())
	rules := []string{
		`{"if":{"allOf":[{"field":"type","equals":"Microsoft.ManagedNetworkFabric/ipPrefixes"},{"field":"tags['env']","exists":"false"}]},"then":{"effect":"audit"}}`,
		`{"if":{"allOf":[{"field":"type","equals":"Microsoft.ManagedNetworkFabric/ipPrefixes"},` +
			`{"count":{"field":"Microsoft.ManagedNetworkFabric/ipPrefixes/ipPrefixRules[*]","where":{"field":"Microsoft.ManagedNetworkFabric/ipPrefixes/ipPrefixRules[*].sequenceNumber","greater":4000000000}},"greater":0}]},"then":{"effect":"deny"}}`,
		`{"if":{"allOf":[{"field":"location","exists":true},{"not":{"field":"location","in":["local","global"]}}]},"then":{"effect":"deny"}}`,
	}
	var defs []*policy.Definition
	for _, rule := range rules {
		d, err := policy.ParseDefinition([]byte(`{"properties":{"mode":"All","policyRule":`+rule+`}}`), aliases)
		if err != nil {
			b.Fatal(err)
		}
		defs = append(defs, d)
	}
	var all, enforced []*policy.Assignment
	for i := range 500 {
		a, err := policy.NewAssignment(fmt.Sprintf("/assignments/%d", i), defs[i%3], nil)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, a)
		if i%3 != 0 { // the request path evaluates the effects that can refuse or change it
			enforced = append(enforced, a)
		}
	}
	body := map[string]any{"id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/p1",
		"name": "p1", "type": "Microsoft.ManagedNetworkFabric/ipPrefixes", "location": "local", "properties": map[string]any{"ipPrefixRules": []any{
			map[string]any{"action": "Permit", "sequenceNumber": float64(7), "networkPrefix": "10.0.0.0/8", "condition": "Range", "subnetMaskLength": "16-24"},
		}}}
	b.Run("request", func(b *testing.B) {
		for b.Loop() {
			if d := policy.EvaluateRequest(enforced, body, benchContext); len(d.Denied()) != 0 {
				b.Fatal("denied")
			}
		}
	})
	b.Run("compliance", func(b *testing.B) {
		for b.Loop() {
			if each := policy.EvaluateEach(all, body, benchContext); each[0][0].State != policy.NonCompliant {
				b.Fatal("the audit is not NonCompliant")
			}
		}
	})
}
