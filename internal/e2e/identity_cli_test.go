package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/client"
)

// TestIdentityCLI takes the first administrative steps on a stopped
// server's data directory: a service principal with a role and a local
// user; after a restart the principal can do what its role allows and no
// more, and the changes are in the activity log.
func TestIdentityCLI(t *testing.T) {
	p := &citadelProcess{bin: buildCitadel(t), dataDir: t.TempDir(), listen: freeAddr(t)}
	p.start(t)
	admin, err := client.LoadCredentials(filepath.Join(p.dataDir, "bootstrap", "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	p.kill(t)

	run := func(stdin string, args ...string) map[string]string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), p.bin, append([]string{"identity"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("citadel identity %v: %v\n%s", args, err, out)
		}
		var res map[string]string
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("citadel identity %v printed %s: %v", args, out, err)
		}
		return res
	}
	sub := "/subscriptions/" + admin.SubscriptionID
	credsFile := filepath.Join(t.TempDir(), "ops.json")
	sp := run("", "create-sp", "--data-dir", p.dataDir, "--name", "ops", "--role", "Reader", "--scope", sub, "--out", credsFile)
	if sp["appId"] == "" || sp["clientSecret"] == "" || !strings.HasPrefix(sp["roleAssignmentId"], sub+"/providers/Microsoft.Authorization/roleAssignments/") {
		t.Fatalf("create-sp = %v, want an app id, a secret and a Reader assignment at %s", sp, sub)
	}
	user := run("a long enough password\n", "create-user", "--data-dir", p.dataDir, "--upn", "alice@citadel.local", "--role", "Auditor", "--scope", "/")
	if user["objectId"] == "" || user["roleAssignmentId"] == "" {
		t.Fatalf("create-user = %v, want an object id and an assignment", user)
	}
	// A service principal with no role of its own gets Reader through a
	// group nested in the group that holds it.
	readers := run("", "create-group", "--data-dir", p.dataDir, "--name", "readers", "--role", "Reader", "--scope", sub)
	team := run("", "create-group", "--data-dir", p.dataDir, "--name", "team")
	member := run("", "create-sp", "--data-dir", p.dataDir, "--name", "member", "--out", filepath.Join(t.TempDir(), "member.json"))
	run("", "add-member", "--data-dir", p.dataDir, "--group", readers["objectId"], "--member", team["objectId"])
	run("", "add-member", "--data-dir", p.dataDir, "--group", team["objectId"], "--member", member["objectId"])
	second := run("", "add-secret", "--data-dir", p.dataDir, "--app-id", sp["appId"], "--expires", time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339))
	if second["clientSecret"] == "" || second["clientSecret"] == sp["clientSecret"] {
		t.Fatalf("add-secret = %v, want a second, different secret", second)
	}
	again := run("", "assign", "--data-dir", p.dataDir, "--principal-id", sp["objectId"], "--type", "ServicePrincipal", "--role", "reader", "--scope", sub)
	if again["roleAssignmentId"] != sp["roleAssignmentId"] {
		t.Errorf("assigning the same role again = %v, want the same assignment %s", again, sp["roleAssignmentId"])
	}

	p.start(t)
	// The server may have come back on another port (start's retry):
	// every credential points at where it is now.
	now, err := client.LoadCredentials(filepath.Join(p.dataDir, "bootstrap", "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	admin.ARMEndpoint = now.ARMEndpoint
	ops, err := client.LoadCredentials(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	ops.ARMEndpoint = now.ARMEndpoint
	c, err := client.New(ops)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if r, err := c.Do(ctx, http.MethodGet, sub+"?api-version=2022-12-01", nil); err != nil || r.Status != http.StatusOK {
		t.Errorf("GET subscription as the new Reader = %v, %v; want 200", r, err)
	}
	withSecond := ops
	withSecond.ClientSecret = second["clientSecret"]
	if c2, err := client.New(withSecond); err != nil {
		t.Fatal(err)
	} else if _, err := c2.Token(ctx); err != nil {
		t.Errorf("token with the second secret: %v", err)
	}
	r, err := c.Do(ctx, http.MethodPut, sub+"/resourceGroups/not-for-readers?api-version=2021-04-01", map[string]any{"location": "local"})
	if err != nil || r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "AuthorizationFailed") {
		t.Errorf("PUT group as a Reader = %v, %v; want 403 AuthorizationFailed", r, err)
	}
	memberCreds := admin
	memberCreds.ClientID, memberCreds.ClientSecret = member["appId"], member["clientSecret"]
	mc, err := client.New(memberCreds)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := mc.Do(ctx, http.MethodGet, sub+"?api-version=2022-12-01", nil); err != nil || r.Status != http.StatusOK {
		t.Errorf("GET subscription as a member of a nested Reader group = %v, %v; want 200", r, err)
	}
	if r, err := mc.Do(ctx, http.MethodPut, sub+"/resourceGroups/not-for-members?api-version=2021-04-01", map[string]any{"location": "local"}); err != nil || r.Status != http.StatusForbidden {
		t.Errorf("PUT group as a member of a Reader group = %v, %v; want 403", r, err)
	}
	adminClient, err := client.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	// The identities are ARM resources at the tenant root, read under RBAC:
	// the admin (Owner at "/") sees them, a Reader of one subscription not.
	const dir = "/providers/Citadel.Identity"
	for _, tt := range []struct{ path, want string }{
		{dir + "/servicePrincipals/" + sp["appId"], sp["objectId"]},
		{dir + "/users/alice@citadel.local", user["objectId"]},
		{dir + "/groups/" + readers["objectId"], team["objectId"]},
		{dir + "/servicePrincipals", member["appId"]},
		{dir + "/groups", readers["objectId"]},
	} {
		r, err := adminClient.Do(ctx, http.MethodGet, tt.path+"?api-version=2026-01-01", nil)
		if err != nil || r.Status != http.StatusOK || !strings.Contains(string(r.Body), tt.want) {
			t.Errorf("GET %s as admin = %v, %v; want 200 with %s", tt.path, r, err, tt.want)
		}
		if strings.Contains(string(r.Body), "$argon2id$") {
			t.Errorf("GET %s shows a secret hash: %s", tt.path, r.Body)
		}
	}
	if r, err := c.Do(ctx, http.MethodGet, dir+"/users/alice@citadel.local?api-version=2026-01-01", nil); err != nil || r.Status != http.StatusForbidden {
		t.Errorf("GET a user as a subscription Reader = %v, %v; want 403", r, err)
	}
	if r, err := c.Do(ctx, http.MethodGet, dir+"/servicePrincipals?api-version=2026-01-01", nil); err != nil || r.Status != http.StatusOK || strings.Contains(string(r.Body), sp["appId"]) {
		t.Errorf("list service principals as a subscription Reader = %v, %v; want an empty list", r, err)
	}
	if r, err := adminClient.Do(ctx, http.MethodPut, dir+"/groups/new?api-version=2026-01-01", map[string]any{"properties": map[string]any{}}); err != nil || r.Status != http.StatusBadRequest {
		t.Errorf("PUT a group named 'new' through the API = %v, %v; want 400 (a group's name is its object id)", r, err)
	}

	// Through the API: a service principal (its secret in the create
	// response only), a user, a group holding both with Reader.
	appID, groupID := uuid.NewString(), uuid.NewString()
	r, err = adminClient.Do(ctx, http.MethodPut, dir+"/servicePrincipals/"+appID+"?api-version=2026-01-01",
		map[string]any{"properties": map[string]any{"displayName": "made through the API"}})
	var created struct {
		Properties struct{ ObjectID, SecretText string }
	}
	if err != nil || r.Status != http.StatusCreated || json.Unmarshal(r.Body, &created) != nil || created.Properties.SecretText == "" {
		t.Fatalf("PUT service principal = %v, %v; want 201 with its secret", r, err)
	}
	if r, _ := adminClient.Do(ctx, http.MethodGet, dir+"/servicePrincipals/"+appID+"?api-version=2026-01-01", nil); r == nil || strings.Contains(string(r.Body), created.Properties.SecretText) {
		t.Errorf("GET service principal shows its secret again: %v", r)
	}
	if r, err := adminClient.Do(ctx, http.MethodPut, dir+"/users/bob@citadel.local?api-version=2026-01-01",
		map[string]any{"properties": map[string]any{"displayName": "Bob", "password": "another long password"}}); err != nil || r.Status != http.StatusCreated || strings.Contains(string(r.Body), "another long password") {
		t.Errorf("PUT user = %v, %v; want 201 without the password", r, err)
	}
	if r, err := adminClient.Do(ctx, http.MethodPut, dir+"/groups/"+groupID+"?api-version=2026-01-01",
		map[string]any{"properties": map[string]any{"displayName": "api-readers", "members": []string{created.Properties.ObjectID}}}); err != nil || r.Status != http.StatusCreated {
		t.Errorf("PUT group = %v, %v; want 201", r, err)
	}
	assignment := sub + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString() + "?api-version=2022-04-01"
	if r, err := adminClient.Do(ctx, http.MethodPut, assignment, map[string]any{"properties": map[string]any{
		"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
		"principalId":      groupID, "principalType": "Group",
	}}); err != nil || r.Status != http.StatusCreated {
		t.Fatalf("assign Reader to the group = %v, %v", r, err)
	}
	apiCreds := admin
	apiCreds.ClientID, apiCreds.ClientSecret = appID, created.Properties.SecretText
	ac, err := client.New(apiCreds)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second) // the assignment reaches the policy through a watch
	for {
		r, err := ac.Do(ctx, http.MethodGet, sub+"?api-version=2022-12-01", nil)
		if err == nil && r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET subscription as a member of the API-made Reader group = %v, %v; want 200", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r, err := adminClient.Do(ctx, http.MethodDelete, dir+"/servicePrincipals/"+appID+"?api-version=2026-01-01", nil); err != nil || r.Status != http.StatusOK {
		t.Errorf("DELETE service principal = %v, %v; want 200", r, err)
	}
	if r, err := adminClient.Do(ctx, http.MethodGet, dir+"/servicePrincipals/"+appID+"?api-version=2026-01-01", nil); err != nil || r.Status != http.StatusNotFound {
		t.Errorf("GET deleted service principal = %v, %v; want 404", r, err)
	}
	r, err = adminClient.Do(ctx, http.MethodGet, sub+"/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter="+
		"principalId%20eq%20'"+sp["objectId"]+"'", nil)
	if err != nil || r.Status != http.StatusOK || !strings.Contains(string(r.Body), sp["roleAssignmentId"]) {
		t.Errorf("list the new principal's assignments = %v, %v; want the CLI's assignment", r, err)
	}
}
