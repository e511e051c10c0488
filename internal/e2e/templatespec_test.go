package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/servertest"
)

// linkedPrefixTemplate deploys the prefix {prefix}-{suffix} and, when
// next is set, the template at that relative path as the deployment
// "{suffix}-next", passing the prefix on. Its output "leaf" is the name
// of the last prefix of the chain.
func linkedPrefixTemplate(suffix, network, next string) string {
	link, leaf := "", fmt.Sprintf("[format('{0}-%s', parameters('prefix'))]", suffix)
	if next != "" {
		link = fmt.Sprintf(`,
    {
      "type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "%[1]s-next",
      "properties": {"mode": "Incremental", "templateLink": {"relativePath": %[2]q}, "parameters": {"prefix": {"value": "[parameters('prefix')]"}}}
    }`, suffix, next)
		leaf = fmt.Sprintf("[reference('%s-next').outputs.leaf.value]", suffix)
	}
	return fmt.Sprintf(`{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {"prefix": {"type": "string"}},
  "resources": [
    {
      "type": "Microsoft.ManagedNetworkFabric/ipPrefixes", "apiVersion": "2025-07-15",
      "name": "[format('{0}-%s', parameters('prefix'))]", "location": "[resourceGroup().location]",
      "properties": {"ipPrefixRules": [{"action": "Permit", "sequenceNumber": 10, "networkPrefix": %q, "condition": "EqualTo", "subnetMaskLength": "16"}]}
    }%s
  ],
  "outputs": {"leaf": {"type": "string", "value": %q}}
}`, suffix, network, link, leaf)
}

// TestTemplateSpecs keeps linked templates inside the boundary with az
// 2.45: `az ts create` packs a template and the templates it links by
// relative path into a template spec version; `az deployment group
// create --template-spec` deploys it, resolving each relative link
// against the version (two levels deep); what-if of the same is NoChange;
// a relative link in an inline template, a version whose linked template
// leaves it, and a deployer who may not read the version are refused.
func TestTemplateSpecs(t *testing.T) {
	requireAz(t)
	t.Parallel()
	cp := servertest.Start(t)
	az := newAzCLI(t, cp)
	c := cp.Creds
	sub := c.SubscriptionID
	dir := t.TempDir()
	// main.json → nested/child.json → nested/leaf.json, each by a path
	// relative to the template linking it.
	for name, text := range map[string]string{
		"main.json":         linkedPrefixTemplate("main", "10.1.0.0/16", "nested/child.json"),
		"nested/child.json": linkedPrefixTemplate("child", "10.2.0.0/16", "leaf.json"),
		"nested/leaf.json":  linkedPrefixTemplate("leaf", "10.3.0.0/16", ""),
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "main.json")
	groupID := "/subscriptions/" + sub + "/resourceGroups/"
	versionID := groupID + "specs/providers/Microsoft.Resources/templateSpecs/prefixes/versions/1.0"
	prefixID := func(name string) string {
		return groupID + "app/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/" + name
	}
	if !t.Run("login", func(t *testing.T) {
		rbacAzLogin(t, az, c.ClientID, c.ClientSecret, c.ARMEndpoint, c.TenantID, sub)
		az.ok(t, "group", "create", "-n", "specs", "-l", "local")
		az.ok(t, "group", "create", "-n", "app", "-l", "local")
	}) {
		t.FailNow()
	}

	if !t.Run("az ts create packs the linked templates", func(t *testing.T) {
		var v struct {
			ID              string `json:"id"`
			LinkedTemplates []struct {
				Path string `json:"path"`
			} `json:"linkedTemplates"`
			MainTemplate map[string]any `json:"mainTemplate"`
		}
		az.json(t, &v, "ts", "create", "-g", "specs", "-n", "prefixes", "-v", "1.0", "-f", main, "--description", "prefixes, linked", "--yes")
		var paths []string
		for _, l := range v.LinkedTemplates {
			paths = append(paths, l.Path)
		}
		slices.Sort(paths)
		if !strings.EqualFold(v.ID, versionID) || !slices.Equal(paths, []string{"nested/child.json", "nested/leaf.json"}) || v.MainTemplate == nil {
			t.Fatalf("template spec version = %+v", v)
		}
		var specs []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		}
		az.json(t, &specs, "ts", "list", "-g", "specs")
		if len(specs) != 1 || specs[0].Name != "prefixes" || specs[0].Description != "prefixes, linked" {
			t.Errorf("az ts list = %+v", specs)
		}
		var spec struct {
			Versions []string `json:"versions"`
		}
		az.json(t, &spec, "ts", "show", "-g", "specs", "-n", "prefixes")
		if !slices.Equal(spec.Versions, []string{"1.0"}) {
			t.Errorf("az ts show -n prefixes: versions %v, want [1.0]", spec.Versions)
		}
		az.json(t, &specs, "ts", "list", "-g", "specs", "-n", "prefixes")
		if len(specs) != 1 || specs[0].Name != "1.0" {
			t.Errorf("az ts list -n prefixes (its versions) = %+v", specs)
		}
		// az ts export unpacks the version into the files it was packed from.
		out := t.TempDir()
		az.ok(t, "ts", "export", "--template-spec", versionID, "--output-folder", out)
		for _, f := range []string{"prefixes.JSON", "nested/child.json", "nested/leaf.json"} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("az ts export: %v", err)
			}
		}
	}) {
		t.FailNow()
	}

	t.Run("deploy the version", func(t *testing.T) {
		var d struct {
			Properties struct {
				ProvisioningState string                         `json:"provisioningState"`
				TemplateLink      struct{ ID string }            `json:"templateLink"`
				Outputs           map[string]struct{ Value any } `json:"outputs"`
			} `json:"properties"`
		}
		az.json(t, &d, "deployment", "group", "create", "-g", "app", "-n", "fromspec", "--template-spec", versionID, "--parameters", "prefix=ts")
		if d.Properties.ProvisioningState != "Succeeded" || !strings.EqualFold(d.Properties.TemplateLink.ID, versionID) {
			t.Fatalf("deployment = %+v", d)
		}
		if got := d.Properties.Outputs["leaf"].Value; got != "ts-leaf" {
			t.Errorf("output leaf = %v, want ts-leaf (from nested/leaf.json through nested/child.json)", got)
		}
		raw := az.ok(t, "rest", "--url", groupID+"app/providers/Microsoft.Resources/deployments/fromspec?api-version=2021-04-01")
		if strings.Contains(raw, "templateSpecSnapshot") || strings.Contains(raw, "ipPrefixRules") {
			t.Errorf("the deployment shows the templates it keeps: %s", raw)
		}
		for _, name := range []string{"ts-main", "ts-child", "ts-leaf"} {
			az.ok(t, "resource", "show", "--ids", prefixID(name))
		}
		var ops []struct {
			Properties struct {
				TargetResource struct{ ID string } `json:"targetResource"`
			} `json:"properties"`
		}
		az.json(t, &ops, "deployment", "operation", "group", "list", "-g", "app", "-n", "fromspec")
		if len(ops) != 5 { // three prefixes and two nested deployments
			t.Errorf("%d deployment operations, want 5: %+v", len(ops), ops)
		}
	})

	t.Run("what-if of the version changes nothing", func(t *testing.T) {
		var w struct {
			Changes []struct {
				ResourceID string `json:"resourceId"`
				ChangeType string `json:"changeType"`
			} `json:"changes"`
		}
		az.json(t, &w, "deployment", "group", "what-if", "-g", "app", "-n", "again", "--template-spec", versionID, "--parameters", "prefix=ts", "--no-pretty-print")
		noChange := 0
		for _, ch := range w.Changes {
			if ch.ChangeType != "NoChange" {
				t.Errorf("what-if: %s %s", ch.ChangeType, ch.ResourceID)
			}
			noChange++
		}
		if noChange != 3 {
			t.Errorf("what-if: %d NoChange, want the three prefixes: %+v", noChange, w)
		}
	})

	t.Run("a relative link in an inline template", func(t *testing.T) {
		az.fail(t, []string{"InvalidTemplate", "nested/child.json", "template spec"},
			"deployment", "group", "create", "-g", "app", "-n", "inline", "--template-file", main, "--parameters", "prefix=inline")
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", prefixID("inline-main"))
	})

	t.Run("a linked template outside the version", func(t *testing.T) {
		r, err := cp.Client.Do(t.Context(), http.MethodPut, versionID[:strings.LastIndex(versionID, "/")]+"/2.0?api-version=2021-05-01", map[string]any{
			"location": "local",
			"properties": map[string]any{
				"mainTemplate":    map[string]any{"resources": []any{}},
				"linkedTemplates": []any{map[string]any{"path": "../other.json", "template": map[string]any{"resources": []any{}}}},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "properties.linkedTemplates[0].path") {
			t.Errorf("PUT a version linking ../other.json = %d %s, want 400 naming the path", r.Status, r.Body)
		}
	})

	t.Run("a deployer who may not read the version", func(t *testing.T) {
		sp, secret, err := cp.Identity.CreateServicePrincipal(t.Context(), "spec-deployer")
		if err != nil {
			t.Fatal(err)
		}
		// Contributor on the group deployed to, nothing on the specs' group.
		r, err := cp.Client.Do(t.Context(), http.MethodPut, groupID+"app/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString()+"?api-version=2022-04-01", map[string]any{
			"properties": map[string]any{"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
				"principalId": sp.ObjectID, "principalType": "ServicePrincipal"},
		})
		if err != nil || r.Status >= 300 {
			t.Fatalf("role assignment: %v, %v", r, err)
		}
		daz := newAzCLI(t, cp)
		rbacAzLogin(t, daz, sp.AppID, secret, c.ARMEndpoint, c.TenantID, sub)
		body := `{"properties": {"mode": "Incremental", "templateLink": {"id": "` + versionID + `"}, "parameters": {"prefix": {"value": "denied"}}}}`
		daz.fail(t, []string{"AuthorizationFailed", "Microsoft.Resources/templateSpecs/versions/read", "templateSpecs/prefixes/versions/1.0"},
			"rest", "--method", "put", "--url", groupID+"app/providers/Microsoft.Resources/deployments/denied?api-version=2021-04-01", "--body", body)
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "--ids", prefixID("denied-main"))
	})

	t.Run("deleting the spec deletes its versions", func(t *testing.T) {
		az.ok(t, "ts", "delete", "-g", "specs", "-n", "prefixes", "--yes")
		az.fail(t, []string{"ResourceNotFound"}, "ts", "show", "--template-spec", versionID)
	})
}
