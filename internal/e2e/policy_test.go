package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestPolicy drives Azure Policy with az 2.45: a custom deny definition
// and its assignment block `az resource create` with
// RequestDisallowedByPolicy (and the refusal is in the activity log); a
// modify assignment adds a tag to what is written, and a remediation adds
// it to what existed before; DoNotEnforce only reports; `az policy state
// list` shows the compliance of every resource.
func TestPolicy(t *testing.T) {
	requireAz(t)
	t.Parallel()
	cp := servertest.Start(t)
	az := newAzCLI(t, cp)
	c := cp.Creds
	sub := c.SubscriptionID
	const group, prefixType = "pol", "Microsoft.ManagedNetworkFabric/ipPrefixes"
	groupID := "/subscriptions/" + sub + "/resourceGroups/" + group
	prefixID := func(name string) string { return groupID + "/providers/" + prefixType + "/" + name }
	prefix := func(tags map[string]string) string {
		body := map[string]any{"location": "local", "properties": map[string]any{"ipPrefixRules": []any{map[string]any{
			"action": "Permit", "sequenceNumber": 10, "networkPrefix": "10.0.0.0/8", "condition": "EqualTo", "subnetMaskLength": "8"}}}}
		if tags != nil {
			body["tags"] = tags
		}
		b, _ := json.Marshal(body)
		return string(b)
	}
	create := func(name string, tags map[string]string) []string {
		return []string{"resource", "create", "-g", group, "-n", name, "--resource-type", prefixType, "--is-full-object", "-p", prefix(tags)}
	}
	stateOf := func(t *testing.T, id, assignment, want string) {
		t.Helper()
		waitPolicyState(t, az, group, id, assignment, want)
	}
	if !t.Run("login", func(t *testing.T) {
		az.login(t, c)
		az.ok(t, "group", "create", "-n", group, "-l", "local")
		az.ok(t, create("before", nil)...) // exists before any policy
	}) {
		t.FailNow()
	}

	t.Run("a definition that does not load is refused", func(t *testing.T) {
		az.fail(t, []string{"InvalidPolicyRule", "Microsoft.ManagedNetworkFabric/ipPrefixes/nosuchProperty"},
			"policy", "definition", "create", "-n", "broken", "--mode", "All", "--rules",
			`{"if":{"field":"Microsoft.ManagedNetworkFabric/ipPrefixes/nosuchProperty","equals":"x"},"then":{"effect":"deny"}}`)
	})

	t.Run("deny", func(t *testing.T) {
		az.ok(t, "policy", "definition", "create", "-n", "require-env-tag", "--mode", "Indexed",
			"--display-name", "Prefixes need an env tag", "--rules",
			`{"if":{"allOf":[{"field":"type","equals":"`+prefixType+`"},{"field":"tags['env']","exists":"false"}]},"then":{"effect":"[parameters('effect')]"}}`,
			"--params", `{"effect":{"type":"String","allowedValues":["Deny","Audit","Disabled"],"defaultValue":"Deny"}}`)
		az.ok(t, "policy", "assignment", "create", "-n", "require-env", "--policy", "require-env-tag", "-g", group)
		res := az.fail(t, []string{"RequestDisallowedByPolicy", "require-env", "require-env-tag"}, create("untagged", nil)...)
		_ = res
		az.ok(t, create("tagged", map[string]string{"env": "dev"})...)
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", prefixID("untagged"))

		var events []struct {
			Status        struct{ Value string } `json:"status"`
			OperationName struct{ Value string } `json:"operationName"`
			ResourceID    string                 `json:"resourceId"`
			Properties    map[string]string      `json:"properties"`
		}
		az.json(t, &events, "monitor", "activity-log", "list", "-g", group, "--offset", "1h")
		found := false
		for _, e := range events {
			if strings.EqualFold(e.ResourceID, prefixID("untagged")) && e.Status.Value == "Failed" &&
				strings.Contains(e.Properties["statusMessage"], "RequestDisallowedByPolicy") {
				found = true
			}
		}
		if !found {
			t.Errorf("no activity-log record of the refused write among %d events", len(events))
		}
		stateOf(t, prefixID("tagged"), "require-env", "Compliant")
		az.ok(t, "policy", "state", "trigger-scan", "-g", group)
		stateOf(t, prefixID("before"), "require-env", "NonCompliant")
	})

	t.Run("modify and remediation", func(t *testing.T) {
		az.ok(t, "policy", "definition", "create", "-n", "owner-tag", "--mode", "Indexed", "--rules",
			`{"if":{"allOf":[{"field":"type","equals":"`+prefixType+`"},{"field":"tags['owner']","exists":"false"}]},`+
				`"then":{"effect":"modify","details":{"roleDefinitionIds":["/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"],`+
				`"operations":[{"operation":"addOrReplace","field":"tags['owner']","value":"platform"}]}}}`)
		az.ok(t, "policy", "assignment", "create", "-n", "owner", "--policy", "owner-tag", "-g", group)
		az.ok(t, create("modified", map[string]string{"env": "dev"})...)
		var r struct{ Tags map[string]string }
		az.json(t, &r, "resource", "show", "--ids", prefixID("modified"))
		if r.Tags["owner"] != "platform" || r.Tags["env"] != "dev" {
			t.Errorf("tags after modify = %v, want owner=platform beside env=dev", r.Tags)
		}
		// "tagged" predates the assignment: a remediation fixes it.
		az.ok(t, "policy", "state", "trigger-scan", "-g", group)
		stateOf(t, prefixID("tagged"), "owner", "NonCompliant")
		// Debian's az 2.45 sends an empty body for "az policy remediation
		// create" (its SDK drops the properties), so the remediation goes
		// through az rest, as a user of that az would.
		az.ok(t, "rest", "--method", "put", "--url", groupID+"/providers/Microsoft.PolicyInsights/remediations/fix-owner?api-version=2021-10-01",
			"--body", `{"properties":{"policyAssignmentId":"`+groupID+`/providers/Microsoft.Authorization/policyAssignments/owner"}}`)
		// "before" has no env tag: re-writing it is refused by the deny
		// assignment, so the remediation fixes "tagged" and fails on it.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var rem struct {
				Properties struct {
					ProvisioningState string         `json:"provisioningState"`
					DeploymentStatus  map[string]int `json:"deploymentStatus"`
				} `json:"properties"`
			}
			az.json(t, &rem, "rest", "--method", "get", "--url", groupID+"/providers/Microsoft.PolicyInsights/remediations/fix-owner?api-version=2021-10-01")
			if st := rem.Properties.ProvisioningState; st == "Succeeded" || st == "Failed" {
				if st != "Failed" || rem.Properties.DeploymentStatus["successfulDeployments"] != 1 || rem.Properties.DeploymentStatus["failedDeployments"] != 1 {
					t.Errorf("remediation = %+v, want Failed with one resource remediated and one refused", rem.Properties)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("remediation = %+v, want it to end", rem.Properties)
			}
			time.Sleep(200 * time.Millisecond)
		}
		az.json(t, &r, "resource", "show", "--ids", prefixID("tagged"))
		if r.Tags["owner"] != "platform" {
			t.Errorf("tags after remediation = %v, want owner=platform", r.Tags)
		}
		stateOf(t, prefixID("tagged"), "owner", "Compliant")
	})

	t.Run("append and denyAction", func(t *testing.T) {
		az.ok(t, "policy", "definition", "create", "-n", "append-reviewed", "--mode", "Indexed", "--rules",
			`{"if":{"field":"type","equals":"`+prefixType+`"},"then":{"effect":"append","details":[{"field":"tags['reviewed']","value":"no"}]}}`)
		az.ok(t, "policy", "definition", "create", "-n", "keep-protected", "--mode", "Indexed", "--rules",
			`{"if":{"allOf":[{"field":"type","equals":"`+prefixType+`"},{"field":"tags['protect']","equals":"yes"}]},`+
				`"then":{"effect":"denyAction","details":{"actionNames":["delete"]}}}`)
		az.ok(t, "policy", "assignment", "create", "-n", "append-reviewed", "--policy", "append-reviewed", "-g", group)
		az.ok(t, "policy", "assignment", "create", "-n", "keep-protected", "--policy", "keep-protected", "-g", group)
		az.ok(t, create("protected", map[string]string{"env": "dev", "protect": "yes"})...)
		var r struct{ Tags map[string]string }
		az.json(t, &r, "resource", "show", "--ids", prefixID("protected"))
		if r.Tags["reviewed"] != "no" {
			t.Errorf("tags after append = %v, want reviewed=no", r.Tags)
		}
		az.fail(t, []string{"RequestDisallowedByPolicy", "keep-protected"}, "resource", "delete", "--verbose", "--ids", prefixID("protected"))
		az.ok(t, "resource", "show", "--ids", prefixID("protected"))
		az.ok(t, "policy", "assignment", "delete", "-n", "keep-protected", "-g", group)
		az.ok(t, "resource", "delete", "--ids", prefixID("protected"))
	})

	t.Run("do not enforce", func(t *testing.T) {
		az.ok(t, "policy", "assignment", "delete", "-n", "require-env", "-g", group)
		az.ok(t, "policy", "assignment", "create", "-n", "require-env-report", "--policy", "require-env-tag", "-g", group, "--enforcement-mode", "DoNotEnforce")
		az.ok(t, create("reported", nil)...)
		stateOf(t, prefixID("reported"), "require-env-report", "NonCompliant")
	})
}

// TestPolicyPack serves the corpus's built-in definitions as an offline
// policy pack, with Azure's alias list: az shows them as BuiltIn, and an
// assignment of Azure's own "Require a tag on resources" denies an
// untagged resource.
func TestPolicyPack(t *testing.T) {
	requireAz(t)
	t.Parallel()
	const corpus = "../../../shared/corpora/azure-policy"
	if _, err := os.Stat(corpus + "/policyDefinitions"); err != nil {
		msg := "the Azure Policy corpus is missing (shared/corpora/azure-policy): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cp := servertest.Start(t, func(c *server.Config) {
		c.PolicyPack, c.PolicyAliases = corpus+"/policyDefinitions", corpus+"/aliases/policy-aliases.csv.gz"
	})
	az := newAzCLI(t, cp)
	c := cp.Creds
	const requireTag = "871b6d14-10aa-478d-b590-94f262ecfa99"
	az.login(t, c)
	az.ok(t, "group", "create", "-n", "pack", "-l", "local")
	var def struct {
		ID         string `json:"id"`
		PolicyType string `json:"policyType"`
	}
	az.json(t, &def, "policy", "definition", "show", "-n", requireTag)
	if def.PolicyType != "BuiltIn" || def.ID != "/providers/Microsoft.Authorization/policyDefinitions/"+requireTag {
		t.Fatalf("built-in definition = %+v", def)
	}
	az.ok(t, "policy", "assignment", "create", "-n", "cost-center", "--policy", requireTag, "-g", "pack",
		"--params", `{"tagName":{"value":"costCenter"}}`)
	body := `{"location":"local","properties":{"ipPrefixRules":[{"action":"Permit","sequenceNumber":10,"networkPrefix":"10.0.0.0/8","condition":"EqualTo","subnetMaskLength":"8"}]}}`
	az.fail(t, []string{"RequestDisallowedByPolicy", requireTag}, "resource", "create", "-g", "pack", "-n", "untagged",
		"--resource-type", "Microsoft.ManagedNetworkFabric/ipPrefixes", "--is-full-object", "-p", body)
	az.ok(t, "resource", "create", "-g", "pack", "-n", "tagged", "--resource-type", "Microsoft.ManagedNetworkFabric/ipPrefixes",
		"--is-full-object", "-p", strings.Replace(body, `"location":"local"`, `"location":"local","tags":{"costCenter":"42"}`, 1))
}

// TestPolicyDeployIfNotExists: an assignment with a system-assigned
// identity, given Contributor on the group, deploys what its definition
// requires for every prefix written there (a "-backup" prefix), acting as
// that identity; without the role nothing is deployed, and the resource
// stays NonCompliant. az 2.45 creates the definition and the assignment.
func TestPolicyDeployIfNotExists(t *testing.T) {
	requireAz(t)
	t.Parallel()
	cp := servertest.Start(t)
	az := newAzCLI(t, cp)
	c := cp.Creds
	sub := c.SubscriptionID
	const group, prefixType = "dine", "Microsoft.ManagedNetworkFabric/ipPrefixes"
	groupID := "/subscriptions/" + sub + "/resourceGroups/" + group
	prefixID := func(name string) string { return groupID + "/providers/" + prefixType + "/" + name }
	rules := []prefixRule{{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.0.0.0/8", Condition: "EqualTo", SubnetMaskLength: "8"}}
	prefix, _ := json.Marshal(ipPrefix("local", rules))
	rule, _ := json.Marshal(map[string]any{
		"if": map[string]any{"allOf": []any{
			map[string]any{"field": "type", "equals": prefixType},
			map[string]any{"field": "name", "notLike": "*-backup"},
		}},
		"then": map[string]any{"effect": "deployIfNotExists", "details": map[string]any{
			"type":              prefixType,
			"name":              "[concat(field('name'), '-backup')]",
			"roleDefinitionIds": []string{"/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"},
			"deployment": map[string]any{"properties": map[string]any{
				"mode":       "incremental",
				"parameters": map[string]any{"name": map[string]any{"value": "[concat(field('name'), '-backup')]"}},
				"template": map[string]any{
					"$schema":        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
					"contentVersion": "1.0.0.0",
					"parameters":     map[string]any{"name": map[string]any{"type": "string"}},
					"resources": []any{map[string]any{
						"type": prefixType, "apiVersion": "2025-07-15", "name": "[parameters('name')]", "location": "[resourceGroup().location]",
						"properties": map[string]any{"ipPrefixRules": rules},
					}},
				},
			}},
		}},
	})
	waitFor := func(t *testing.T, id string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			r, err := cp.Client.Do(t.Context(), http.MethodGet, id+"?api-version=2025-07-15", nil)
			if err == nil && r.Status == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was not deployed: %v %v", id, r, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	rbacAzLogin(t, az, c.ClientID, c.ClientSecret, c.ARMEndpoint, c.TenantID, sub)
	az.ok(t, "group", "create", "-n", group, "-l", "local")
	az.ok(t, "policy", "definition", "create", "-n", "prefix-backup", "--mode", "Indexed", "--rules", string(rule))
	var assignment struct {
		Identity struct {
			Type        string `json:"type"`
			PrincipalID string `json:"principalId"`
			TenantID    string `json:"tenantId"`
		} `json:"identity"`
	}
	az.json(t, &assignment, "policy", "assignment", "create", "-n", "backups", "--policy", "prefix-backup", "-g", group,
		"--mi-system-assigned", "--location", "local")
	if assignment.Identity.Type != "SystemAssigned" || assignment.Identity.PrincipalID == "" || assignment.Identity.TenantID != c.TenantID {
		t.Fatalf("assignment identity = %+v, want SystemAssigned with a principal in tenant %s", assignment.Identity, c.TenantID)
	}

	bad, err := cp.Client.Do(t.Context(), http.MethodPut, groupID+"/providers/Microsoft.Authorization/policyAssignments/user-assigned?api-version=2021-06-01", map[string]any{
		"location": "local", "identity": map[string]any{"type": "UserAssigned"},
		"properties": map[string]any{"policyDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/policyDefinitions/prefix-backup"},
	})
	if err != nil || bad.Status != http.StatusBadRequest || !strings.Contains(string(bad.Body), `"target":"identity.type"`) {
		t.Errorf("PUT an assignment with a user-assigned identity = %v %v, want 400 naming identity.type", bad, err)
	}

	type event struct {
		Caller        string                 `json:"caller"`
		Status        struct{ Value string } `json:"status"`
		OperationName struct{ Value string } `json:"operationName"`
		ResourceID    string                 `json:"resourceId"`
		Properties    map[string]string      `json:"properties"`
	}
	// waitEvent waits for an activity-log record of the group that match
	// accepts.
	waitEvent := func(t *testing.T, what string, match func(e event) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			var events []event
			az.json(t, &events, "monitor", "activity-log", "list", "-g", group, "--offset", "1h")
			if slices.ContainsFunc(events, match) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no activity-log record of %s among %d events", what, len(events))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	const identityName = "policy assignment backups"

	// Without a role the identity may not deploy: its deployment is
	// refused, the prefix stays without its backup and NonCompliant.
	az.ok(t, "resource", "create", "-g", group, "-n", "early", "--resource-type", prefixType, "--is-full-object", "-p", string(prefix))
	waitEvent(t, "the identity's refused deployment", func(e event) bool {
		return e.Caller == identityName && e.Status.Value == "Failed" && e.OperationName.Value == "Microsoft.Resources/deployments/write" &&
			strings.Contains(e.Properties["statusMessage"], "AuthorizationFailed")
	})
	if r, err := cp.Client.Do(t.Context(), http.MethodGet, prefixID("early-backup")+"?api-version=2025-07-15", nil); err != nil || r.Status != http.StatusNotFound {
		t.Errorf("GET early-backup before the identity had a role = %v %v, want 404", r, err)
	}
	waitPolicyState(t, az, group, prefixID("early"), "backups", "NonCompliant")

	r, err := cp.Client.Do(t.Context(), http.MethodPut, groupID+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString()+"?api-version=2022-04-01", map[string]any{
		"properties": map[string]any{"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
			"principalId": assignment.Identity.PrincipalID, "principalType": "ServicePrincipal"},
	})
	if err != nil || r.Status >= 300 {
		t.Fatalf("role assignment for the identity: %v %v", r, err)
	}
	az.ok(t, "resource", "create", "-g", group, "-n", "web", "--resource-type", prefixType, "--is-full-object", "-p", string(prefix))
	waitFor(t, prefixID("web-backup"))

	// The deployment ran as the assignment's identity.
	var deployments []struct {
		Name       string `json:"name"`
		Properties struct {
			ProvisioningState string `json:"provisioningState"`
		} `json:"properties"`
	}
	az.json(t, &deployments, "deployment", "group", "list", "-g", group)
	if len(deployments) != 1 || !strings.HasPrefix(deployments[0].Name, "PolicyDeployment_") {
		t.Fatalf("deployments = %+v, want the policy's one", deployments)
	}
	waitEvent(t, "web-backup written by the assignment's identity", func(e event) bool {
		return strings.EqualFold(e.ResourceID, prefixID("web-backup")) && e.Caller == identityName
	})
	waitPolicyState(t, az, group, prefixID("web"), "backups", "Compliant")
}

// waitPolicyState waits until az policy state list shows the compliance
// of a resource under an assignment (named) as want.
func waitPolicyState(t *testing.T, az *azCLI, group, id, assignment, want string) {
	t.Helper()
	type state struct {
		ResourceID           string `json:"resourceId"`
		ComplianceState      string `json:"complianceState"`
		PolicyAssignmentName string `json:"policyAssignmentName"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var states []state
		az.json(t, &states, "policy", "state", "list", "-g", group)
		got := ""
		for _, s := range states {
			if strings.EqualFold(s.ResourceID, id) && s.PolicyAssignmentName == assignment {
				got = s.ComplianceState
			}
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("compliance of %s under %s = %q, want %s (states %+v)", id, assignment, got, want, states)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
