package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/servertest"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// deployTemplate builds a Citadel cluster: its manager, the cluster in
// the manager's custom location (secure properties: BMC passwords), and a
// copy loop of fabric ipPrefixes. It is JSON with comments, as az sends a
// template file verbatim.
const deployTemplate = `{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  // The cluster's properties carry BMC passwords.
  "parameters": {
    "managerName": {"type": "string", "defaultValue": "cm1"},
    "clusterName": {"type": "string"},
    "clusterProperties": {"type": "secureObject"},
    "fabricControllerId": {"type": "string"},
    "prefixCount": {"type": "int", "defaultValue": 2, "minValue": 1, "maxValue": 10}
  },
  "variables": {
    /* the custom location the manager creates */
    "customLocation": "[concat(resourceGroup().id, '/providers/Microsoft.ExtendedLocation/customLocations/', parameters('managerName'), '-clustermanager')]"
  },
  "resources": [
    {
      "type": "Microsoft.NetworkCloud/clusterManagers",
      "apiVersion": "2026-07-01",
      "name": "[parameters('managerName')]",
      "location": "[resourceGroup().location]",
      "properties": {"fabricControllerId": "[parameters('fabricControllerId')]"}
    },
    {
      "type": "Microsoft.NetworkCloud/clusters",
      "apiVersion": "2026-07-01",
      "name": "[parameters('clusterName')]",
      "location": "[resourceGroup().location]",
      "extendedLocation": {"name": "[variables('customLocation')]", "type": "CustomLocation"},
      "dependsOn": ["[resourceId('Microsoft.NetworkCloud/clusterManagers', parameters('managerName'))]"],
      "properties": "[parameters('clusterProperties')]"
    },
    {
      "type": "Microsoft.ManagedNetworkFabric/ipPrefixes",
      "apiVersion": "2025-07-15",
      "name": "[format('{0}-prefix-{1}', parameters('clusterName'), copyIndex())]",
      "location": "[resourceGroup().location]",
      "copy": {"name": "prefixes", "count": "[parameters('prefixCount')]"},
      "properties": {
        "ipPrefixRules": [{"action": "Permit", "sequenceNumber": 10, "networkPrefix": "[format('10.{0}.0.0/16', copyIndex())]", "condition": "EqualTo", "subnetMaskLength": "16"}]
      }
    },
  ],
  "outputs": {
    "clusterStatus": {"type": "string", "value": "[reference(parameters('clusterName')).detailedStatus]"},
    "customLocation": {"type": "string", "value": "[variables('customLocation')]"}
  }
}`

// TestDeployments drives ARM template deployments with az 2.45: validate,
// create (the resources created through the front door, in dependency
// order), show with the secure parameter hidden, the deployment's
// operations, a what-if of the same template (NoChange), a redeploy, and a
// deployer whose role does not cover one resource: refused before
// anything is created, naming the resource.
func TestDeployments(t *testing.T) {
	requireAz(t)
	t.Parallel()
	cp := servertest.Start(t)
	ncImage(t, cp.DataDir)
	cl := newNCCluster(t, cp, sim.Spec{Name: "dc1", ComputeRacks: 3, MachinesPerRack: 1}, nil, nil)
	az := newAzCLI(t, cp)
	c := cp.Creds
	sub := c.SubscriptionID
	group := "dep"
	groupID := "/subscriptions/" + sub + "/resourceGroups/" + group
	dir := t.TempDir()
	templateFile := filepath.Join(dir, "cluster.json")
	if err := os.WriteFile(templateFile, []byte(deployTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	params := map[string]any{"parameters": map[string]any{
		"clusterName":        map[string]any{"value": "dc1"},
		"clusterProperties":  map[string]any{"value": cl.body(sub, "")["properties"]},
		"fabricControllerId": map[string]any{"value": "/subscriptions/" + sub + "/resourceGroups/fabric/providers/Microsoft.ManagedNetworkFabric/networkFabricControllers/nfc1"},
	}}
	paramsFile := filepath.Join(dir, "params.json")
	b, _ := json.Marshal(params)
	if err := os.WriteFile(paramsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	must := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.Fatalf("step %q failed; the later steps depend on it", name)
		}
	}
	type deployment struct {
		Name       string `json:"name"`
		Properties struct {
			ProvisioningState string                         `json:"provisioningState"`
			Mode              string                         `json:"mode"`
			Parameters        map[string]map[string]any      `json:"parameters"`
			Outputs           map[string]struct{ Value any } `json:"outputs"`
			OutputResources   []struct{ ID string }          `json:"outputResources"`
			Error             any                            `json:"error"`
		} `json:"properties"`
	}
	clusterID := groupID + "/providers/Microsoft.NetworkCloud/clusters/dc1"
	prefixID := func(i string) string {
		return groupID + "/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/dc1-prefix-" + i
	}

	must("login", func(t *testing.T) {
		az.login(t, c)
		az.ok(t, "group", "create", "-n", group, "-l", "local")
	})

	must("validate", func(t *testing.T) {
		var v deployment
		az.json(t, &v, "deployment", "group", "validate", "-g", group, "-n", "d1", "--template-file", templateFile, "--parameters", "@"+paramsFile)
		if v.Properties.ProvisioningState != "Succeeded" {
			t.Errorf("validate = %+v", v)
		}
		az.fail(t, []string{"InvalidTemplate", "prefixCount"}, "deployment", "group", "validate", "-g", group, "-n", "d1",
			"--template-file", templateFile, "--parameters", "@"+paramsFile, "--parameters", "prefixCount=11")
	})

	must("create", func(t *testing.T) {
		var d deployment
		az.json(t, &d, "deployment", "group", "create", "-g", group, "-n", "d1", "--template-file", templateFile, "--parameters", "@"+paramsFile)
		if d.Properties.ProvisioningState != "Succeeded" {
			t.Fatalf("deployment = %+v", d)
		}
		if got := d.Properties.Outputs["clusterStatus"].Value; got != "PendingDeployment" {
			t.Errorf("output clusterStatus = %v, want PendingDeployment (the cluster's detailedStatus through reference())", got)
		}
		var ids []string
		for _, r := range d.Properties.OutputResources {
			ids = append(ids, strings.ToLower(r.ID))
		}
		for _, want := range []string{groupID + "/providers/Microsoft.NetworkCloud/clusterManagers/cm1", clusterID, prefixID("0"), prefixID("1")} {
			if !slices.Contains(ids, strings.ToLower(want)) {
				t.Errorf("outputResources %v lack %s", ids, want)
			}
		}
		var cluster ncMachine // the fields shared with machines: detailedStatus, extendedLocation
		az.json(t, &cluster, "resource", "show", "--ids", clusterID)
		if cluster.Properties.DetailedStatus != "PendingDeployment" || !strings.HasSuffix(cluster.ExtendedLocation.Name, "/customLocations/cm1-clustermanager") {
			t.Errorf("cluster = %+v", cluster)
		}
	})

	t.Run("show hides the secure parameter", func(t *testing.T) {
		var d deployment
		az.json(t, &d, "deployment", "group", "show", "-g", group, "-n", "d1")
		p := d.Properties.Parameters["clusterProperties"]
		if _, has := p["value"]; has || p["type"] != "SecureObject" {
			t.Errorf("parameters.clusterProperties = %v, want its type and no value", p)
		}
		if d.Properties.Parameters["prefixCount"] != nil && d.Properties.Parameters["clusterName"]["value"] != "dc1" {
			t.Errorf("parameters = %v", d.Properties.Parameters)
		}
	})

	t.Run("operations", func(t *testing.T) {
		var ops []struct {
			Properties struct {
				ProvisioningState string `json:"provisioningState"`
				TargetResource    struct {
					ID string `json:"id"`
				} `json:"targetResource"`
			} `json:"properties"`
		}
		az.json(t, &ops, "deployment", "operation", "group", "list", "-g", group, "-n", "d1")
		if len(ops) != 4 {
			t.Fatalf("%d operations, want 4: %+v", len(ops), ops)
		}
		for _, op := range ops {
			if op.Properties.ProvisioningState != "Succeeded" {
				t.Errorf("operation on %s: %s", op.Properties.TargetResource.ID, op.Properties.ProvisioningState)
			}
		}
	})

	t.Run("what-if of the same template changes nothing", func(t *testing.T) {
		var w struct {
			Status  string `json:"status"`
			Changes []struct {
				ResourceID string `json:"resourceId"`
				ChangeType string `json:"changeType"`
				Delta      []any  `json:"delta"`
			} `json:"changes"`
		}
		az.json(t, &w, "deployment", "group", "what-if", "-g", group, "-n", "d2", "--template-file", templateFile,
			"--parameters", "@"+paramsFile, "--no-pretty-print")
		inTemplate := 0
		for _, ch := range w.Changes {
			switch ch.ChangeType {
			case "NoChange":
				inTemplate++
			case "Ignore": // what the manager and cluster created: custom locations, racks, machines
			default:
				t.Errorf("what-if: %s %s %v", ch.ChangeType, ch.ResourceID, ch.Delta)
			}
		}
		if inTemplate != 4 {
			t.Errorf("what-if: %d NoChange, want the template's 4: %+v", inTemplate, w)
		}
		az.json(t, &w, "deployment", "group", "what-if", "-g", group, "-n", "d2", "--template-file", templateFile,
			"--parameters", "@"+paramsFile, "--parameters", "prefixCount=3", "--no-pretty-print")
		var created []string
		for _, ch := range w.Changes {
			if ch.ChangeType == "Create" {
				created = append(created, ch.ResourceID)
			}
		}
		if len(created) != 1 || !strings.EqualFold(created[0], prefixID("2")) {
			t.Errorf("what-if with a third prefix creates %v, want only %s", created, prefixID("2"))
		}
	})

	t.Run("redeploy", func(t *testing.T) {
		var d deployment
		az.json(t, &d, "deployment", "group", "create", "-g", group, "-n", "d1", "--template-file", templateFile, "--parameters", "@"+paramsFile)
		if d.Properties.ProvisioningState != "Succeeded" {
			t.Errorf("redeploy = %+v", d)
		}
	})

	t.Run("a resource the deployer may not write", func(t *testing.T) {
		sp, secret, err := cp.Identity.CreateServicePrincipal(t.Context(), "deployer")
		if err != nil {
			t.Fatal(err)
		}
		roleID := uuid.NewString()
		put := func(path string, body any) {
			t.Helper()
			r, err := cp.Client.Do(t.Context(), http.MethodPut, path, body)
			if err != nil || r.Status >= 300 {
				t.Fatalf("PUT %s = %v, %v", path, r, err)
			}
		}
		// Deployments and fabric prefixes, but no NetworkCloud writes.
		put("/subscriptions/"+sub+"/providers/Microsoft.Authorization/roleDefinitions/"+roleID+"?api-version=2022-04-01", map[string]any{
			"properties": map[string]any{"roleName": "Prefix deployer", "type": "CustomRole", "assignableScopes": []string{groupID},
				"permissions": []any{map[string]any{"actions": []string{"*/read", "Microsoft.Resources/deployments/*", "Microsoft.ManagedNetworkFabric/ipPrefixes/write"}}}},
		})
		put(groupID+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString()+"?api-version=2022-04-01", map[string]any{
			"properties": map[string]any{"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleID,
				"principalId": sp.ObjectID, "principalType": "ServicePrincipal"},
		})
		daz := newAzCLI(t, cp)
		rbacAzLogin(t, daz, sp.AppID, secret, c.ARMEndpoint, c.TenantID, sub)
		params["parameters"].(map[string]any)["clusterName"] = map[string]any{"value": "dc2"}
		params["parameters"].(map[string]any)["managerName"] = map[string]any{"value": "cm2"}
		b, _ := json.Marshal(params)
		if err := os.WriteFile(paramsFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
		daz.fail(t, []string{"AuthorizationFailed", sp.ObjectID, "Microsoft.NetworkCloud/clusterManagers/write", "clusterManagers/cm2"},
			"deployment", "group", "create", "-g", group, "-n", "d3", "--template-file", templateFile, "--parameters", "@"+paramsFile)
		// Nothing of it exists: the refusal came before any resource.
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", groupID+"/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/dc2-prefix-0")
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", groupID+"/providers/Microsoft.NetworkCloud/clusterManagers/cm2")
	})
}

// prefixTemplate deploys count fabric ipPrefixes one after another
// (a serial copy loop), named {base}-{i}, with the given prefix length.
func prefixTemplate(base string, count, length int) string {
	return fmt.Sprintf(`{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [{
    "type": "Microsoft.ManagedNetworkFabric/ipPrefixes",
    "apiVersion": "2025-07-15",
    "name": "[format('%s-{0}', copyIndex())]",
    "location": "[resourceGroup().location]",
    "copy": {"name": "prefixes", "count": %d, "mode": "serial", "batchSize": 1},
    "properties": {"ipPrefixRules": [{"action": "Permit", "sequenceNumber": 10, "networkPrefix": "[format('10.{0}.0.0/%d', copyIndex())]", "condition": "EqualTo", "subnetMaskLength": "16"}]}
  }]
}`, base, count, length)
}

// TestDeploymentModes covers what a deployment does besides creating:
// cancel, redeploying the last success on error, Complete mode, and a
// deployment at subscription scope.
func TestDeploymentModes(t *testing.T) {
	requireAz(t)
	t.Parallel()
	cp := servertest.Start(t)
	az := newAzCLI(t, cp)
	c := cp.Creds
	sub := c.SubscriptionID
	dir := t.TempDir()
	file := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	prefixID := func(group, name string) string {
		return "/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/" + name
	}
	type deployment struct {
		Properties struct {
			ProvisioningState string `json:"provisioningState"`
			Timestamp         string `json:"timestamp"`
			OnErrorDeployment struct {
				Type           string `json:"type"`
				DeploymentName string `json:"deploymentName"`
			} `json:"onErrorDeployment"`
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"properties"`
	}
	show := func(t *testing.T, group, name string) deployment {
		var d deployment
		az.json(t, &d, "deployment", "group", "show", "-g", group, "-n", name)
		return d
	}
	if !t.Run("login", func(t *testing.T) {
		az.login(t, c)
		for _, g := range []string{"cancel", "rollback", "complete"} {
			az.ok(t, "group", "create", "-n", g, "-l", "local")
		}
	}) {
		t.FailNow()
	}

	t.Run("cancel", func(t *testing.T) {
		az.ok(t, "deployment", "group", "create", "-g", "cancel", "-n", "slow", "--template-file", file("slow.json", prefixTemplate("slow", 60, 16)), "--no-wait")
		az.ok(t, "deployment", "group", "cancel", "-g", "cancel", "-n", "slow")
		var d deployment
		deadline := time.Now().Add(30 * time.Second)
		for d = show(t, "cancel", "slow"); d.Properties.ProvisioningState != "Canceled" && time.Now().Before(deadline); d = show(t, "cancel", "slow") {
			time.Sleep(200 * time.Millisecond)
		}
		if d.Properties.ProvisioningState != "Canceled" || d.Properties.Error.Code != "DeploymentCanceled" {
			t.Fatalf("canceled deployment = %+v", d)
		}
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", prefixID("cancel", "slow-59"))
		az.fail(t, []string{"DeploymentCannotBeCanceled"}, "deployment", "group", "cancel", "-g", "cancel", "-n", "slow")
	})

	t.Run("redeploy the last success on error", func(t *testing.T) {
		az.ok(t, "deployment", "group", "create", "-g", "rollback", "-n", "good", "--template-file", file("good.json", prefixTemplate("good", 1, 16)))
		before := show(t, "rollback", "good").Properties.Timestamp
		// A prefix length of 40 expands, and the provider refuses it.
		az.fail(t, []string{"DeploymentFailed"}, "deployment", "group", "create", "-g", "rollback", "-n", "bad",
			"--template-file", file("bad.json", prefixTemplate("bad", 1, 40)), "--rollback-on-error")
		bad := show(t, "rollback", "bad")
		if bad.Properties.ProvisioningState != "Failed" || bad.Properties.OnErrorDeployment.DeploymentName != "good" {
			t.Fatalf("failed deployment = %+v, want Failed with onErrorDeployment good", bad)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			good := show(t, "rollback", "good")
			if good.Properties.ProvisioningState == "Succeeded" && good.Properties.Timestamp > before {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the last successful deployment did not run again: %+v", good)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("complete mode deletes what the template lacks", func(t *testing.T) {
		az.ok(t, "deployment", "group", "create", "-g", "complete", "-n", "three", "--template-file", file("three.json", prefixTemplate("p", 3, 16)))
		az.ok(t, "deployment", "group", "create", "-g", "complete", "-n", "one", "--mode", "Complete", "--template-file", file("one.json", prefixTemplate("p", 1, 16)))
		az.ok(t, "resource", "show", "--ids", prefixID("complete", "p-0"))
		for _, gone := range []string{"p-1", "p-2"} {
			az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", prefixID("complete", gone))
		}
	})

	t.Run("subscription scope", func(t *testing.T) {
		subTemplate := file("sub.json", `{
  "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [{"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2021-04-01", "name": "from-template", "location": "local", "tags": {"made": "by template"}}],
  "outputs": {"group": {"type": "string", "value": "[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'from-template')]"}}
}`)
		var d struct {
			Properties struct {
				ProvisioningState string                         `json:"provisioningState"`
				Outputs           map[string]struct{ Value any } `json:"outputs"`
			} `json:"properties"`
		}
		az.json(t, &d, "deployment", "sub", "create", "-l", "local", "-n", "groups", "--template-file", subTemplate)
		if d.Properties.ProvisioningState != "Succeeded" || d.Properties.Outputs["group"].Value != "/subscriptions/"+sub+"/resourceGroups/from-template" {
			t.Errorf("subscription deployment = %+v", d)
		}
		var g struct{ Tags map[string]string }
		az.json(t, &g, "group", "show", "-n", "from-template")
		if g.Tags["made"] != "by template" {
			t.Errorf("group from the template = %+v", g)
		}
	})
}
