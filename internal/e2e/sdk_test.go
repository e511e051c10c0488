package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestSDK drives one control plane with the unmodified Azure SDK for Go:
// azidentity logs in against the built-in issuer, armsubscriptions and
// armresources do the rest, long-running operations included.
func TestSDK(t *testing.T) {
	e := newSDKEnv(t)
	t.Run("credentials", func(t *testing.T) { t.Parallel(); testSDKCredentials(t, e) })
	t.Run("invalid token", func(t *testing.T) { t.Parallel(); testSDKInvalidToken(t, e) })
	t.Run("subscriptions", func(t *testing.T) { t.Parallel(); testSDKSubscriptions(t, e) })
	t.Run("tenants", func(t *testing.T) { t.Parallel(); testSDKTenants(t, e) })
	t.Run("providers", func(t *testing.T) { t.Parallel(); testSDKProviders(t, e) })
	t.Run("resource groups", func(t *testing.T) { t.Parallel(); testSDKResourceGroups(t, e) })
	t.Run("ipPrefix lifecycle", func(t *testing.T) { t.Parallel(); testSDKIPPrefixLifecycle(t, e) })
	t.Run("list and paging", func(t *testing.T) { t.Parallel(); testSDKListPaging(t, e) })
	t.Run("errors", func(t *testing.T) { t.Parallel(); testSDKErrors(t, e) })
	t.Run("group delete removes contents", func(t *testing.T) { t.Parallel(); testSDKGroupDeleteCascade(t, e) })
	t.Run("etags", func(t *testing.T) { t.Parallel(); testSDKETags(t, e) })
	t.Run("delete while provisioning", func(t *testing.T) { t.Parallel(); testSDKDeleteWhileProvisioning(t, e) })
}

func testSDKCredentials(t *testing.T, e *sdkEnv) {
	tests := []struct {
		name   string
		tenant string
	}{
		{"adfs", "adfs"},
		{"tenant GUID", e.cp.Creds.TenantID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred := e.credential(t, tt.tenant, e.cp.Creds.ClientSecret)
			tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{e.scope()}})
			if err != nil {
				t.Fatalf("GetToken(tenant %q) = %v", tt.tenant, err)
			}
			claims := jwtClaims(t, tok.Token)
			if aud := strings.TrimSuffix(fmt.Sprint(claims["aud"]), "/"); aud != strings.TrimSuffix(e.cp.Creds.Audience, "/") {
				t.Errorf("token aud = %q, want %q", claims["aud"], e.cp.Creds.Audience)
			}
			if claims["tid"] != e.cp.Creds.TenantID {
				t.Errorf("token tid = %v, want %v", claims["tid"], e.cp.Creds.TenantID)
			}
			if claims["appid"] != e.cp.Creds.ClientID {
				t.Errorf("token appid = %v, want %v", claims["appid"], e.cp.Creds.ClientID)
			}

			// The server accepts the token: an ARM call with the credential works.
			client, err := armsubscriptions.NewClient(cred, e.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := client.Get(t.Context(), e.sub, nil)
			if err != nil {
				t.Fatalf("Subscriptions.Get(%s) with tenant %q credential = %v", e.sub, tt.tenant, err)
			}
			if deref(got.SubscriptionID) != e.sub {
				t.Errorf("Subscriptions.Get(%s).SubscriptionID = %q, want %q", e.sub, deref(got.SubscriptionID), e.sub)
			}
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		cred := e.credential(t, "adfs", "not-the-secret")
		_, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{e.scope()}})
		var afe *azidentity.AuthenticationFailedError
		if !errors.As(err, &afe) {
			t.Fatalf("GetToken(wrong secret) = %v, want *azidentity.AuthenticationFailedError", err)
		}
		if afe.RawResponse == nil || afe.RawResponse.StatusCode < 400 || afe.RawResponse.StatusCode >= 500 {
			t.Errorf("GetToken(wrong secret) response = %v, want a 4xx", afe.RawResponse)
		}
	})
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3 (a JWT)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatalf("token payload: %v", err)
	}
	return claims
}

func testSDKInvalidToken(t *testing.T, e *sdkEnv) {
	tests := []struct {
		name  string
		token string
	}{
		{"not a JWT", "not-a-jwt"},
		{"forged JWT", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := armsubscriptions.NewClient(staticToken(tt.token), e.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.Get(t.Context(), e.sub, nil)
			checkResponseError(t, "Subscriptions.Get(invalid token)", err, http.StatusUnauthorized, "InvalidAuthenticationToken")
		})
	}
}

func testSDKSubscriptions(t *testing.T, e *sdkEnv) {
	client, err := armsubscriptions.NewClient(e.cred, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	var subs []*armsubscriptions.Subscription
	for pager := client.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("Subscriptions.NewListPager.NextPage = %v", err)
		}
		subs = append(subs, page.Value...)
	}
	type sub struct{ ID, SubscriptionID, TenantID, State string }
	want := sub{"/subscriptions/" + e.sub, e.sub, e.cp.Creds.TenantID, "Enabled"}
	var got []sub
	for _, s := range subs {
		got = append(got, sub{deref(s.ID), deref(s.SubscriptionID), deref(s.TenantID), string(deref(s.State))})
	}
	if diff := cmp.Diff([]sub{want}, got); diff != "" {
		t.Errorf("Subscriptions.NewListPager mismatch (-want +got):\n%s", diff)
	}

	one, err := client.Get(ctx, e.sub, nil)
	if err != nil {
		t.Fatalf("Subscriptions.Get(%s) = %v", e.sub, err)
	}
	if g := (sub{deref(one.ID), deref(one.SubscriptionID), deref(one.TenantID), string(deref(one.State))}); g != want {
		t.Errorf("Subscriptions.Get(%s) = %+v, want %+v", e.sub, g, want)
	}

	var locations []string
	for pager := client.NewListLocationsPager(e.sub, nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("Subscriptions.NewListLocationsPager(%s).NextPage = %v", e.sub, err)
		}
		for _, l := range page.Value {
			locations = append(locations, deref(l.Name))
		}
	}
	if !slices.Contains(locations, e.cp.Creds.Location) {
		t.Errorf("Subscriptions.NewListLocationsPager(%s) = %v, want it to contain %q", e.sub, locations, e.cp.Creds.Location)
	}

	_, err = client.Get(ctx, "00000000-0000-0000-0000-000000000001", nil)
	checkResponseError(t, "Subscriptions.Get(unknown)", err, http.StatusNotFound, "SubscriptionNotFound")
}

func testSDKTenants(t *testing.T, e *sdkEnv) {
	client, err := armsubscriptions.NewTenantsClient(e.cred, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for pager := client.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatalf("Tenants.NewListPager.NextPage = %v", err)
		}
		for _, tn := range page.Value {
			ids = append(ids, deref(tn.TenantID))
			if want := "/tenants/" + deref(tn.TenantID); deref(tn.ID) != want {
				t.Errorf("tenant id = %q, want %q", deref(tn.ID), want)
			}
		}
	}
	if want := []string{e.cp.Creds.TenantID}; !cmp.Equal(ids, want) {
		t.Errorf("Tenants.NewListPager = %v, want %v", ids, want)
	}
}

func testSDKProviders(t *testing.T, e *sdkEnv) {
	client, err := armresources.NewProvidersClient(e.sub, e.cred, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "Microsoft.ManagedNetworkFabric"
	got, err := client.Get(t.Context(), ns, nil)
	if err != nil {
		t.Fatalf("Providers.Get(%s) = %v", ns, err)
	}
	if deref(got.Namespace) != ns {
		t.Errorf("Providers.Get(%s).Namespace = %q, want %q", ns, deref(got.Namespace), ns)
	}
	var ipPrefixes *armresources.ProviderResourceType
	for _, rt := range got.ResourceTypes {
		if strings.EqualFold(deref(rt.ResourceType), "ipPrefixes") {
			ipPrefixes = rt
		}
	}
	if ipPrefixes == nil {
		t.Fatalf("Providers.Get(%s).ResourceTypes has no ipPrefixes", ns)
	}
	if len(ipPrefixes.APIVersions) == 0 || deref(ipPrefixes.APIVersions[0]) != fabricAPIVersion {
		var vs []string
		for _, v := range ipPrefixes.APIVersions {
			vs = append(vs, deref(v))
		}
		t.Errorf("ipPrefixes apiVersions = %v, want %s first", vs, fabricAPIVersion)
	}
	if !slices.ContainsFunc(ipPrefixes.Locations, func(l *string) bool { return strings.EqualFold(deref(l), e.cp.Creds.Location) }) {
		t.Errorf("ipPrefixes locations do not include %q", e.cp.Creds.Location)
	}

	reg, err := client.Register(t.Context(), ns, nil)
	if err != nil {
		t.Fatalf("Providers.Register(%s) = %v", ns, err)
	}
	if deref(reg.RegistrationState) != "Registered" {
		t.Errorf("Providers.Register(%s).RegistrationState = %q, want Registered", ns, deref(reg.RegistrationState))
	}
}

func testSDKResourceGroups(t *testing.T, e *sdkEnv) {
	client := e.groups(t)
	ctx := t.Context()
	const name = "sdk-rg-Lifecycle"
	wantID := "/subscriptions/" + e.sub + "/resourceGroups/" + name

	var raw *http.Response
	created, err := client.CreateOrUpdate(runtime.WithCaptureResponse(ctx, &raw), name, armresources.ResourceGroup{
		Location: to.Ptr(e.cp.Creds.Location),
		Tags:     tags(map[string]string{"env": "dev"}),
	}, nil)
	if err != nil {
		t.Fatalf("ResourceGroups.CreateOrUpdate(%s) = %v", name, err)
	}
	if raw.StatusCode != http.StatusCreated {
		t.Errorf("ResourceGroups.CreateOrUpdate(%s) status = %d, want 201", name, raw.StatusCode)
	}
	type group struct {
		ID, Name, Type, Location, State string
		Tags                            map[string]string
	}
	view := func(g armresources.ResourceGroup) group {
		out := group{ID: deref(g.ID), Name: deref(g.Name), Type: deref(g.Type), Location: deref(g.Location), Tags: plainTags(g.Tags)}
		if g.Properties != nil {
			out.State = deref(g.Properties.ProvisioningState)
		}
		return out
	}
	want := group{wantID, name, "Microsoft.Resources/resourceGroups", e.cp.Creds.Location, "Succeeded", map[string]string{"env": "dev"}}
	if diff := cmp.Diff(want, view(created.ResourceGroup)); diff != "" {
		t.Errorf("ResourceGroups.CreateOrUpdate(%s) mismatch (-want +got):\n%s", name, diff)
	}

	// A second PUT is an update.
	if _, err := client.CreateOrUpdate(runtime.WithCaptureResponse(ctx, &raw), name, armresources.ResourceGroup{
		Location: to.Ptr(e.cp.Creds.Location),
		Tags:     tags(map[string]string{"env": "dev"}),
	}, nil); err != nil {
		t.Fatalf("ResourceGroups.CreateOrUpdate(%s) again = %v", name, err)
	}
	if raw.StatusCode != http.StatusOK {
		t.Errorf("ResourceGroups.CreateOrUpdate(%s) again status = %d, want 200", name, raw.StatusCode)
	}

	// Names are case-insensitive.
	got, err := client.Get(ctx, strings.ToUpper(name), nil)
	if err != nil {
		t.Fatalf("ResourceGroups.Get(%s) = %v", strings.ToUpper(name), err)
	}
	if g := view(got.ResourceGroup); g.Tags["env"] != "dev" || g.Type != want.Type || g.State != "Succeeded" {
		t.Errorf("ResourceGroups.Get(%s) = %+v, want %+v", strings.ToUpper(name), g, want)
	}

	for _, tc := range []struct {
		name string
		want bool
	}{{name, true}, {strings.ToLower(name), true}, {"sdk-rg-missing", false}} {
		ex, err := client.CheckExistence(ctx, tc.name, nil)
		if err != nil {
			t.Fatalf("ResourceGroups.CheckExistence(%s) = %v", tc.name, err)
		}
		if ex.Success != tc.want {
			t.Errorf("ResourceGroups.CheckExistence(%s) = %v, want %v", tc.name, ex.Success, tc.want)
		}
	}

	// PATCH replaces the tags wholesale.
	upd, err := client.Update(ctx, name, armresources.ResourceGroupPatchable{
		Tags: tags(map[string]string{"env": "prod", "team": "net"}),
	}, nil)
	if err != nil {
		t.Fatalf("ResourceGroups.Update(%s) = %v", name, err)
	}
	if diff := cmp.Diff(map[string]string{"env": "prod", "team": "net"}, plainTags(upd.Tags)); diff != "" {
		t.Errorf("ResourceGroups.Update(%s) tags mismatch (-want +got):\n%s", name, diff)
	}
	got, err = client.Get(ctx, name, nil)
	if err != nil {
		t.Fatalf("ResourceGroups.Get(%s) = %v", name, err)
	}
	if diff := cmp.Diff(map[string]string{"env": "prod", "team": "net"}, plainTags(got.Tags)); diff != "" {
		t.Errorf("ResourceGroups.Get(%s) after Update tags mismatch (-want +got):\n%s", name, diff)
	}

	var listed []string
	for pager := client.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("ResourceGroups.NewListPager.NextPage = %v", err)
		}
		for _, g := range page.Value {
			listed = append(listed, deref(g.ID))
		}
	}
	if n := countFold(listed, wantID); n != 1 {
		t.Errorf("ResourceGroups.NewListPager lists %s %d times, want once (got %v)", wantID, n, listed)
	}

	poller, err := client.BeginDelete(runtime.WithCaptureResponse(ctx, &raw), name, nil)
	if err != nil {
		t.Fatalf("ResourceGroups.BeginDelete(%s) = %v", name, err)
	}
	if raw.StatusCode != http.StatusAccepted || raw.Header.Get("Location") == "" || raw.Header.Get("Azure-AsyncOperation") == "" {
		t.Errorf("ResourceGroups.BeginDelete(%s) = %d Location=%q Azure-AsyncOperation=%q, want 202 with both",
			name, raw.StatusCode, raw.Header.Get("Location"), raw.Header.Get("Azure-AsyncOperation"))
	}
	if _, err := poller.PollUntilDone(ctx, pollOptions); err != nil {
		t.Fatalf("ResourceGroups.BeginDelete(%s).PollUntilDone = %v", name, err)
	}
	_, err = client.Get(ctx, name, nil)
	checkResponseError(t, fmt.Sprintf("ResourceGroups.Get(%s) after delete", name), err, http.StatusNotFound, "ResourceGroupNotFound")
	ex, err := client.CheckExistence(ctx, name, nil)
	if err != nil || ex.Success {
		t.Errorf("ResourceGroups.CheckExistence(%s) after delete = %v, %v, want false, nil", name, ex.Success, err)
	}
}

func countFold(list []string, s string) int {
	n := 0
	for _, x := range list {
		if strings.EqualFold(x, s) {
			n++
		}
	}
	return n
}

func testSDKIPPrefixLifecycle(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	const group = "sdk-ipprefix"
	e.createGroup(t, group)
	client := e.resources(t)
	id := e.ipPrefixID(group, "prefix-1")

	sent := []prefixRule{
		{Action: "permit", SequenceNumber: 10, NetworkPrefix: "10.20.0.0/16", Condition: "greaterthanorequalto", SubnetMaskLength: "24"},
		{Action: "DENY", SequenceNumber: 20, NetworkPrefix: "2001:db8::/32"},
		{Action: "Permit", SequenceNumber: 4294967295, NetworkPrefix: "0.0.0.0/0", Condition: "range", SubnetMaskLength: "8-32"},
	}
	canonical := []prefixRule{
		{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.20.0.0/16", Condition: "GreaterThanOrEqualTo", SubnetMaskLength: "24"},
		{Action: "Deny", SequenceNumber: 20, NetworkPrefix: "2001:db8::/32"},
		{Action: "Permit", SequenceNumber: 4294967295, NetworkPrefix: "0.0.0.0/0", Condition: "Range", SubnetMaskLength: "8-32"},
	}

	var raw *http.Response
	body := ipPrefix(e.cp.Creds.Location, sent)
	body.Tags = tags(map[string]string{"env": "dev"})
	poller, err := client.BeginCreateOrUpdateByID(runtime.WithCaptureResponse(ctx, &raw), id, fabricAPIVersion, body, nil)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s) = %v", id, err)
	}
	if raw.StatusCode != http.StatusCreated || raw.Header.Get("Azure-AsyncOperation") == "" {
		t.Errorf("BeginCreateOrUpdateByID(%s) = %d Azure-AsyncOperation=%q, want 201 with Azure-AsyncOperation",
			id, raw.StatusCode, raw.Header.Get("Azure-AsyncOperation"))
	}
	// The 201 body is the resource, Accepted.
	var initial struct {
		Properties ipPrefixProperties `json:"properties"`
	}
	if err := json.Unmarshal(readBody(t, raw), &initial); err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s) body: %v", id, err)
	}
	if initial.Properties.ProvisioningState != "Accepted" {
		t.Errorf("BeginCreateOrUpdateByID(%s) provisioningState = %q, want Accepted", id, initial.Properties.ProvisioningState)
	}
	done, err := poller.PollUntilDone(ctx, pollOptions)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s).PollUntilDone = %v", id, err)
	}
	checkIPPrefix(t, "BeginCreateOrUpdateByID.PollUntilDone", done.GenericResource, id, canonical, map[string]string{"env": "dev"})
	if p := propertiesOf(t, done.GenericResource); p.ConfigurationState != "Succeeded" || p.AdministrativeState != "Enabled" {
		t.Errorf("ipPrefix configurationState, administrativeState = %q, %q, want Succeeded, Enabled", p.ConfigurationState, p.AdministrativeState)
	}

	got, err := client.GetByID(runtime.WithCaptureResponse(ctx, &raw), id, fabricAPIVersion, nil)
	if err != nil {
		t.Fatalf("GetByID(%s) = %v", id, err)
	}
	checkIPPrefix(t, "GetByID", got.GenericResource, id, canonical, map[string]string{"env": "dev"})
	var envelope struct {
		ETag       string `json:"etag"`
		SystemData struct {
			CreatedBy, CreatedByType, CreatedAt, LastModifiedBy, LastModifiedByType, LastModifiedAt string
		} `json:"systemData"`
	}
	if err := json.Unmarshal(readBody(t, raw), &envelope); err != nil {
		t.Fatalf("GetByID(%s) body: %v", id, err)
	}
	if h := raw.Header.Get("ETag"); h == "" || h != envelope.ETag {
		t.Errorf("GetByID(%s) ETag header = %q, body etag = %q, want equal and non-empty", id, h, envelope.ETag)
	}
	if sd := envelope.SystemData; sd.CreatedBy == "" || sd.CreatedByType == "" || sd.CreatedAt == "" || sd.LastModifiedAt == "" {
		t.Errorf("GetByID(%s) systemData = %+v, want createdBy, createdByType, createdAt and lastModifiedAt", id, sd)
	}

	// az resource update/tag PUTs back what it got, read-only fields and
	// all; they are ignored.
	roundTrip, err := client.BeginCreateOrUpdateByID(runtime.WithCaptureResponse(ctx, &raw), id, fabricAPIVersion, got.GenericResource, nil)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s, the GET result) = %v", id, err)
	}
	if raw.StatusCode != http.StatusOK {
		t.Errorf("BeginCreateOrUpdateByID(%s, the GET result) status = %d, want 200", id, raw.StatusCode)
	}
	rt, err := roundTrip.PollUntilDone(ctx, pollOptions)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s, the GET result).PollUntilDone = %v", id, err)
	}
	checkIPPrefix(t, "BeginCreateOrUpdateByID(the GET result)", rt.GenericResource, id, canonical, map[string]string{"env": "dev"})

	// Names are case-insensitive on the way in.
	if _, err := client.GetByID(ctx, strings.ToUpper(id[:strings.LastIndex(id, "/")])+"/PREFIX-1", fabricAPIVersion, nil); err != nil {
		t.Errorf("GetByID(upper-cased id) = %v", err)
	}

	ex, err := client.CheckExistenceByID(ctx, id, fabricAPIVersion, nil)
	if err != nil || !ex.Success {
		t.Errorf("CheckExistenceByID(%s) = %v, %v, want true, nil", id, ex.Success, err)
	}

	// A tags-only PATCH is synchronous.
	upd, err := client.BeginUpdateByID(runtime.WithCaptureResponse(ctx, &raw), id, fabricAPIVersion,
		armresources.GenericResource{Tags: tags(map[string]string{"env": "prod", "owner": "sdk"})}, nil)
	if err != nil {
		t.Fatalf("BeginUpdateByID(%s, tags) = %v", id, err)
	}
	if raw.StatusCode != http.StatusOK {
		t.Errorf("BeginUpdateByID(%s, tags) status = %d, want 200", id, raw.StatusCode)
	}
	updated, err := upd.PollUntilDone(ctx, pollOptions)
	if err != nil {
		t.Fatalf("BeginUpdateByID(%s, tags).PollUntilDone = %v", id, err)
	}
	checkIPPrefix(t, "BeginUpdateByID(tags)", updated.GenericResource, id, canonical, map[string]string{"env": "prod", "owner": "sdk"})

	// A properties PATCH is a long-running operation; arrays are replaced.
	newRules := []prefixRule{{Action: "deny", SequenceNumber: 5, NetworkPrefix: "192.168.0.0/24", Condition: "equalto", SubnetMaskLength: "28"}}
	upd, err = client.BeginUpdateByID(runtime.WithCaptureResponse(ctx, &raw), id, fabricAPIVersion,
		armresources.GenericResource{Properties: map[string]any{"ipPrefixRules": newRules}}, nil)
	if err != nil {
		t.Fatalf("BeginUpdateByID(%s, properties) = %v", id, err)
	}
	if raw.StatusCode != http.StatusAccepted || raw.Header.Get("Location") == "" || raw.Header.Get("Azure-AsyncOperation") == "" {
		t.Errorf("BeginUpdateByID(%s, properties) = %d Location=%q Azure-AsyncOperation=%q, want 202 with both",
			id, raw.StatusCode, raw.Header.Get("Location"), raw.Header.Get("Azure-AsyncOperation"))
	}
	updated, err = upd.PollUntilDone(ctx, pollOptions)
	if err != nil {
		t.Fatalf("BeginUpdateByID(%s, properties).PollUntilDone = %v", id, err)
	}
	wantRules := []prefixRule{{Action: "Deny", SequenceNumber: 5, NetworkPrefix: "192.168.0.0/24", Condition: "EqualTo", SubnetMaskLength: "28"}}
	checkIPPrefix(t, "BeginUpdateByID(properties)", updated.GenericResource, id, wantRules, map[string]string{"env": "prod", "owner": "sdk"})
	got, err = client.GetByID(ctx, id, fabricAPIVersion, nil)
	if err != nil {
		t.Fatalf("GetByID(%s) = %v", id, err)
	}
	checkIPPrefix(t, "GetByID after update", got.GenericResource, id, wantRules, map[string]string{"env": "prod", "owner": "sdk"})

	// Removing the required rules with a merge patch is refused.
	_, err = client.BeginUpdateByID(ctx, id, fabricAPIVersion, armresources.GenericResource{
		Properties: map[string]any{"ipPrefixRules": nil},
	}, nil)
	checkResponseError(t, "BeginUpdateByID(ipPrefixRules: null)", err, http.StatusBadRequest, "InvalidRequestContent")

	// An invalid PATCH changes nothing.
	_, err = client.BeginUpdateByID(ctx, id, fabricAPIVersion, armresources.GenericResource{
		Properties: map[string]any{"ipPrefixRules": []prefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.1/8"}}},
	}, nil)
	checkResponseError(t, "BeginUpdateByID(host bits)", err, http.StatusBadRequest, "InvalidRequestContent")

	got, err = client.GetByID(ctx, id, fabricAPIVersion, nil)
	if err != nil {
		t.Fatalf("GetByID(%s) = %v", id, err)
	}
	checkIPPrefix(t, "GetByID after refused updates", got.GenericResource, id, wantRules, map[string]string{"env": "prod", "owner": "sdk"})

	del, err := client.BeginDeleteByID(runtime.WithCaptureResponse(ctx, &raw), id, fabricAPIVersion, nil)
	if err != nil {
		t.Fatalf("BeginDeleteByID(%s) = %v", id, err)
	}
	if raw.StatusCode != http.StatusOK && raw.StatusCode != http.StatusNoContent {
		t.Errorf("BeginDeleteByID(%s) status = %d, want 200 or 204", id, raw.StatusCode)
	}
	if _, err := del.PollUntilDone(ctx, pollOptions); err != nil {
		t.Fatalf("BeginDeleteByID(%s).PollUntilDone = %v", id, err)
	}
	_, err = client.GetByID(ctx, id, fabricAPIVersion, nil)
	checkResponseError(t, fmt.Sprintf("GetByID(%s) after delete", id), err, http.StatusNotFound, "ResourceNotFound")
	ex, err = client.CheckExistenceByID(ctx, id, fabricAPIVersion, nil)
	if err != nil || ex.Success {
		t.Errorf("CheckExistenceByID(%s) after delete = %v, %v, want false, nil", id, ex.Success, err)
	}

	// Deleting what is not there is 204, and still a success to the SDK.
	del, err = client.BeginDeleteByID(runtime.WithCaptureResponse(ctx, &raw), id, fabricAPIVersion, nil)
	if err != nil {
		t.Fatalf("BeginDeleteByID(%s) again = %v", id, err)
	}
	if raw.StatusCode != http.StatusNoContent {
		t.Errorf("BeginDeleteByID(%s) again status = %d, want 204", id, raw.StatusCode)
	}
	if _, err := del.PollUntilDone(ctx, pollOptions); err != nil {
		t.Errorf("BeginDeleteByID(%s) again .PollUntilDone = %v", id, err)
	}
}

// readBody reads a captured response's body; the SDK has already read it
// and left a copy behind.
func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := runtime.Payload(resp)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

// checkIPPrefix compares an ipPrefix the SDK returned with what is expected
// of a provisioned one.
func checkIPPrefix(t *testing.T, op string, got armresources.GenericResource, id string, rules []prefixRule, wantTags map[string]string) {
	t.Helper()
	type view struct {
		ID, Name, Type, Location string
		Tags                     map[string]string
		State                    string
		Rules                    []prefixRule
	}
	p := propertiesOf(t, got)
	g := view{deref(got.ID), deref(got.Name), deref(got.Type), deref(got.Location), plainTags(got.Tags), p.ProvisioningState, p.IPPrefixRules}
	w := view{id, id[strings.LastIndex(id, "/")+1:], ipPrefixType, "local", wantTags, "Succeeded", rules}
	if diff := cmp.Diff(w, g, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s(%s) mismatch (-want +got):\n%s", op, id, diff)
	}
}

func testSDKListPaging(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	const group, other = "sdk-paging", "sdk-paging-other"
	e.createGroup(t, group)
	e.createGroup(t, other)
	rules := []prefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8"}}

	var ids []string
	for i := range 25 {
		ids = append(ids, e.ipPrefixID(group, fmt.Sprintf("pfx-%02d", i)))
	}
	otherID := e.ipPrefixID(other, "pfx-other")
	e.createIPPrefixes(t, append(slices.Clone(ids), otherID), rules)
	// Tag the even ones, for the tag filters.
	client := e.resources(t)
	var even []string
	for i, id := range ids {
		parity := "odd"
		if i%2 == 0 {
			parity = "even"
			even = append(even, id)
		}
		p, err := client.BeginUpdateByID(ctx, id, fabricAPIVersion, armresources.GenericResource{Tags: tags(map[string]string{"parity": parity})}, nil)
		if err != nil {
			t.Fatalf("BeginUpdateByID(%s, tags) = %v", id, err)
		}
		if _, err := p.PollUntilDone(ctx, pollOptions); err != nil {
			t.Fatalf("BeginUpdateByID(%s, tags).PollUntilDone = %v", id, err)
		}
	}
	byType := fmt.Sprintf("resourceType eq '%s'", ipPrefixType)

	tests := []struct {
		name       string
		group      string // "": list the subscription
		filter     string
		top        int32
		want       []string
		exclusive  bool // want is the whole list, not a subset
		wantPages  int  // at least this many pages
		checkTypes bool
	}{
		{name: "group by type, top 10", group: group, filter: byType, top: 10, want: ids, exclusive: true, wantPages: 3, checkTypes: true},
		{name: "group, no filter", group: group, want: ids, exclusive: true},
		{name: "subscription by type, top 10", filter: byType, top: 10, want: append(slices.Clone(ids), otherID), wantPages: 3, checkTypes: true},
		{name: "subscription by group", filter: fmt.Sprintf("resourceGroup eq '%s'", other), want: []string{otherID}, exclusive: true},
		{name: "name eq", group: group, filter: "name eq 'pfx-07'", want: ids[7:8], exclusive: true},
		{name: "substringof", group: group, filter: "substringof('x-1', name)", top: 4, want: ids[10:20], exclusive: true, wantPages: 3},
		{name: "tag name and value", filter: "tagName eq 'parity' and tagValue eq 'even'", top: 5, want: even, exclusive: true, wantPages: 3},
		{name: "type and group", filter: byType + fmt.Sprintf(" and resourceGroup eq '%s'", group), top: 7, want: ids, exclusive: true, wantPages: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			pages := 0
			add := func(items []*armresources.GenericResourceExpanded) {
				pages++
				if tt.top > 0 && len(items) > int(tt.top) {
					t.Errorf("page %d has %d items, want at most $top=%d", pages, len(items), tt.top)
				}
				for _, it := range items {
					got = append(got, deref(it.ID))
					if tt.checkTypes && deref(it.Type) != ipPrefixType {
						t.Errorf("listed %s of type %q, want %q", deref(it.ID), deref(it.Type), ipPrefixType)
					}
				}
			}
			var top *int32
			if tt.top > 0 {
				top = to.Ptr(tt.top)
			}
			var filter *string
			if tt.filter != "" {
				filter = to.Ptr(tt.filter)
			}
			if tt.group != "" {
				for pager := client.NewListByResourceGroupPager(tt.group, &armresources.ClientListByResourceGroupOptions{Filter: filter, Top: top}); pager.More(); {
					page, err := pager.NextPage(ctx)
					if err != nil {
						t.Fatalf("NewListByResourceGroupPager(%s, %q, top %d).NextPage = %v", tt.group, tt.filter, tt.top, err)
					}
					add(page.Value)
				}
			} else {
				for pager := client.NewListPager(&armresources.ClientListOptions{Filter: filter, Top: top}); pager.More(); {
					page, err := pager.NextPage(ctx)
					if err != nil {
						t.Fatalf("NewListPager(%q, top %d).NextPage = %v", tt.filter, tt.top, err)
					}
					add(page.Value)
				}
			}
			if pages < tt.wantPages {
				t.Errorf("list(%q, top %d) took %d pages, want at least %d", tt.filter, tt.top, pages, tt.wantPages)
			}
			seen := map[string]int{}
			for _, id := range got {
				seen[strings.ToLower(id)]++
			}
			for id, n := range seen {
				if n > 1 {
					t.Errorf("list(%q, top %d) returned %s %d times, want once", tt.filter, tt.top, id, n)
				}
			}
			if tt.exclusive {
				if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
					t.Errorf("list(%q, top %d) mismatch (-want +got):\n%s", tt.filter, tt.top, diff)
				}
				return
			}
			for _, id := range tt.want {
				if seen[strings.ToLower(id)] != 1 {
					t.Errorf("list(%q, top %d) returned %s %d times, want once", tt.filter, tt.top, id, seen[strings.ToLower(id)])
				}
			}
		})
	}

	t.Run("expand", func(t *testing.T) {
		pager := client.NewListByResourceGroupPager(other, &armresources.ClientListByResourceGroupOptions{
			Expand: to.Ptr("createdTime,changedTime,provisioningState"),
		})
		var got []*armresources.GenericResourceExpanded
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatalf("NewListByResourceGroupPager(%s, $expand).NextPage = %v", other, err)
			}
			got = append(got, page.Value...)
		}
		if len(got) != 1 {
			t.Fatalf("NewListByResourceGroupPager(%s, $expand) = %d items, want 1", other, len(got))
		}
		if it := got[0]; it.CreatedTime == nil || it.ChangedTime == nil || deref(it.ProvisioningState) != "Succeeded" {
			t.Errorf("NewListByResourceGroupPager(%s, $expand) = createdTime %v, changedTime %v, provisioningState %q; want times and Succeeded",
				other, it.CreatedTime, it.ChangedTime, deref(it.ProvisioningState))
		}
	})

	t.Run("missing group", func(t *testing.T) {
		pager := client.NewListByResourceGroupPager("sdk-no-such-group", nil)
		_, err := pager.NextPage(ctx)
		checkResponseError(t, "NewListByResourceGroupPager(missing).NextPage", err, http.StatusNotFound, "ResourceGroupNotFound")
	})
}

func testSDKErrors(t *testing.T, e *sdkEnv) {
	const group = "sdk-errors"
	e.createGroup(t, group)
	client := e.resources(t)
	good := []prefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8"}}

	tests := []struct {
		name       string
		id         string
		apiVersion string
		props      map[string]any
		location   string
		wantStatus int
		wantCode   string
	}{
		{name: "host bits", props: rulesOf(prefixRule{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.1/24"}),
			wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "not a CIDR", props: rulesOf(prefixRule{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0"}),
			wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "bad action", props: rulesOf(prefixRule{Action: "Allow", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8"}),
			wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "duplicate sequence numbers", props: rulesOf(
			prefixRule{Action: "Permit", SequenceNumber: 7, NetworkPrefix: "10.0.0.0/8"},
			prefixRule{Action: "Deny", SequenceNumber: 7, NetworkPrefix: "11.0.0.0/8"}),
			wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "sequence number zero", props: rulesOf(prefixRule{Action: "Permit", SequenceNumber: 0, NetworkPrefix: "10.0.0.0/8"}),
			wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "sequence number too big", props: rulesOf(prefixRule{Action: "Permit", SequenceNumber: 4294967296, NetworkPrefix: "10.0.0.0/8"}),
			wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "mask length below prefix", props: rulesOf(prefixRule{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/16", Condition: "EqualTo", SubnetMaskLength: "8"}),
			wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "no rules", props: map[string]any{}, wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "empty rules", props: map[string]any{"ipPrefixRules": []any{}}, wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "bad name", id: e.ipPrefixID(group, "1-starts-with-digit"), wantStatus: 400, wantCode: "InvalidResourceName"},
		{name: "name too short", id: e.ipPrefixID(group, "ab"), wantStatus: 400, wantCode: "InvalidResourceName"},
		{name: "missing group", id: e.ipPrefixID("sdk-no-such-group", "prefix-1"), wantStatus: 404, wantCode: "ResourceGroupNotFound"},
		{name: "unsupported api-version", apiVersion: "2017-01-01", wantStatus: 400, wantCode: "NoRegisteredProviderFound"},
		{name: "sequence number is a string", props: map[string]any{"ipPrefixRules": []any{
			map[string]any{"action": "Permit", "sequenceNumber": "one", "networkPrefix": "10.0.0.0/8"}}},
			wantStatus: 400, wantCode: "InvalidRequestContent"},
		{name: "unknown location", location: "elsewhere", wantStatus: 400, wantCode: "LocationNotAvailableForResourceType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := firstNonEmpty(tt.id, e.ipPrefixID(group, "prefix-"+strings.ReplaceAll(tt.name, " ", "-")))
			apiVersion := firstNonEmpty(tt.apiVersion, fabricAPIVersion)
			body := armresources.GenericResource{Location: to.Ptr(firstNonEmpty(tt.location, e.cp.Creds.Location)), Properties: tt.props}
			if tt.props == nil {
				body.Properties = rulesOf(good...)
			}
			_, err := client.BeginCreateOrUpdateByID(t.Context(), id, apiVersion, body, nil)
			checkResponseError(t, fmt.Sprintf("BeginCreateOrUpdateByID(%s, %s)", id, apiVersion), err, tt.wantStatus, tt.wantCode)

			// Nothing was created.
			_, err = client.GetByID(t.Context(), id, fabricAPIVersion, nil)
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
				t.Errorf("GetByID(%s) after a failed create = %v, want 404", id, err)
			}
		})
	}

	reads := []struct {
		name       string
		id         string
		apiVersion string
		wantStatus int
		wantCode   string
	}{
		{"missing resource", e.ipPrefixID(group, "sdk-nothing-here"), fabricAPIVersion, 404, "ResourceNotFound"},
		{"missing group", e.ipPrefixID("sdk-no-such-group", "prefix-1"), fabricAPIVersion, 404, "ResourceGroupNotFound"},
		{"unsupported api-version", e.ipPrefixID(group, "sdk-nothing-here"), "2017-01-01", 400, "NoRegisteredProviderFound"},
		{"unknown type", fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ManagedNetworkFabric/noSuchThings/x1x", e.sub, group), fabricAPIVersion, 400, "InvalidResourceType"},
	}
	for _, tt := range reads {
		t.Run("GetByID "+tt.name, func(t *testing.T) {
			_, err := client.GetByID(t.Context(), tt.id, tt.apiVersion, nil)
			checkResponseError(t, fmt.Sprintf("GetByID(%s, %s)", tt.id, tt.apiVersion), err, tt.wantStatus, tt.wantCode)
		})
	}

	t.Run("PATCH missing resource", func(t *testing.T) {
		id := e.ipPrefixID(group, "sdk-nothing-here")
		_, err := client.BeginUpdateByID(t.Context(), id, fabricAPIVersion, armresources.GenericResource{Tags: tags(map[string]string{"a": "b"})}, nil)
		checkResponseError(t, fmt.Sprintf("BeginUpdateByID(%s)", id), err, http.StatusNotFound, "ResourceNotFound")
	})
	t.Run("DELETE in missing group", func(t *testing.T) {
		id := e.ipPrefixID("sdk-no-such-group", "prefix-1")
		_, err := client.BeginDeleteByID(t.Context(), id, fabricAPIVersion, nil)
		checkResponseError(t, fmt.Sprintf("BeginDeleteByID(%s)", id), err, http.StatusNotFound, "ResourceGroupNotFound")
	})
	for _, name := range []string{"ends-with-dot.", "bad*name", strings.Repeat("a", 91)} {
		t.Run("resource group name "+name[:min(len(name), 20)], func(t *testing.T) {
			_, err := e.groups(t).CreateOrUpdate(t.Context(), name, armresources.ResourceGroup{Location: to.Ptr(e.cp.Creds.Location)}, nil)
			checkResponseError(t, fmt.Sprintf("ResourceGroups.CreateOrUpdate(%q)", name), err, http.StatusBadRequest, "InvalidResourceGroupName")
		})
	}
	t.Run("resource group missing", func(t *testing.T) {
		_, err := e.groups(t).Get(t.Context(), "sdk-no-such-group", nil)
		checkResponseError(t, "ResourceGroups.Get(sdk-no-such-group)", err, http.StatusNotFound, "ResourceGroupNotFound")
	})
}

func rulesOf(rules ...prefixRule) map[string]any {
	return map[string]any{"ipPrefixRules": rules}
}

func testSDKGroupDeleteCascade(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	const group = "sdk-cascade"
	e.createGroup(t, group)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.ipPrefixID(group, fmt.Sprintf("doomed-%d", i)))
	}
	e.createIPPrefixes(t, ids, []prefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8"}})

	groups := e.groups(t)
	poller, err := groups.BeginDelete(ctx, group, nil)
	if err != nil {
		t.Fatalf("ResourceGroups.BeginDelete(%s) = %v", group, err)
	}
	if _, err := poller.PollUntilDone(ctx, pollOptions); err != nil {
		t.Fatalf("ResourceGroups.BeginDelete(%s).PollUntilDone = %v", group, err)
	}
	client := e.resources(t)
	for _, id := range ids {
		_, err := client.GetByID(ctx, id, fabricAPIVersion, nil)
		checkResponseError(t, fmt.Sprintf("GetByID(%s) after group delete", id), err, http.StatusNotFound, "ResourceGroupNotFound")
	}

	// A new group of the same name starts empty.
	e.createGroup(t, group)
	for _, id := range ids {
		_, err := client.GetByID(ctx, id, fabricAPIVersion, nil)
		checkResponseError(t, fmt.Sprintf("GetByID(%s) in the recreated group", id), err, http.StatusNotFound, "ResourceNotFound")
	}
	pager := client.NewListPager(&armresources.ClientListOptions{Filter: to.Ptr(fmt.Sprintf("resourceGroup eq '%s'", group))})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("NewListPager(resourceGroup eq %s).NextPage = %v", group, err)
		}
		for _, it := range page.Value {
			t.Errorf("NewListPager(resourceGroup eq %s) lists %s, want nothing", group, deref(it.ID))
		}
	}
}

func testSDKETags(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	const group = "sdk-etags"
	e.createGroup(t, group)
	client := e.resources(t)
	id := e.ipPrefixID(group, "tagged")
	rules := []prefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8"}}
	e.createIPPrefix(t, id, rules)

	currentETag := func() string {
		t.Helper()
		var raw *http.Response
		if _, err := client.GetByID(runtime.WithCaptureResponse(ctx, &raw), id, fabricAPIVersion, nil); err != nil {
			t.Fatalf("GetByID(%s) = %v", id, err)
		}
		tag := raw.Header.Get("ETag")
		if tag == "" {
			t.Fatalf("GetByID(%s) has no ETag header", id)
		}
		return tag
	}
	stale := currentETag()

	// Any write moves the ETag on.
	upd, err := client.BeginUpdateByID(ctx, id, fabricAPIVersion, armresources.GenericResource{Tags: tags(map[string]string{"v": "2"})}, nil)
	if err != nil {
		t.Fatalf("BeginUpdateByID(%s) = %v", id, err)
	}
	if _, err := upd.PollUntilDone(ctx, pollOptions); err != nil {
		t.Fatalf("BeginUpdateByID(%s).PollUntilDone = %v", id, err)
	}
	fresh := currentETag()
	if fresh == stale {
		t.Fatalf("ETag after PATCH = %s, want it to differ from %s", fresh, stale)
	}
	withHeader := func(k, v string) context.Context {
		return runtime.WithHTTPHeader(ctx, http.Header{k: {v}})
	}
	body := ipPrefix(e.cp.Creds.Location, rules)

	preconditions := []struct {
		name   string
		id     string
		header string
		value  string
	}{
		{"PUT If-Match stale", id, "If-Match", stale},
		{"PUT If-None-Match * on existing", id, "If-None-Match", "*"},
		{"PUT If-None-Match current", id, "If-None-Match", fresh},
		{"PUT If-Match * on missing", e.ipPrefixID(group, "absent"), "If-Match", "*"},
		{"PUT If-Match on missing", e.ipPrefixID(group, "absent"), "If-Match", fresh},
	}
	for _, tt := range preconditions {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.BeginCreateOrUpdateByID(withHeader(tt.header, tt.value), tt.id, fabricAPIVersion, body, nil)
			checkResponseError(t, fmt.Sprintf("BeginCreateOrUpdateByID(%s: %s)", tt.header, tt.value), err, http.StatusPreconditionFailed, "PreconditionFailed")
		})
	}
	t.Run("PATCH If-Match stale", func(t *testing.T) {
		_, err := client.BeginUpdateByID(withHeader("If-Match", stale), id, fabricAPIVersion,
			armresources.GenericResource{Tags: tags(map[string]string{"v": "x"})}, nil)
		checkResponseError(t, "BeginUpdateByID(If-Match stale)", err, http.StatusPreconditionFailed, "PreconditionFailed")
	})
	t.Run("DELETE If-Match stale", func(t *testing.T) {
		_, err := client.BeginDeleteByID(withHeader("If-Match", stale), id, fabricAPIVersion, nil)
		checkResponseError(t, "BeginDeleteByID(If-Match stale)", err, http.StatusPreconditionFailed, "PreconditionFailed")
	})
	// The failed preconditions changed nothing.
	if got := currentETag(); got != fresh {
		t.Errorf("ETag after refused writes = %s, want %s", got, fresh)
	}

	// The raw protocol agrees with the SDK.
	path := id + "?api-version=" + fabricAPIVersion
	resp := alSend(t, e.cp.Client, http.MethodPut, path, http.Header{"If-Match": {stale}}, map[string]any{"location": e.cp.Creds.Location, "properties": rulesOf(rules...)})
	if resp.Status != http.StatusPreconditionFailed || errorCode(resp.Body) != "PreconditionFailed" {
		t.Errorf("raw PUT If-Match stale = %d %s, want 412 PreconditionFailed", resp.Status, resp.Body)
	}

	// A matching If-Match goes through: 200 for the update.
	var raw *http.Response
	poller, err := client.BeginCreateOrUpdateByID(runtime.WithCaptureResponse(withHeader("If-Match", fresh), &raw), id, fabricAPIVersion, body, nil)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(If-Match current) = %v", err)
	}
	if raw.StatusCode != http.StatusOK {
		t.Errorf("BeginCreateOrUpdateByID(If-Match current) status = %d, want 200", raw.StatusCode)
	}
	if tag := raw.Header.Get("ETag"); tag == "" || tag == fresh {
		t.Errorf("BeginCreateOrUpdateByID(If-Match current) ETag = %q, want a new one (not %q)", tag, fresh)
	}
	done, err := poller.PollUntilDone(ctx, pollOptions)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(If-Match current).PollUntilDone = %v", err)
	}
	checkIPPrefix(t, "BeginCreateOrUpdateByID(If-Match current)", done.GenericResource, id, rules, nil)

	// If-None-Match: * creates what does not exist.
	absent := e.ipPrefixID(group, "fresh-one")
	poller, err = client.BeginCreateOrUpdateByID(runtime.WithCaptureResponse(withHeader("If-None-Match", "*"), &raw), absent, fabricAPIVersion, body, nil)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s, If-None-Match *) = %v", absent, err)
	}
	if raw.StatusCode != http.StatusCreated {
		t.Errorf("BeginCreateOrUpdateByID(%s, If-None-Match *) status = %d, want 201", absent, raw.StatusCode)
	}
	if _, err := poller.PollUntilDone(ctx, pollOptions); err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s, If-None-Match *).PollUntilDone = %v", absent, err)
	}

	// DELETE with the current ETag deletes.
	del, err := client.BeginDeleteByID(withHeader("If-Match", currentETag()), id, fabricAPIVersion, nil)
	if err != nil {
		t.Fatalf("BeginDeleteByID(If-Match current) = %v", err)
	}
	if _, err := del.PollUntilDone(ctx, pollOptions); err != nil {
		t.Fatalf("BeginDeleteByID(If-Match current).PollUntilDone = %v", err)
	}
	_, err = client.GetByID(ctx, id, fabricAPIVersion, nil)
	checkResponseError(t, fmt.Sprintf("GetByID(%s) after delete", id), err, http.StatusNotFound, "ResourceNotFound")
}

func testSDKDeleteWhileProvisioning(t *testing.T, e *sdkEnv) {
	ctx := t.Context()
	const group = "sdk-racing"
	e.createGroup(t, group)
	client := e.resources(t)
	id := e.ipPrefixID(group, "short-lived")
	create, err := client.BeginCreateOrUpdateByID(ctx, id, fabricAPIVersion,
		ipPrefix(e.cp.Creds.Location, []prefixRule{{Action: "Permit", SequenceNumber: 1, NetworkPrefix: "10.0.0.0/8"}}), nil)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s) = %v", id, err)
	}
	del, err := client.BeginDeleteByID(ctx, id, fabricAPIVersion, nil)
	if err != nil {
		t.Fatalf("BeginDeleteByID(%s) = %v", id, err)
	}
	if _, err := del.PollUntilDone(ctx, pollOptions); err != nil {
		t.Fatalf("BeginDeleteByID(%s).PollUntilDone = %v", id, err)
	}
	// However the create ends (canceled, or succeeded and then its final
	// GET finds nothing), it must not bring the resource back.
	if _, err := create.PollUntilDone(ctx, pollOptions); err == nil {
		t.Errorf("BeginCreateOrUpdateByID(%s).PollUntilDone after delete = nil error, want the create to report failure", id)
	}
	_, err = client.GetByID(ctx, id, fabricAPIVersion, nil)
	checkResponseError(t, fmt.Sprintf("GetByID(%s) after delete", id), err, http.StatusNotFound, "ResourceNotFound")
}
