package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// lockAPIVersion is the Microsoft.Authorization/locks version az uses
// (arm-contract §3.5).
const lockAPIVersion = "2016-09-01"

// Built-in role GUIDs (arm-contract §3.7, authz/roles.go).
const (
	rbacOwner  = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	rbacReader = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
)

// rbacTimeout bounds how long a role assignment or lock change may take to
// show: the server learns of it through a watch, in milliseconds.
const rbacTimeout = 5 * time.Second

// rbacRule is a valid ipPrefix rule for the resources these tests create.
var rbacRule = []prefixRule{{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.0.0.0/8", Condition: "GreaterThanOrEqualTo", SubnetMaskLength: "24"}}

// rbacPrincipal is a service principal other than the admin, with the
// clients it calls ARM through.
type rbacPrincipal struct {
	AppID, ObjectID, Secret string
	cred                    azcore.TokenCredential
}

// newRBACPrincipal creates a service principal with no role assignment.
func newRBACPrincipal(t *testing.T, e *sdkEnv, name string) *rbacPrincipal {
	t.Helper()
	sp, secret, err := e.cp.Identity.CreateServicePrincipal(t.Context(), name)
	if err != nil {
		t.Fatalf("CreateServicePrincipal(%q) = %v", name, err)
	}
	cred, err := azidentity.NewClientSecretCredential("adfs", sp.AppID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: e.clientOptions()})
	if err != nil {
		t.Fatalf("NewClientSecretCredential(%s) = %v", sp.AppID, err)
	}
	return &rbacPrincipal{AppID: sp.AppID, ObjectID: sp.ObjectID, Secret: secret, cred: cred}
}

// rbacClients are the SDK clients of one credential.
type rbacClients struct {
	definitions *armauthorization.RoleDefinitionsClient
	assignments *armauthorization.RoleAssignmentsClient
	groups      *armresources.ResourceGroupsClient
	resources   *armresources.Client
}

func newRBACClients(t *testing.T, e *sdkEnv, cred azcore.TokenCredential) rbacClients {
	t.Helper()
	var c rbacClients
	var errs [4]error
	c.definitions, errs[0] = armauthorization.NewRoleDefinitionsClient(cred, e.opts)
	c.assignments, errs[1] = armauthorization.NewRoleAssignmentsClient(e.sub, cred, e.opts)
	c.groups, errs[2] = armresources.NewResourceGroupsClient(e.sub, cred, e.opts)
	c.resources, errs[3] = armresources.NewClient(e.sub, cred, e.opts)
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *sdkEnv) rbacGroupID(name string) string {
	return "/subscriptions/" + e.sub + "/resourceGroups/" + name
}

func (e *sdkEnv) rbacRoleID(guid string) string {
	return "/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/roleDefinitions/" + guid
}

// rbacEventually calls f every 50 ms until it returns nil, and fails the test
// with f's last error if that takes longer than rbacTimeout.
func rbacEventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(rbacTimeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not the case after %v: %v", what, rbacTimeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rbacError is an ARM error envelope as a client received it.
type rbacError struct {
	Status  int
	Code    string
	Message string
}

// rbacErrorOf reads the envelope of an SDK error; ok is false if err is
// not an *azcore.ResponseError.
func rbacErrorOf(err error) (rbacError, bool) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return rbacError{}, false
	}
	out := rbacError{Status: re.StatusCode, Code: re.ErrorCode}
	if re.RawResponse != nil {
		body, _ := runtime.Payload(re.RawResponse)
		var env azErrorEnvelope
		if json.Unmarshal(body, &env) == nil && env.Error != nil {
			out.Message = env.Error.Message
		}
	}
	return out, true
}

// rbacCheckError fails unless err is an ARM error with this status and, if
// code is not empty, this code.
func rbacCheckError(t *testing.T, op string, err error, status int, code string) rbacError {
	t.Helper()
	got, ok := rbacErrorOf(err)
	if !ok {
		t.Fatalf("%s = %v, want *azcore.ResponseError %d %s", op, err, status, code)
	}
	if got.Status != status || code != "" && got.Code != code {
		t.Errorf("%s = %d %s (%s), want %d %s", op, got.Status, got.Code, got.Message, status, firstNonEmpty(code, "(any code)"))
	}
	return got
}

// authorizationFailed is Azure's 403 message (authz.Decision.Err).
func rbacForbiddenMessage(objectID, action, scope string) string {
	return fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid.",
		objectID, objectID, action, scope)
}

// scopeLocked is Azure's 409 message (authz.LockError); kind is "delete" or
// "write".
func rbacLockedMessage(scope, kind, locked string) string {
	return fmt.Sprintf("The scope '%s' cannot perform %s operation because following scope(s) are locked: '%s'. Please remove the lock and try again.",
		scope, kind, locked)
}

// checkForbidden fails unless err is the 403 AuthorizationFailed that
// Azure answers when objectID may not perform action over scope. Azure
// itself is not consistent about the casing of the action and scope it
// echoes, so the message is compared ignoring case.
func rbacCheckForbidden(t *testing.T, op string, err error, objectID, action, scope string) {
	t.Helper()
	got := rbacCheckError(t, op, err, http.StatusForbidden, "AuthorizationFailed")
	if want := rbacForbiddenMessage(objectID, action, scope); !strings.EqualFold(got.Message, want) {
		t.Errorf("%s: message = %q, want %q", op, got.Message, want)
	}
}

// checkLocked fails unless err is the 409 ScopeLocked of a lock at locked
// blocking a kind ("delete" or "write") operation over scope.
func rbacCheckLocked(t *testing.T, op string, err error, scope, kind, locked string) {
	t.Helper()
	got := rbacCheckError(t, op, err, http.StatusConflict, "ScopeLocked")
	if want := rbacLockedMessage(scope, kind, locked); !strings.EqualFold(got.Message, want) {
		t.Errorf("%s: message = %q, want %q", op, got.Message, want)
	}
}

// isLocked reports whether err is a 409 ScopeLocked.
func rbacIsLocked(err error) bool {
	got, ok := rbacErrorOf(err)
	return ok && got.Status == http.StatusConflict && got.Code == "ScopeLocked"
}

// lockPath is the URL path of lock name at scope, with its api-version.
func rbacLockPath(scope, name string) string {
	return scope + "/providers/Microsoft.Authorization/locks/" + name + "?api-version=" + lockAPIVersion
}

// putLock creates or replaces a management lock with the admin's token.
func (e *sdkEnv) rbacPutLock(t *testing.T, scope, name, level string) {
	t.Helper()
	body := map[string]any{"properties": map[string]any{"level": level, "notes": "rbac_test: " + name}}
	resp, err := e.cp.Client.Do(t.Context(), http.MethodPut, rbacLockPath(scope, name), body)
	if err != nil {
		t.Fatalf("PUT lock %s at %s: %v", name, scope, err)
	}
	if err := resp.Expect(http.StatusOK, http.StatusCreated); err != nil {
		t.Fatalf("PUT lock %s (%s) at %s: %v", name, level, scope, err)
	}
	var got struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		Type       string `json:"type"`
		Properties struct {
			Level string `json:"level"`
			Notes string `json:"notes"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("PUT lock %s at %s = %s: %v", name, scope, resp.Body, err)
	}
	wantID := scope + "/providers/Microsoft.Authorization/locks/" + name
	if !strings.EqualFold(got.ID, wantID) || got.Name != name || got.Type != "Microsoft.Authorization/locks" || got.Properties.Level != level {
		t.Errorf("PUT lock = id %q, name %q, type %q, level %q; want %q, %q, Microsoft.Authorization/locks, %q",
			got.ID, got.Name, got.Type, got.Properties.Level, wantID, name, level)
	}
}

// deleteLock deletes a management lock with the admin's token.
func (e *sdkEnv) rbacDeleteLock(t *testing.T, scope, name string) {
	t.Helper()
	resp, err := e.cp.Client.Do(t.Context(), http.MethodDelete, rbacLockPath(scope, name), nil)
	if err != nil {
		t.Fatalf("DELETE lock %s at %s: %v", name, scope, err)
	}
	if err := resp.Expect(http.StatusOK, http.StatusNoContent); err != nil {
		t.Fatalf("DELETE lock %s at %s: %v", name, scope, err)
	}
}

// deleteGroup deletes a resource group and waits until it is gone.
func rbacDeleteGroup(t *testing.T, c rbacClients, name string) error {
	t.Helper()
	poller, err := c.groups.BeginDelete(t.Context(), name, nil)
	if err != nil {
		return err
	}
	_, err = poller.PollUntilDone(t.Context(), pollOptions)
	return err
}

// deleteByID deletes a resource and waits until it is gone.
func rbacDeleteByID(t *testing.T, c rbacClients, id string) error {
	t.Helper()
	poller, err := c.resources.BeginDeleteByID(t.Context(), id, fabricAPIVersion, nil)
	if err != nil {
		return err
	}
	_, err = poller.PollUntilDone(t.Context(), pollOptions)
	return err
}

// putIPPrefix creates or replaces an ipPrefix and waits until it is
// provisioned.
func rbacPutIPPrefix(t *testing.T, c rbacClients, id, location string) error {
	t.Helper()
	poller, err := c.resources.BeginCreateOrUpdateByID(t.Context(), id, fabricAPIVersion, ipPrefix(location, rbacRule), nil)
	if err != nil {
		return err
	}
	_, err = poller.PollUntilDone(t.Context(), pollOptions)
	return err
}

// groupNames lists the resource groups the credential of c may see.
func rbacGroupNames(t *testing.T, c rbacClients) ([]string, error) {
	t.Helper()
	var names []string
	for pager := c.groups.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			return nil, err
		}
		for _, g := range page.Value {
			names = append(names, deref(g.Name))
		}
	}
	return names, nil
}
