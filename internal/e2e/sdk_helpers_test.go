package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/citadel-cloud/citadel/internal/servertest"
)

// fabricAPIVersion is the Microsoft.ManagedNetworkFabric version the
// tests speak.
const fabricAPIVersion = "2025-07-15"

const ipPrefixType = "Microsoft.ManagedNetworkFabric/ipPrefixes"

// pollOptions polls quickly; the server's Retry-After still wins where it
// sends one.
var pollOptions = &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}

// sdkEnv is a control plane and what the Azure SDK needs to reach it.
type sdkEnv struct {
	cp    *servertest.ControlPlane
	sub   string
	cloud cloud.Configuration
	http  *http.Client
	cred  azcore.TokenCredential
	opts  *arm.ClientOptions
}

func newSDKEnv(t *testing.T) *sdkEnv {
	t.Helper()
	cp := servertest.Start(t)
	e := &sdkEnv{cp: cp, sub: cp.Creds.SubscriptionID, http: cp.HTTPClient(t)}
	e.cloud = cloud.Configuration{
		ActiveDirectoryAuthorityHost: cp.Creds.ARMEndpoint,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {
				Audience: cp.Creds.Audience,
				Endpoint: strings.TrimSuffix(cp.Creds.ARMEndpoint, "/"),
			},
		},
	}
	e.cred = e.credential(t, "adfs", cp.Creds.ClientSecret)
	e.opts = e.armOptions()
	return e
}

func (e *sdkEnv) clientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{Cloud: e.cloud, Transport: e.http}
}

func (e *sdkEnv) armOptions() *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: e.clientOptions()}
}

// credential is a service principal login as az or Terraform would do it:
// tenant "adfs" (AD FS mode) or the tenant's GUID.
func (e *sdkEnv) credential(t *testing.T, tenant, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	opts := &azidentity.ClientSecretCredentialOptions{ClientOptions: e.clientOptions()}
	if tenant != "adfs" {
		opts.DisableInstanceDiscovery = true
	}
	cred, err := azidentity.NewClientSecretCredential(tenant, e.cp.Creds.ClientID, secret, opts)
	if err != nil {
		t.Fatalf("NewClientSecretCredential(%q) = %v", tenant, err)
	}
	return cred
}

func (e *sdkEnv) scope() string {
	return strings.TrimSuffix(e.cp.Creds.Audience, "/") + "/.default"
}

func (e *sdkEnv) groups(t *testing.T) *armresources.ResourceGroupsClient {
	t.Helper()
	c, err := armresources.NewResourceGroupsClient(e.sub, e.cred, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *sdkEnv) resources(t *testing.T) *armresources.Client {
	t.Helper()
	c, err := armresources.NewClient(e.sub, e.cred, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *sdkEnv) ipPrefixID(group, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s", e.sub, group, ipPrefixType, name)
}

// createGroup creates a resource group in the control plane's location.
func (e *sdkEnv) createGroup(t *testing.T, name string) {
	t.Helper()
	_, err := e.groups(t).CreateOrUpdate(t.Context(), name, armresources.ResourceGroup{Location: to.Ptr(e.cp.Creds.Location)}, nil)
	if err != nil {
		t.Fatalf("ResourceGroups.CreateOrUpdate(%q) = %v", name, err)
	}
}

// createIPPrefix creates an ipPrefix and waits until it is provisioned.
func (e *sdkEnv) createIPPrefix(t *testing.T, id string, rules []prefixRule) armresources.GenericResource {
	t.Helper()
	poller, err := e.resources(t).BeginCreateOrUpdateByID(t.Context(), id, fabricAPIVersion, ipPrefix(e.cp.Creds.Location, rules), nil)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s) = %v", id, err)
	}
	resp, err := poller.PollUntilDone(t.Context(), pollOptions)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdateByID(%s).PollUntilDone = %v", id, err)
	}
	return resp.GenericResource
}

// createIPPrefixes starts every create at once and waits for them all: the
// server asks pollers to wait a second between polls.
func (e *sdkEnv) createIPPrefixes(t *testing.T, ids []string, rules []prefixRule) {
	t.Helper()
	client := e.resources(t)
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		poller, err := client.BeginCreateOrUpdateByID(t.Context(), id, fabricAPIVersion, ipPrefix(e.cp.Creds.Location, rules), nil)
		if err != nil {
			t.Fatalf("BeginCreateOrUpdateByID(%s) = %v", id, err)
		}
		wg.Go(func() {
			_, errs[i] = poller.PollUntilDone(t.Context(), pollOptions)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("PollUntilDone of %d ipPrefixes: %v", len(ids), err)
	}
}

// prefixRule is an ipPrefixRules entry (arm-contract §4.2).
type prefixRule struct {
	Action           string `json:"action"`
	SequenceNumber   int64  `json:"sequenceNumber"`
	NetworkPrefix    string `json:"networkPrefix"`
	Condition        string `json:"condition,omitempty"`
	SubnetMaskLength string `json:"subnetMaskLength,omitempty"`
}

// ipPrefixProperties is what the server returns in an ipPrefix's properties.
type ipPrefixProperties struct {
	Annotation          string       `json:"annotation,omitempty"`
	IPPrefixRules       []prefixRule `json:"ipPrefixRules"`
	ProvisioningState   string       `json:"provisioningState"`
	ConfigurationState  string       `json:"configurationState,omitempty"`
	AdministrativeState string       `json:"administrativeState,omitempty"`
}

func ipPrefix(location string, rules []prefixRule) armresources.GenericResource {
	return armresources.GenericResource{
		Location:   to.Ptr(location),
		Properties: map[string]any{"ipPrefixRules": rules},
	}
}

// propertiesOf decodes the SDK's untyped properties.
func propertiesOf(t *testing.T, r armresources.GenericResource) ipPrefixProperties {
	t.Helper()
	b, err := json.Marshal(r.Properties)
	if err != nil {
		t.Fatal(err)
	}
	var p ipPrefixProperties
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("properties of %s: %v in %s", deref(r.ID), err, b)
	}
	return p
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// tags turns a plain map into the SDK's.
func tags(m map[string]string) map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = to.Ptr(v)
	}
	return out
}

// plainTags turns the SDK's tag map into a plain one.
func plainTags(m map[string]*string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = deref(v)
	}
	return out
}

// checkResponseError fails unless err is an ARM error with this status and code.
func checkResponseError(t *testing.T, op string, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("%s = %v, want *azcore.ResponseError %d %s", op, err, status, code)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Errorf("%s = %d %s, want %d %s\n%v", op, re.StatusCode, re.ErrorCode, status, code, err)
	}
}

// errorCode is the code of an ARM error envelope.
func errorCode(body []byte) string {
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &env)
	return env.Error.Code
}

// staticToken is a credential that hands out a fixed, unverifiable token.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// firstNonEmpty is the first non-empty string.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
