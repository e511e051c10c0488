package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/servertest"
)

// TestAzCLI drives the real az CLI 2.45 against a control plane through
// everything the foundation serves: cloud registration and service
// principal login, resource groups, the generic resource commands on
// Microsoft.ManagedNetworkFabric/ipPrefixes, az rest, and the errors az
// users see. The steps share one control plane and run in order.
func TestAzCLI(t *testing.T) {
	requireAz(t)
	t.Parallel()
	start := time.Now()
	cp := servertest.Start(t)
	az := newAzCLI(t, cp)
	t.Cleanup(func() {
		az.logTimings(t)
		t.Logf("TestAzCLI took %v", time.Since(start).Round(time.Millisecond))
	})
	c := cp.Creds
	sub := c.SubscriptionID
	groupID := "/subscriptions/" + sub + "/resourceGroups/rg1"
	const (
		prefixType  = "Microsoft.ManagedNetworkFabric/ipPrefixes"
		prefixAPI   = "2025-07-15"
		groupAPI    = "2021-04-01"
		unknownType = "Microsoft.ManagedNetworkFabric/nosuch"
	)
	prefixID := func(name string) string { return groupID + "/providers/" + prefixType + "/" + name }
	rules := []azRule{
		{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.0.0.0/8", Condition: "GreaterThanOrEqualTo", SubnetMaskLength: "24"},
		{Action: "Deny", SequenceNumber: 20, NetworkPrefix: "fd00::/8", Condition: "Range", SubnetMaskLength: "48-64"},
	}
	props := azProperties(t, rules...)

	// must runs a step the later ones depend on.
	must := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.Fatalf("step %q failed; the later steps depend on it", name)
		}
	}

	must("cloud register", func(t *testing.T) {
		// armEndpoint ends in "/": az asks for {arm}/metadata/endpoints
		// by string concatenation, so it sends "//metadata/endpoints".
		az.ok(t, "cloud", "register", "-n", "citadel", "--endpoint-resource-manager", c.ARMEndpoint)
		var cloud struct {
			Endpoints map[string]*string `json:"endpoints"`
		}
		az.json(t, &cloud, "cloud", "show", "-n", "citadel")
		for key, want := range map[string]string{
			"resourceManager":           c.ARMEndpoint,
			"activeDirectory":           c.ARMEndpoint + "adfs",
			"activeDirectoryResourceId": c.Audience,
		} {
			if got := cloud.Endpoints[key]; got == nil || *got != want {
				t.Errorf("az cloud show: endpoints.%s = %v, want %q", key, jsonString(got), want)
			}
		}
	})
	must("cloud set", func(t *testing.T) {
		az.ok(t, "cloud", "set", "-n", "citadel")
	})
	must("login", func(t *testing.T) {
		var subs []struct {
			ID        string `json:"id"`
			TenantID  string `json:"tenantId"`
			CloudName string `json:"cloudName"`
			User      struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"user"`
		}
		az.json(t, &subs, "login", "--service-principal", "-u", c.ClientID, "-p", c.ClientSecret, "--tenant", c.TenantID)
		if len(subs) != 1 {
			t.Fatalf("az login: %d subscriptions, want 1: %+v", len(subs), subs)
		}
		s := subs[0]
		if s.ID != sub || s.TenantID != c.TenantID || s.CloudName != "citadel" || s.User.Name != c.ClientID || s.User.Type != "servicePrincipal" {
			t.Errorf("az login = %+v, want id %s, tenant %s, cloud citadel, user %s (servicePrincipal)", s, sub, c.TenantID, c.ClientID)
		}
	})
	t.Run("account show", func(t *testing.T) {
		var acct struct {
			ID              string `json:"id"`
			TenantID        string `json:"tenantId"`
			EnvironmentName string `json:"environmentName"`
			State           string `json:"state"`
		}
		az.json(t, &acct, "account", "show")
		if acct.ID != sub || acct.TenantID != c.TenantID {
			t.Errorf("az account show: id, tenantId = %s, %s, want %s, %s", acct.ID, acct.TenantID, sub, c.TenantID)
		}
		if acct.EnvironmentName != "citadel" || acct.State != "Enabled" {
			t.Errorf("az account show: environmentName, state = %s, %s, want citadel, Enabled", acct.EnvironmentName, acct.State)
		}
	})

	must("group create", func(t *testing.T) {
		var g azResource
		az.json(t, &g, "group", "create", "-n", "rg1", "-l", "local", "--tags", "env=dev")
		checkAzGroup(t, "az group create", g, groupID, map[string]string{"env": "dev"})
	})
	t.Run("group show mixed case", func(t *testing.T) {
		var g azResource
		az.json(t, &g, "group", "show", "-n", "RG1")
		checkAzGroup(t, "az group show -n RG1", g, groupID, map[string]string{"env": "dev"})
	})
	t.Run("group exists", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			want bool
		}{{"rg1", true}, {"nosuch", false}} {
			t.Run(tc.name, func(t *testing.T) {
				var got bool
				az.json(t, &got, "group", "exists", "-n", tc.name)
				if got != tc.want {
					t.Errorf("az group exists -n %s = %v, want %v", tc.name, got, tc.want)
				}
			})
		}
	})
	t.Run("group list", func(t *testing.T) {
		var groups []azResource
		az.json(t, &groups, "group", "list")
		if n := countAz(groups, groupID); n != 1 {
			t.Errorf("az group list: %s listed %d times, want once: %+v", groupID, n, groups)
		}
	})
	t.Run("group update", func(t *testing.T) {
		var g azResource
		az.json(t, &g, "group", "update", "-n", "rg1", "--tags", "x=y")
		checkAzGroup(t, "az group update --tags x=y", g, groupID, map[string]string{"x": "y"})
	})

	must("resource create", func(t *testing.T) {
		// az resolves the api-version from the provider, PUTs, and
		// polls Azure-AsyncOperation until the controller is done.
		var r azResource
		az.json(t, &r, "resource", "create", "-g", "rg1", "-n", "pfx1", "--resource-type", prefixType, "-l", "local", "-p", props)
		checkAzPrefix(t, "az resource create", r, prefixID("pfx1"), rules, nil)
	})
	t.Run("resource show", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"by name", []string{"-g", "rg1", "-n", "pfx1", "--resource-type", prefixType}},
			{"by id in other casing", []string{"--ids", "/SUBSCRIPTIONS/" + sub + "/resourcegroups/RG1/providers/microsoft.managednetworkfabric/IPPREFIXES/PFX1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var r azResource
				az.json(t, &r, append([]string{"resource", "show"}, tc.args...)...)
				checkAzPrefix(t, "az resource show "+strings.Join(tc.args, " "), r, prefixID("pfx1"), rules, nil)
			})
		}
	})
	t.Run("resource list", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"by group", []string{"-g", "rg1"}},
			{"by type", []string{"--resource-type", prefixType}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var items []azResource
				az.json(t, &items, append([]string{"resource", "list"}, tc.args...)...)
				if n := countAz(items, prefixID("pfx1")); n != 1 {
					t.Fatalf("az resource list %s: pfx1 listed %d times, want once: %+v", strings.Join(tc.args, " "), n, items)
				}
				for _, it := range items {
					// az asks for $expand=createdTime,changedTime,provisioningState.
					if it.ID == prefixID("pfx1") && (it.Type != prefixType || it.Location != "local" || it.ProvisioningState != "Succeeded") {
						t.Errorf("az resource list %s: item = %+v, want type %s, location local, provisioningState Succeeded", strings.Join(tc.args, " "), it, prefixType)
					}
				}
			})
		}
	})
	t.Run("resource tag", func(t *testing.T) {
		// az GETs the resource and PUTs it back whole, read-only
		// properties included.
		var r azResource
		az.json(t, &r, "resource", "tag", "-g", "rg1", "-n", "pfx1", "--resource-type", prefixType, "--tags", "a=b")
		checkAzPrefix(t, "az resource tag --tags a=b", r, prefixID("pfx1"), rules, map[string]string{"a": "b"})
	})
	t.Run("rest get", func(t *testing.T) {
		var r azResource
		az.json(t, &r, "rest", "--method", "get", "--url", prefixID("pfx1")+"?api-version="+prefixAPI)
		checkAzPrefix(t, "az rest --method get", r, prefixID("pfx1"), rules, map[string]string{"a": "b"})
	})
	t.Run("rest put", func(t *testing.T) {
		// az rest does not poll: it prints the PUT's answer, which is
		// the resource with a non-terminal provisioningState.
		body := `{"location":"local","tags":{"via":"rest"},"properties":` + azProperties(t, rules[1]) + `}`
		var r azResource
		az.json(t, &r, "rest", "--method", "put", "--url", prefixID("pfx2")+"?api-version="+prefixAPI, "--body", body)
		if r.ID != prefixID("pfx2") || r.Name != "pfx2" || !cmp.Equal(r.Tags, map[string]string{"via": "rest"}) {
			t.Errorf("az rest --method put: id, name, tags = %s, %s, %v, want %s, pfx2, map[via:rest]", r.ID, r.Name, r.Tags, prefixID("pfx2"))
		}
		if s := r.Properties.ProvisioningState; s != "Accepted" && s != "Succeeded" {
			t.Errorf("az rest --method put: provisioningState = %q, want Accepted or Succeeded", s)
		}
		azWaitSucceeded(t, cp, prefixID("pfx2")+"?api-version="+prefixAPI)
	})

	t.Run("errors", func(t *testing.T) {
		badPrefix := azProperties(t, azRule{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.0.0.1/8", Condition: "EqualTo", SubnetMaskLength: "8"})
		create := func(group, name, typ string, extra ...string) []string {
			return append([]string{"resource", "create", "-g", group, "-n", name, "--resource-type", typ, "-l", "local", "-p", props}, extra...)
		}
		for _, tc := range []struct {
			name   string
			args   []string
			want   []string
			absent string // a path that must still answer 404 afterwards
		}{
			{
				name:   "network prefix with host bits",
				args:   []string{"resource", "create", "-g", "rg1", "-n", "bad1", "--resource-type", prefixType, "-l", "local", "-p", badPrefix},
				want:   []string{"InvalidRequestContent", "properties.ipPrefixRules[0].networkPrefix"},
				absent: prefixID("bad1"),
			},
			{name: "name too short", args: create("rg1", "p", prefixType), want: []string{"InvalidResourceName"}, absent: prefixID("p")},
			{
				// With --api-version az sends the PUT without asking the provider first.
				name: "unknown type", args: create("rg1", "x1x", unknownType, "--api-version", prefixAPI),
				want: []string{"InvalidResourceType"},
			},
			{
				// Without it az looks the type up in the provider and stops there.
				name: "unknown type resolved by az", args: create("rg1", "x1x", unknownType),
				want: []string{"nosuch"},
			},
			{name: "unknown group", args: create("nosuch", "pfx9", prefixType), want: []string{"ResourceGroupNotFound"}},
			{
				name: "missing api-version",
				args: []string{"rest", "--method", "get", "--url", "/subscriptions/" + sub + "/resourcegroups/rg1"},
				want: []string{"MissingApiVersionParameter"},
			},
			{
				name: "invalid core api-version",
				args: []string{"rest", "--method", "get", "--url", "/subscriptions/" + sub + "/resourcegroups/rg1?api-version=2099-01-01"},
				want: []string{"InvalidApiVersionParameter"},
			},
			{
				name: "unsupported typed api-version",
				args: []string{"rest", "--method", "get", "--url", prefixID("pfx1") + "?api-version=2017-01-01"},
				want: []string{"NoRegisteredProviderFound"},
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				az.fail(t, tc.want, tc.args...)
				if tc.absent == "" {
					return
				}
				resp, err := cp.Client.Do(t.Context(), http.MethodGet, tc.absent+"?api-version="+prefixAPI, nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != http.StatusNotFound {
					t.Errorf("GET %s after the failed create = %d %s, want 404", tc.absent, resp.Status, resp.Body)
				}
			})
		}
	})

	t.Run("token refusal", func(t *testing.T) {
		var tok struct {
			AccessToken  string `json:"accessToken"`
			Subscription string `json:"subscription"`
			Tenant       string `json:"tenant"`
			TokenType    string `json:"tokenType"`
		}
		az.json(t, &tok, "account", "get-access-token")
		if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.Subscription != sub || tok.Tenant != c.TenantID {
			t.Fatalf("az account get-access-token = type %q, subscription %q, tenant %q, token %d bytes; want Bearer, %s, %s, a token",
				tok.TokenType, tok.Subscription, tok.Tenant, len(tok.AccessToken), sub, c.TenantID)
		}
		forged := azForgeSignature(t, tok.AccessToken)
		listGroups := "/subscriptions/" + sub + "/resourcegroups?api-version=" + groupAPI
		httpc := cp.HTTPClient(t)
		for _, tc := range []struct {
			name          string
			authorization string
			status        int
			code          string
		}{
			{"az's own token", "Bearer " + tok.AccessToken, http.StatusOK, ""},
			{"forged signature", "Bearer " + forged, http.StatusUnauthorized, "InvalidAuthenticationToken"},
			{"expired claims", "Bearer " + azExpireClaims(t, tok.AccessToken), http.StatusUnauthorized, "InvalidAuthenticationToken"},
			{"alg none", "Bearer " + azUnsigned(t, tok.AccessToken), http.StatusUnauthorized, "InvalidAuthenticationToken"},
			{"garbage", "Bearer garbage", http.StatusUnauthorized, "InvalidAuthenticationToken"},
			{"no header", "", http.StatusUnauthorized, "AuthenticationFailed"},
			{"basic scheme", "Basic " + c.ClientID, http.StatusUnauthorized, "AuthenticationFailed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, strings.TrimSuffix(c.ARMEndpoint, "/")+listGroups, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.authorization != "" {
					req.Header.Set("Authorization", tc.authorization)
				}
				resp, err := httpc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body := readAzBody(t, resp)
				if resp.StatusCode != tc.status {
					t.Fatalf("GET %s with %s = %d %s, want %d", listGroups, tc.name, resp.StatusCode, body, tc.status)
				}
				if resp.Header.Get("x-ms-request-id") == "" {
					t.Errorf("GET %s with %s: no x-ms-request-id header", listGroups, tc.name)
				}
				if tc.code == "" {
					return
				}
				code, err := azErrorCode(body)
				if err != nil {
					t.Fatalf("GET %s with %s: %v", listGroups, tc.name, err)
				}
				if code != tc.code {
					t.Errorf("GET %s with %s: error.code = %s, want %s", listGroups, tc.name, code, tc.code)
				}
			})
		}
		t.Run("az rest with a forged token", func(t *testing.T) {
			az.fail(t, []string{"InvalidAuthenticationToken"},
				"rest", "--method", "get", "--url", listGroups,
				"--skip-authorization-header", "--headers", "Authorization=Bearer "+forged)
		})
	})

	t.Run("operation status carries Retry-After", func(t *testing.T) {
		checkAzRetryAfter(t, cp, prefixType, prefixAPI, props)
	})

	t.Run("resource delete", func(t *testing.T) {
		az.ok(t, "resource", "delete", "-g", "rg1", "-n", "pfx1", "--resource-type", prefixType)
		az.fail(t, []string{"ResourceNotFound"}, "resource", "show", "-g", "rg1", "-n", "pfx1", "--resource-type", prefixType)
	})

	t.Run("group delete", func(t *testing.T) {
		// rg1 still holds pfx2, which goes with it.
		az.ok(t, "group", "delete", "-n", "rg1", "--yes")
		for _, path := range []string{groupID + "?api-version=" + groupAPI, prefixID("pfx2") + "?api-version=" + prefixAPI} {
			resp, err := cp.Client.Do(t.Context(), http.MethodGet, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			code, err := azErrorCode(resp.Body)
			if resp.Status != http.StatusNotFound || err != nil || code != "ResourceGroupNotFound" {
				t.Errorf("GET %s after az group delete = %d %s, want 404 ResourceGroupNotFound", path, resp.Status, resp.Body)
			}
		}
		var items []azResource
		az.json(t, &items, "resource", "list", "--resource-type", prefixType)
		if len(items) != 0 {
			t.Errorf("az resource list --resource-type %s after az group delete = %+v, want []", prefixType, items)
		}
	})
}

// checkAzGroup checks a resource group as az prints it.
func checkAzGroup(t *testing.T, what string, g azResource, id string, tags map[string]string) {
	t.Helper()
	if g.ID != id || g.Name != "rg1" || g.Type != "Microsoft.Resources/resourceGroups" || g.Location != "local" {
		t.Errorf("%s: id, name, type, location = %s, %s, %s, %s; want %s, rg1, Microsoft.Resources/resourceGroups, local",
			what, g.ID, g.Name, g.Type, g.Location, id)
	}
	if g.Properties.ProvisioningState != "Succeeded" {
		t.Errorf("%s: provisioningState = %q, want Succeeded", what, g.Properties.ProvisioningState)
	}
	if diff := cmp.Diff(tags, g.Tags); diff != "" {
		t.Errorf("%s: tags mismatch (-want +got):\n%s", what, diff)
	}
}

// checkAzPrefix checks an ipPrefix as az prints it, once provisioned.
func checkAzPrefix(t *testing.T, what string, r azResource, id string, rules []azRule, tags map[string]string) {
	t.Helper()
	name := id[strings.LastIndex(id, "/")+1:]
	if r.ID != id || r.Name != name || r.Type != "Microsoft.ManagedNetworkFabric/ipPrefixes" || r.Location != "local" {
		t.Errorf("%s: id, name, type, location = %s, %s, %s, %s; want %s, %s, Microsoft.ManagedNetworkFabric/ipPrefixes, local",
			what, r.ID, r.Name, r.Type, r.Location, id, name)
	}
	if r.Properties.ProvisioningState != "Succeeded" {
		t.Errorf("%s: provisioningState = %q, want Succeeded", what, r.Properties.ProvisioningState)
	}
	if diff := cmp.Diff(rules, r.Properties.IPPrefixRules); diff != "" {
		t.Errorf("%s: ipPrefixRules mismatch (-want +got):\n%s", what, diff)
	}
	if len(tags) == 0 {
		tags = nil
	}
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	if diff := cmp.Diff(tags, r.Tags); diff != "" {
		t.Errorf("%s: tags mismatch (-want +got):\n%s", what, diff)
	}
}

// jsonString shows an optional string as JSON: null or "…".
func jsonString(s *string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func countAz(items []azResource, id string) int {
	n := 0
	for _, it := range items {
		if it.ID == id {
			n++
		}
	}
	return n
}

func readAzBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return body
}

// checkAzRetryAfter checks that the Azure-AsyncOperation URL of a running
// operation says when to poll again. az (azure-core ARMPolling) polls that
// URL at once, then waits for the Retry-After of the last answer, or for
// its 30 s default when there is none, so without it a command that
// catches its operation InProgress once stalls for half a minute.
//
// An operation usually ends within milliseconds, so the check makes
// operations until it catches one running: ipPrefix creations in a
// scratch group, then the deletion of that group.
func checkAzRetryAfter(t *testing.T, cp *servertest.ControlPlane, prefixType, prefixAPI, props string) {
	t.Helper()
	endpoint := strings.TrimSuffix(cp.Creds.ARMEndpoint, "/")
	group := "/subscriptions/" + cp.Creds.SubscriptionID + "/resourceGroups/rgretry"
	do := func(method, path string, body any) (int, http.Header, []byte) {
		t.Helper()
		resp, err := cp.Client.Do(t.Context(), method, path, body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.Status, resp.Header, resp.Body
	}
	// poll reads an operation status URL once and reports whether it
	// caught the operation running.
	poll := func(what, statusURL string) bool {
		t.Helper()
		azCheckPollURL(t, what, "Azure-AsyncOperation", statusURL, cp.Creds.ARMEndpoint)
		status, h, body := do(http.MethodGet, strings.TrimPrefix(statusURL, endpoint), nil)
		var st struct {
			Status string `json:"status"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Status == "" {
			t.Fatalf("GET %s = %d %s, want 200 with a status", statusURL, status, body)
		}
		if st.Status != "InProgress" {
			return false
		}
		ra := h.Get("Retry-After")
		if secs, err := strconv.Atoi(ra); err != nil || secs < 0 {
			t.Errorf("%s: GET Azure-AsyncOperation while status is InProgress: Retry-After = %q, want a number of seconds (az otherwise waits 30 s)", what, ra)
		}
		return true
	}
	if status, _, body := do(http.MethodPut, group+"?api-version=2021-04-01", map[string]any{"location": "local"}); status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("PUT %s = %d %s, want 201", group, status, body)
	}
	caught := false
	for i := 0; i < 40 && !caught; i++ {
		path := fmt.Sprintf("%s/providers/%s/probe%02d?api-version=%s", group, prefixType, i, prefixAPI)
		status, h, body := do(http.MethodPut, path, json.RawMessage(`{"location":"local","properties":`+props+`}`))
		if status != http.StatusCreated {
			t.Fatalf("PUT %s = %d %s, want 201", path, status, body)
		}
		caught = poll("PUT "+path, h.Get("Azure-AsyncOperation"))
	}
	status, h, body := do(http.MethodDelete, group+"?api-version=2021-04-01", nil)
	if status != http.StatusAccepted {
		t.Fatalf("DELETE %s = %d %s, want 202", group, status, body)
	}
	caught = poll("DELETE "+group, h.Get("Azure-AsyncOperation")) || caught
	if !caught {
		t.Logf("no operation was caught InProgress; Retry-After on a running operation's status was not checked")
	}
	// Wait for the group to go, so that later steps see only rg1's resources.
	loc := h.Get("Location")
	azCheckPollURL(t, "DELETE "+group, "Location", loc, cp.Creds.ARMEndpoint)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, body := do(http.MethodGet, strings.TrimPrefix(loc, endpoint), nil)
		if status == http.StatusOK || status == http.StatusNoContent {
			break
		}
		if status != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %s, want 202 then 200 or 204", loc, status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
