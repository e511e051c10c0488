package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// rwRouteKinds are the kinds of mutating route that frontdoor.route
// (internal/frontdoor/route.go) can return, each a handler and a method:
//
//   - crud on a resource group (routeGroup, empty tail),
//   - crud on a typed resource in a subscription or group (route, empty
//     tail), and on an extension resource below another resource,
//   - a POST action on a resource (route, one tail segment),
//   - POST register and unregister of a provider (routeNamespace).
//
// A mutating request that matches none of them is refused before
// authorization (405, 404 or 400) and is exercised by the "refused early"
// rows. Adding a mutating route means adding its kind here and a row for it
// to the table in TestEveryMutatingRouteIsAuthorizedAndAudited: the test
// fails until both are done. Adding a resource type means adding rows for
// its PUT, PATCH and DELETE (and its actions), which the test checks
// against the types the server registers.
var rwRouteKinds = []string{
	"PUT resource group", "PATCH resource group", "DELETE resource group",
	"PUT resource", "PATCH resource", "DELETE resource",
	"PUT extension resource", "PATCH extension resource", "DELETE extension resource",
	"POST action",
	"POST provider register", "POST provider unregister",
}

// rwEarly marks a row refused before the route is known: without a route
// there is no action to authorize, so every caller gets the same answer.
const rwEarly = "refused early"

// rwRow is one mutating request of the walk.
type rwRow struct {
	name   string
	kind   string // one of rwRouteKinds, or rwEarly
	typ    string // the resource type of the route, for the coverage check
	method string
	path   string // with the api-version
	body   any
	action string // the operation authorized and recorded; "" for rwEarly rows
	status int    // what the admin gets
	code   string // the admin's error code, if any
}

// TestEveryMutatingRouteIsAuthorizedAndAudited walks every kind of
// mutating route the front door has. For each request, (a) a principal
// with no role assignment is refused with 403 AuthorizationFailed unless
// the request is refused before routing, (b) the admin gets what the route
// does, and (c) each of the two requests leaves exactly one activity-log
// record with its x-ms-correlation-request-id (a long-running one at least
// one), naming the action authorized and the caller.
func TestEveryMutatingRouteIsAuthorizedAndAudited(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	cp := servertest.Start(t)
	admin := alAdmin(t, cp)
	nobody := alNewPrincipal(t, cp, "routewalk-no-role")
	sub, loc := cp.Creds.SubscriptionID, cp.Creds.Location

	const (
		lockAPI     = "2016-09-01"
		authAPI     = "2022-04-01"
		readerRole  = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
		fabricNS    = "Microsoft.ManagedNetworkFabric"
		authNS      = "Microsoft.Authorization"
		groupType   = "Microsoft.Resources/resourceGroups"
		groupAction = "Microsoft.Resources/subscriptions/resourceGroups"
	)
	group := "/subscriptions/" + sub + "/resourceGroups/rw-rg"
	prefix := group + "/providers/" + ipPrefixType + "/rw-prefix"
	// Locks live in a group of their own that nothing deletes: a lock
	// being removed may still apply for a moment, and must not refuse a
	// later DELETE of the walk.
	lockGroup := "/subscriptions/" + sub + "/resourceGroups/rw-locks"
	lockedPrefix := lockGroup + "/providers/" + ipPrefixType + "/rw-locked"
	groupLock := lockGroup + "/providers/" + authNS + "/locks/rw-lock"
	prefixLock := lockedPrefix + "/providers/" + authNS + "/locks/rw-prefix-lock"
	roleDef := "/subscriptions/" + sub + "/providers/" + authNS + "/roleDefinitions/" + uuid.NewString()
	assignment := group + "/providers/" + authNS + "/roleAssignments/" + uuid.NewString()
	deny := group + "/providers/" + authNS + "/denyAssignments/" + uuid.NewString()
	rules := []prefixRule{{Action: "Permit", SequenceNumber: 10, NetworkPrefix: "10.0.0.0/8"}}

	// The lock targets exist before the walk; creating them is not part of it.
	for _, setup := range []struct {
		path string
		body any
	}{
		{lockGroup + "?api-version=" + alGroupAPI, map[string]any{"location": loc}},
		{lockedPrefix + "?api-version=" + fabricAPIVersion, ipPrefix(loc, rules)},
	} {
		r := alSend(t, admin.Client, http.MethodPut, setup.path, nil, setup.body)
		if r.Status != http.StatusCreated {
			t.Fatalf("PUT %s = %d %s, want 201", setup.path, r.Status, r.Body)
		}
		alWaitOperation(t, admin.Client, "PUT "+setup.path, r)
	}

	v := func(id, api string) string { return id + "?api-version=" + api }
	rows := []rwRow{
		{"PUT group", "PUT resource group", groupType, "PUT", v(group, alGroupAPI),
			map[string]any{"location": loc}, groupAction + "/write", 201, ""},
		{"PATCH group", "PATCH resource group", groupType, "PATCH", v(group, alGroupAPI),
			map[string]any{"tags": map[string]string{"walk": "yes"}}, groupAction + "/write", 200, ""},
		{"PUT ipPrefix", "PUT resource", ipPrefixType, "PUT", v(prefix, fabricAPIVersion),
			ipPrefix(loc, rules), ipPrefixType + "/write", 201, ""},
		{"PATCH ipPrefix", "PATCH resource", ipPrefixType, "PATCH", v(prefix, fabricAPIVersion),
			map[string]any{"properties": map[string]any{"annotation": "walked"}}, ipPrefixType + "/write", 202, ""},
		// ipPrefixes have no actions: the route exists all the same.
		{"POST action on ipPrefix", "POST action", ipPrefixType, "POST", v(prefix+"/nosuchAction", fabricAPIVersion),
			map[string]any{}, ipPrefixType + "/nosuchAction/action", 404, "InvalidAction"},
		{"PUT lock on group", "PUT resource", authNS + "/locks", "PUT", v(groupLock, lockAPI),
			map[string]any{"properties": map[string]any{"level": "CanNotDelete", "notes": "walk"}}, authNS + "/locks/write", 201, ""},
		{"PATCH lock on group", "PATCH resource", authNS + "/locks", "PATCH", v(groupLock, lockAPI),
			map[string]any{"properties": map[string]any{"notes": "walked"}}, authNS + "/locks/write", 200, ""},
		{"DELETE lock on group", "DELETE resource", authNS + "/locks", "DELETE", v(groupLock, lockAPI),
			nil, authNS + "/locks/delete", 200, ""},
		{"PUT lock on ipPrefix", "PUT extension resource", authNS + "/locks", "PUT", v(prefixLock, lockAPI),
			map[string]any{"properties": map[string]any{"level": "CanNotDelete"}}, authNS + "/locks/write", 201, ""},
		{"PATCH lock on ipPrefix", "PATCH extension resource", authNS + "/locks", "PATCH", v(prefixLock, lockAPI),
			map[string]any{"properties": map[string]any{"notes": "walked"}}, authNS + "/locks/write", 200, ""},
		{"DELETE lock on ipPrefix", "DELETE extension resource", authNS + "/locks", "DELETE", v(prefixLock, lockAPI),
			nil, authNS + "/locks/delete", 200, ""},
		{"PUT custom role definition", "PUT resource", authNS + "/roleDefinitions", "PUT", v(roleDef, authAPI),
			map[string]any{"properties": map[string]any{
				"roleName": "routewalk " + uuid.NewString(), "assignableScopes": []string{"/subscriptions/" + sub},
				"permissions": []any{map[string]any{"actions": []string{"Microsoft.Resources/subscriptions/resourceGroups/read"}}},
			}}, authNS + "/roleDefinitions/write", 201, ""},
		{"PATCH custom role definition", "PATCH resource", authNS + "/roleDefinitions", "PATCH", v(roleDef, authAPI),
			map[string]any{"properties": map[string]any{"description": "walked"}}, authNS + "/roleDefinitions/write", 200, ""},
		{"PUT role assignment at group", "PUT resource", authNS + "/roleAssignments", "PUT", v(assignment, authAPI),
			map[string]any{"properties": map[string]any{
				"roleDefinitionId": "/subscriptions/" + sub + "/providers/" + authNS + "/roleDefinitions/" + readerRole,
				"principalId":      uuid.NewString(), "principalType": "ServicePrincipal",
			}}, authNS + "/roleAssignments/write", 201, ""},
		{"PATCH role assignment at group", "PATCH resource", authNS + "/roleAssignments", "PATCH", v(assignment, authAPI),
			map[string]any{"properties": map[string]any{"description": "walked"}}, authNS + "/roleAssignments/write", 200, ""},
		{"DELETE role assignment at group", "DELETE resource", authNS + "/roleAssignments", "DELETE", v(assignment, authAPI),
			nil, authNS + "/roleAssignments/delete", 200, ""},
		{"DELETE custom role definition", "DELETE resource", authNS + "/roleDefinitions", "DELETE", v(roleDef, authAPI),
			nil, authNS + "/roleDefinitions/delete", 200, ""},
		// Only the control plane writes deny assignments.
		{"PUT deny assignment", "PUT resource", authNS + "/denyAssignments", "PUT", v(deny, authAPI),
			map[string]any{"properties": map[string]any{}}, authNS + "/denyAssignments/write", 400, "DenyAssignmentsAreReadOnly"},
		{"PATCH missing deny assignment", "PATCH resource", authNS + "/denyAssignments", "PATCH", v(deny, authAPI),
			map[string]any{"properties": map[string]any{}}, authNS + "/denyAssignments/write", 404, "ResourceNotFound"},
		{"DELETE missing deny assignment", "DELETE resource", authNS + "/denyAssignments", "DELETE", v(deny, authAPI),
			nil, authNS + "/denyAssignments/delete", 204, ""},
		{"POST register", "POST provider register", "", "POST", v("/subscriptions/"+sub+"/providers/"+fabricNS+"/register", alGroupAPI),
			nil, fabricNS + "/register/action", 200, ""},
		{"POST unregister", "POST provider unregister", "", "POST", v("/subscriptions/"+sub+"/providers/"+fabricNS+"/unregister", alGroupAPI),
			nil, fabricNS + "/unregister/action", 200, ""},
		{"DELETE ipPrefix", "DELETE resource", ipPrefixType, "DELETE", v(prefix, fabricAPIVersion),
			nil, ipPrefixType + "/delete", 200, ""},
		{"DELETE missing ipPrefix", "DELETE resource", ipPrefixType, "DELETE", v(prefix, fabricAPIVersion),
			nil, ipPrefixType + "/delete", 204, ""},
		// The type's name rule is checked after authorization.
		{"PUT ipPrefix with a bad name", "PUT resource", ipPrefixType, "PUT", v(group+"/providers/"+ipPrefixType+"/9bad", fabricAPIVersion),
			ipPrefix(loc, rules), ipPrefixType + "/write", 400, "InvalidResourceName"},
		// ARM's path grammar is checked before anything else.
		{"PUT group with a bad name", rwEarly, "", "PUT", v("/subscriptions/"+sub+"/resourceGroups/rw-bad.", alGroupAPI),
			map[string]any{"location": loc}, "", 400, "InvalidResourceGroupName"},
		{"POST on a group", rwEarly, "", "POST", v(group, alGroupAPI),
			nil, "", 405, "MethodNotAllowed"},
	}
	deleteGroup := rwRow{"DELETE group", "DELETE resource group", groupType, "DELETE", v(group, alGroupAPI),
		nil, groupAction + "/delete", 202, ""}
	// Microsoft.NetworkCloud and its custom locations, without hardware: a
	// cluster manager's whole life, and refusals and absent resources for
	// the rest (TestNetworkCloud drives them with simulated BMCs).
	const ncNS, elType = "Microsoft.NetworkCloud", "Microsoft.ExtendedLocation/customLocations"
	nc := func(typ, name string) string { return v(group+"/providers/"+ncNS+"/"+typ+"/"+name, ncAPI) }
	cm := nc("clusterManagers", "rw-cm")
	fabricController := "/subscriptions/" + sub + "/resourceGroups/fabric/providers/" + fabricNS + "/networkFabricControllers/nfc"
	rows = append(rows,
		rwRow{"PUT clusterManager", "PUT resource", ncNS + "/clusterManagers", "PUT", cm,
			map[string]any{"location": loc, "properties": map[string]any{"fabricControllerId": fabricController}}, ncNS + "/clusterManagers/write", 201, ""},
		rwRow{"PATCH clusterManager", "PATCH resource", ncNS + "/clusterManagers", "PATCH", cm,
			map[string]any{"tags": map[string]string{"walk": "yes"}}, ncNS + "/clusterManagers/write", 200, ""}, // tags only: nothing to provision
		rwRow{"PUT customLocation", "PUT resource", elType, "PUT", v(group+"/providers/"+elType+"/rw-cm-clustermanager", "2021-08-15"),
			map[string]any{"location": loc, "properties": map[string]any{}}, elType + "/write", 405, "SystemManagedResource"},
		rwRow{"PATCH customLocation", "PATCH resource", elType, "PATCH", v(group+"/providers/"+elType+"/rw-cm-clustermanager", "2021-08-15"),
			map[string]any{"tags": map[string]string{"walk": "yes"}}, elType + "/write", 200, ""},
		rwRow{"DELETE customLocation", "DELETE resource", elType, "DELETE", v(group+"/providers/"+elType+"/rw-cm-clustermanager", "2021-08-15"),
			nil, elType + "/delete", 405, "SystemManagedResource"},
		rwRow{"DELETE clusterManager", "DELETE resource", ncNS + "/clusterManagers", "DELETE", cm,
			nil, ncNS + "/clusterManagers/delete", 202, ""},
		rwRow{"PUT cluster without extendedLocation", "PUT resource", ncNS + "/clusters", "PUT", nc("clusters", "rw-cluster"),
			map[string]any{"location": loc, "properties": map[string]any{}}, ncNS + "/clusters/write", 400, "InvalidRequestContent"},
		rwRow{"PATCH missing cluster", "PATCH resource", ncNS + "/clusters", "PATCH", nc("clusters", "rw-cluster"),
			map[string]any{"tags": map[string]string{"walk": "yes"}}, ncNS + "/clusters/write", 404, "ResourceNotFound"},
		rwRow{"POST deploy on missing cluster", "POST action", ncNS + "/clusters", "POST", nc("clusters", "rw-cluster/deploy"),
			map[string]any{}, ncNS + "/clusters/deploy/action", 404, "ResourceNotFound"},
		rwRow{"POST issueAgentToken on missing cluster", "POST action", ncNS + "/clusters", "POST", nc("clusters", "rw-cluster/issueAgentToken"),
			map[string]any{}, ncNS + "/clusters/issueAgentToken/action", 404, "ResourceNotFound"},
		rwRow{"POST updateVersion on missing cluster", "POST action", ncNS + "/clusters", "POST", nc("clusters", "rw-cluster/updateVersion"),
			map[string]any{"targetClusterVersion": "9.9.9"}, ncNS + "/clusters/updateVersion/action", 404, "ResourceNotFound"},
		rwRow{"POST continueUpdateVersion on missing cluster", "POST action", ncNS + "/clusters", "POST", nc("clusters", "rw-cluster/continueUpdateVersion"),
			map[string]any{}, ncNS + "/clusters/continueUpdateVersion/action", 404, "ResourceNotFound"},
		rwRow{"DELETE missing cluster", "DELETE resource", ncNS + "/clusters", "DELETE", nc("clusters", "rw-cluster"),
			nil, ncNS + "/clusters/delete", 204, ""},
		rwRow{"PUT rackSku", "PUT resource", ncNS + "/rackSkus", "PUT", v("/subscriptions/"+sub+"/providers/"+ncNS+"/rackSkus/rw-sku", ncAPI),
			map[string]any{"properties": map[string]any{}}, ncNS + "/rackSkus/write", 405, "SystemManagedResource"},
		rwRow{"PATCH rackSku", "PATCH resource", ncNS + "/rackSkus", "PATCH", v("/subscriptions/"+sub+"/providers/"+ncNS+"/rackSkus/citadel-single", ncAPI),
			map[string]any{"properties": map[string]any{}}, ncNS + "/rackSkus/write", 404, "ResourceNotFound"},
		rwRow{"DELETE rackSku", "DELETE resource", ncNS + "/rackSkus", "DELETE", v("/subscriptions/"+sub+"/providers/"+ncNS+"/rackSkus/citadel-single", ncAPI),
			nil, ncNS + "/rackSkus/delete", 405, "SystemManagedResource"},
	)
	for _, typ := range []string{"racks", "bareMetalMachines", "storageAppliances"} {
		id := nc(typ, "rwmissing")
		rows = append(rows,
			rwRow{"PUT " + typ, "PUT resource", ncNS + "/" + typ, "PUT", id, map[string]any{"location": loc, "properties": map[string]any{}}, ncNS + "/" + typ + "/write", 405, "SystemManagedResource"},
			rwRow{"PATCH missing " + typ, "PATCH resource", ncNS + "/" + typ, "PATCH", id, map[string]any{"tags": map[string]string{"walk": "yes"}}, ncNS + "/" + typ + "/write", 404, "ResourceNotFound"},
			rwRow{"DELETE " + typ, "DELETE resource", ncNS + "/" + typ, "DELETE", id, nil, ncNS + "/" + typ + "/delete", 405, "SystemManagedResource"},
		)
	}
	for _, action := range []string{"runReadCommands", "enableRemoteVendorManagement", "disableRemoteVendorManagement"} {
		rows = append(rows, rwRow{"POST " + action + " on missing appliance", "POST action", ncNS + "/storageAppliances", "POST",
			nc("storageAppliances", "rwmissing/"+action), map[string]any{}, ncNS + "/storageAppliances/" + action + "/action", 404, "ResourceNotFound"})
	}
	// A volume needs a cluster's custom location; without one its PUT is
	// refused naming extendedLocation (TestStorage drives the rest).
	rows = append(rows,
		rwRow{"PUT volume without extendedLocation", "PUT resource", ncNS + "/volumes", "PUT", nc("volumes", "rw-volume"),
			map[string]any{"location": loc, "properties": map[string]any{"sizeMiB": 1}}, ncNS + "/volumes/write", 400, "InvalidRequestContent"},
		rwRow{"PATCH missing volume", "PATCH resource", ncNS + "/volumes", "PATCH", nc("volumes", "rw-volume"),
			map[string]any{"tags": map[string]string{"walk": "yes"}}, ncNS + "/volumes/write", 404, "ResourceNotFound"},
		rwRow{"POST attach on missing volume", "POST action", ncNS + "/volumes", "POST", nc("volumes", "rw-volume/attach"),
			map[string]any{}, ncNS + "/volumes/attach/action", 404, "ResourceNotFound"},
		rwRow{"POST detach on missing volume", "POST action", ncNS + "/volumes", "POST", nc("volumes", "rw-volume/detach"),
			map[string]any{}, ncNS + "/volumes/detach/action", 404, "ResourceNotFound"},
		rwRow{"DELETE missing volume", "DELETE resource", ncNS + "/volumes", "DELETE", nc("volumes", "rw-volume"),
			nil, ncNS + "/volumes/delete", 204, ""},
	)
	// So does a network's.
	for _, typ := range []string{"l2Networks", "l3Networks", "trunkedNetworks", "cloudServicesNetworks", "virtualMachines"} {
		id := nc(typ, "rw-net")
		rows = append(rows,
			rwRow{"PUT " + typ + " without extendedLocation", "PUT resource", ncNS + "/" + typ, "PUT", id,
				map[string]any{"location": loc, "properties": map[string]any{}}, ncNS + "/" + typ + "/write", 400, "InvalidRequestContent"},
			rwRow{"PATCH missing " + typ, "PATCH resource", ncNS + "/" + typ, "PATCH", id,
				map[string]any{"tags": map[string]string{"walk": "yes"}}, ncNS + "/" + typ + "/write", 404, "ResourceNotFound"},
			rwRow{"DELETE missing " + typ, "DELETE resource", ncNS + "/" + typ, "DELETE", id, nil, ncNS + "/" + typ + "/delete", 204, ""},
		)
	}
	// The network fabric without devices: a controller's life, and
	// refusals and absent resources for the rest (TestFabric drives them
	// with simulated switches).
	nf := func(typ, name string) string {
		return v(group+"/providers/"+fabricNS+"/"+typ+"/"+name, fabricAPIVersion)
	}
	nfc := nf("networkFabricControllers", "rw-nfc")
	missingFabric := group + "/providers/" + fabricNS + "/networkFabrics/rw-missing"
	rows = append(rows,
		rwRow{"PUT networkFabricController", "PUT resource", fabricNS + "/networkFabricControllers", "PUT", nfc,
			map[string]any{"location": loc, "properties": map[string]any{"ipv4AddressSpace": "10.250.0.0/19"}}, fabricNS + "/networkFabricControllers/write", 201, ""},
		rwRow{"PATCH networkFabricController", "PATCH resource", fabricNS + "/networkFabricControllers", "PATCH", nfc,
			map[string]any{"tags": map[string]string{"walk": "yes"}}, fabricNS + "/networkFabricControllers/write", 200, ""},
		rwRow{"DELETE networkFabricController", "DELETE resource", fabricNS + "/networkFabricControllers", "DELETE", nfc,
			nil, fabricNS + "/networkFabricControllers/delete", 200, ""},
		rwRow{"PUT networkFabricSku", "PUT resource", fabricNS + "/networkFabricSkus", "PUT", v("/subscriptions/"+sub+"/providers/"+fabricNS+"/networkFabricSkus/rw-sku", fabricAPIVersion),
			map[string]any{"properties": map[string]any{}}, fabricNS + "/networkFabricSkus/write", 405, "SystemManagedResource"},
		rwRow{"PATCH networkFabricSku", "PATCH resource", fabricNS + "/networkFabricSkus", "PATCH", v("/subscriptions/"+sub+"/providers/"+fabricNS+"/networkFabricSkus/M4-A400-A100-C16-aa", fabricAPIVersion),
			map[string]any{"properties": map[string]any{}}, fabricNS + "/networkFabricSkus/write", 404, "ResourceNotFound"},
		rwRow{"DELETE networkFabricSku", "DELETE resource", fabricNS + "/networkFabricSkus", "DELETE", v("/subscriptions/"+sub+"/providers/"+fabricNS+"/networkFabricSkus/M4-A400-A100-C16-aa", fabricAPIVersion),
			nil, fabricNS + "/networkFabricSkus/delete", 405, "SystemManagedResource"},
		rwRow{"PUT networkFabric without controller", "PUT resource", fabricNS + "/networkFabrics", "PUT", nf("networkFabrics", "rw-fabric"),
			map[string]any{"location": loc, "properties": map[string]any{"networkFabricSku": "M4-A400-A100-C16-aa"}}, fabricNS + "/networkFabrics/write", 400, "InvalidRequestContent"},
		rwRow{"PATCH missing networkFabric", "PATCH resource", fabricNS + "/networkFabrics", "PATCH", nf("networkFabrics", "rw-fabric"),
			map[string]any{"tags": map[string]string{"walk": "yes"}}, fabricNS + "/networkFabrics/write", 404, "ResourceNotFound"},
		rwRow{"DELETE missing networkFabric", "DELETE resource", fabricNS + "/networkFabrics", "DELETE", nf("networkFabrics", "rw-fabric"),
			nil, fabricNS + "/networkFabrics/delete", 204, ""},
	)
	for _, action := range []string{"provision", "deprovision", "commitConfiguration", "validateConfiguration", "refreshConfiguration", "lockFabric"} {
		rows = append(rows, rwRow{"POST " + action + " on missing fabric", "POST action", fabricNS + "/networkFabrics", "POST",
			nf("networkFabrics", "rw-fabric/"+action), map[string]any{}, fabricNS + "/networkFabrics/" + action + "/action", 404, "ResourceNotFound"})
	}
	for _, typ := range []string{"networkRacks", "networkDevices", "networkDevices/networkInterfaces"} {
		name := "rw-missing"
		if typ == "networkDevices/networkInterfaces" {
			name = "rw-missing/networkInterfaces/Ethernet0"
		}
		id := nf(strings.Split(typ, "/")[0], name)
		rows = append(rows,
			rwRow{"PUT " + typ, "PUT resource", fabricNS + "/" + typ, "PUT", id, map[string]any{"location": loc, "properties": map[string]any{}}, fabricNS + "/" + typ + "/write", 405, "SystemManagedResource"},
			rwRow{"PATCH missing " + typ, "PATCH resource", fabricNS + "/" + typ, "PATCH", id, map[string]any{"tags": map[string]string{"walk": "yes"}}, fabricNS + "/" + typ + "/write", 404, missingCode(typ)},
			rwRow{"DELETE " + typ, "DELETE resource", fabricNS + "/" + typ, "DELETE", id, nil, fabricNS + "/" + typ + "/delete", 405, "SystemManagedResource"},
		)
	}
	for _, action := range []string{"reboot", "refreshConfiguration", "updateAdministrativeState"} {
		rows = append(rows, rwRow{"POST " + action + " on missing device", "POST action", fabricNS + "/networkDevices", "POST",
			nf("networkDevices", "rw-missing/"+action), map[string]any{}, fabricNS + "/networkDevices/" + action + "/action", 404, "ResourceNotFound"})
	}
	for _, typ := range []string{"l2IsolationDomains", "l3IsolationDomains", "l3IsolationDomains/internalNetworks", "l3IsolationDomains/externalNetworks",
		"routePolicies", "accessControlLists"} {
		name := "rw-missing"
		if strings.Contains(typ, "/") {
			name = "rw-missing/" + strings.Split(typ, "/")[1] + "/rw-net"
		}
		id := nf(strings.Split(typ, "/")[0], name)
		put := rwRow{"PUT " + typ + " on a missing fabric", "PUT resource", fabricNS + "/" + typ, "PUT", id,
			map[string]any{"location": loc, "properties": map[string]any{"networkFabricId": missingFabric, "vlanId": 501}}, fabricNS + "/" + typ + "/write", 400, "InvalidRequestContent"}
		switch {
		case strings.Contains(typ, "/"):
			put.name, put.status, put.code = "PUT "+typ+" below a missing domain", 404, "ParentResourceNotFound"
		case typ == "accessControlLists":
			put.name, put.body = "PUT accessControlLists from a file", map[string]any{"location": loc, "properties": map[string]any{"configurationType": "File"}}
		}
		rows = append(rows, put,
			rwRow{"PATCH missing " + typ, "PATCH resource", fabricNS + "/" + typ, "PATCH", id, map[string]any{"tags": map[string]string{"walk": "yes"}}, fabricNS + "/" + typ + "/write", 404, missingCode(typ)},
			rwRow{"DELETE missing " + typ, "DELETE resource", fabricNS + "/" + typ, "DELETE", id, nil, fabricNS + "/" + typ + "/delete", 204, ""},
			rwRow{"POST updateAdministrativeState on missing " + typ, "POST action", fabricNS + "/" + typ, "POST", strings.Replace(id, "?", "/updateAdministrativeState?", 1),
				map[string]any{"state": "Enable"}, fabricNS + "/" + typ + "/updateAdministrativeState/action", 404, missingCode(typ)},
		)
	}
	for _, action := range []string{"powerOff", "start", "restart", "reimage"} {
		rows = append(rows, rwRow{"POST " + action + " on missing VM", "POST action", ncNS + "/virtualMachines", "POST",
			nc("virtualMachines", "rw-net/"+action), map[string]any{}, ncNS + "/virtualMachines/" + action + "/action", 404, "ResourceNotFound"})
	}
	// A VM's console, below a missing VM: refused naming its parent
	// (TestVMConsole drives the rest).
	console, consoleType := nc("virtualMachines", "rw-net/consoles/default"), ncNS+"/virtualMachines/consoles"
	rows = append(rows,
		rwRow{"PUT console below a missing VM", "PUT resource", consoleType, "PUT", console,
			map[string]any{"location": loc, "properties": map[string]any{"enabled": "True"}}, consoleType + "/write", 404, "ParentResourceNotFound"},
		rwRow{"PATCH console below a missing VM", "PATCH resource", consoleType, "PATCH", console,
			map[string]any{"properties": map[string]any{"enabled": "False"}}, consoleType + "/write", 404, "ParentResourceNotFound"},
		rwRow{"POST readLog below a missing VM", "POST action", consoleType, "POST", strings.Replace(console, "?", "/readLog?", 1),
			map[string]any{"tailBytes": 4096}, consoleType + "/readLog/action", 404, "ParentResourceNotFound"},
		rwRow{"DELETE console below a missing VM", "DELETE resource", consoleType, "DELETE", console, nil, consoleType + "/delete", 204, ""},
	)
	for _, action := range []string{"powerOff", "start", "restart", "reimage", "replace", "cordon", "uncordon"} {
		rows = append(rows, rwRow{"POST " + action + " on missing machine", "POST action", ncNS + "/bareMetalMachines", "POST",
			nc("bareMetalMachines", "rwmissing/"+action), map[string]any{}, ncNS + "/bareMetalMachines/" + action + "/action", 404, "ResourceNotFound"})
	}
	// Template deployments: the PUT is long-running; validate, whatIf and
	// cancel are authorized as actions; operations are the system's.
	depType := "Microsoft.Resources/deployments"
	dep := func(name string) string { return v(group+"/providers/"+depType+"/"+name, "2021-04-01") }
	emptyTemplate := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": map[string]any{
		"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "resources": []any{}}}}
	depOps := depType + "/operations"
	rows = append(rows,
		rwRow{"PUT deployment", "PUT resource", depType, "PUT", dep("rw-dep"), emptyTemplate, depType + "/write", 201, ""},
		rwRow{"PUT deployment without template", "PUT resource", depType, "PUT", dep("rw-dep2"), map[string]any{"properties": map[string]any{}}, depType + "/write", 400, "InvalidRequestContent"},
		rwRow{"PATCH missing deployment", "PATCH resource", depType, "PATCH", dep("rw-missing"), map[string]any{"tags": map[string]string{"walk": "yes"}}, depType + "/write", 404, "ResourceNotFound"},
		rwRow{"POST validate", "POST action", depType, "POST", strings.Replace(dep("rw-dep3"), "?", "/validate?", 1), emptyTemplate, depType + "/validate/action", 200, ""},
		rwRow{"POST whatIf", "POST action", depType, "POST", strings.Replace(dep("rw-dep3"), "?", "/whatIf?", 1), emptyTemplate, depType + "/whatIf/action", 200, ""},
		rwRow{"POST cancel on missing deployment", "POST action", depType, "POST", strings.Replace(dep("rw-missing"), "?", "/cancel?", 1), map[string]any{}, depType + "/cancel/action", 404, "ResourceNotFound"},
		rwRow{"DELETE missing deployment", "DELETE resource", depType, "DELETE", dep("rw-missing"), nil, depType + "/delete", 204, ""},
		rwRow{"PUT deployment operation", "PUT resource", depOps, "PUT", v(group+"/providers/"+depType+"/rw-dep/operations/0123", "2021-04-01"), map[string]any{"properties": map[string]any{}}, depOps + "/write", 405, "SystemManagedResource"},
		rwRow{"PATCH missing deployment operation", "PATCH resource", depOps, "PATCH", v(group+"/providers/"+depType+"/rw-dep/operations/0123", "2021-04-01"), map[string]any{"tags": map[string]string{"walk": "yes"}}, depOps + "/write", 404, "ResourceNotFound"},
		rwRow{"DELETE deployment operation", "DELETE resource", depOps, "DELETE", v(group+"/providers/"+depType+"/rw-dep/operations/0123", "2021-04-01"), nil, depOps + "/delete", 405, "SystemManagedResource"},
	)
	// Template specs and their versions are plain tracked resources.
	specType := "Microsoft.Resources/templateSpecs"
	spec := group + "/providers/" + specType + "/rw-spec"
	specAPI := func(id string) string { return v(id, "2021-05-01") }
	rows = append(rows,
		rwRow{"PUT templateSpec", "PUT resource", specType, "PUT", specAPI(spec), map[string]any{"location": loc, "properties": map[string]any{"description": "walk"}}, specType + "/write", 201, ""},
		rwRow{"PATCH templateSpec", "PATCH resource", specType, "PATCH", specAPI(spec), map[string]any{"tags": map[string]string{"walk": "yes"}}, specType + "/write", 200, ""},
		rwRow{"PUT templateSpec version", "PUT resource", specType + "/versions", "PUT", specAPI(spec + "/versions/1.0"),
			map[string]any{"location": loc, "properties": map[string]any{"mainTemplate": map[string]any{"resources": []any{}}}}, specType + "/versions/write", 201, ""},
		rwRow{"PATCH templateSpec version", "PATCH resource", specType + "/versions", "PATCH", specAPI(spec + "/versions/1.0"), map[string]any{"tags": map[string]string{"walk": "yes"}}, specType + "/versions/write", 200, ""},
		rwRow{"DELETE templateSpec version", "DELETE resource", specType + "/versions", "DELETE", specAPI(spec + "/versions/1.0"), nil, specType + "/versions/delete", 200, ""},
		rwRow{"DELETE templateSpec", "DELETE resource", specType, "DELETE", specAPI(spec), nil, specType + "/delete", 200, ""},
	)
	// Azure Policy: definitions and initiatives at the subscription,
	// assignments, exemptions and remediations in the group; policy
	// states are computed and answer queries.
	polNS, insNS := "Microsoft.Authorization", "Microsoft.PolicyInsights"
	polDef := "/subscriptions/" + sub + "/providers/" + polNS + "/policyDefinitions/rw-def"
	polAssignment := group + "/providers/" + polNS + "/policyAssignments/rw-assignment"
	pol := func(id string) string { return v(id, "2021-06-01") }
	states := group + "/providers/" + insNS + "/policyStates/latest"
	insights := func(tail string) string { return v(states+tail, "2019-10-01") }
	rows = append(rows,
		rwRow{"PUT policyDefinition", "PUT resource", polNS + "/policyDefinitions", "PUT", pol(polDef),
			map[string]any{"properties": map[string]any{"mode": "All", "policyRule": map[string]any{
				"if": map[string]any{"field": "type", "equals": "Microsoft.Nothing/here"}, "then": map[string]any{"effect": "audit"}}}},
			polNS + "/policyDefinitions/write", 201, ""},
		rwRow{"PATCH missing policyDefinition", "PATCH resource", polNS + "/policyDefinitions", "PATCH", pol(polDef + "-missing"),
			map[string]any{"properties": map[string]any{}}, polNS + "/policyDefinitions/write", 404, "ResourceNotFound"},
		rwRow{"PUT policySetDefinition", "PUT resource", polNS + "/policySetDefinitions", "PUT", pol("/subscriptions/" + sub + "/providers/" + polNS + "/policySetDefinitions/rw-set"),
			map[string]any{"properties": map[string]any{"policyDefinitions": []any{map[string]any{"policyDefinitionId": polDef}}}},
			polNS + "/policySetDefinitions/write", 201, ""},
		rwRow{"PATCH missing policySetDefinition", "PATCH resource", polNS + "/policySetDefinitions", "PATCH", pol("/subscriptions/" + sub + "/providers/" + polNS + "/policySetDefinitions/rw-missing"),
			map[string]any{"properties": map[string]any{}}, polNS + "/policySetDefinitions/write", 404, "ResourceNotFound"},
		rwRow{"DELETE policySetDefinition", "DELETE resource", polNS + "/policySetDefinitions", "DELETE", pol("/subscriptions/" + sub + "/providers/" + polNS + "/policySetDefinitions/rw-set"),
			nil, polNS + "/policySetDefinitions/delete", 200, ""},
		rwRow{"PUT policyAssignment", "PUT resource", polNS + "/policyAssignments", "PUT", pol(polAssignment),
			map[string]any{"properties": map[string]any{"policyDefinitionId": polDef}}, polNS + "/policyAssignments/write", 201, ""},
		rwRow{"PATCH missing policyAssignment", "PATCH resource", polNS + "/policyAssignments", "PATCH", pol(polAssignment + "-missing"),
			map[string]any{"properties": map[string]any{}}, polNS + "/policyAssignments/write", 404, "ResourceNotFound"},
		rwRow{"PUT policyExemption", "PUT resource", polNS + "/policyExemptions", "PUT", v(group+"/providers/"+polNS+"/policyExemptions/rw-exemption", "2020-07-01-preview"),
			map[string]any{"properties": map[string]any{"policyAssignmentId": polAssignment, "exemptionCategory": "Waiver"}}, polNS + "/policyExemptions/write", 201, ""},
		rwRow{"PATCH missing policyExemption", "PATCH resource", polNS + "/policyExemptions", "PATCH", v(group+"/providers/"+polNS+"/policyExemptions/rw-missing", "2020-07-01-preview"),
			map[string]any{"properties": map[string]any{}}, polNS + "/policyExemptions/write", 404, "ResourceNotFound"},
		rwRow{"DELETE policyExemption", "DELETE resource", polNS + "/policyExemptions", "DELETE", v(group+"/providers/"+polNS+"/policyExemptions/rw-exemption", "2020-07-01-preview"),
			nil, polNS + "/policyExemptions/delete", 200, ""},
		rwRow{"PUT remediation", "PUT resource", insNS + "/remediations", "PUT", v(group+"/providers/"+insNS+"/remediations/rw-remediation", "2021-10-01"),
			map[string]any{"properties": map[string]any{"policyAssignmentId": polAssignment}}, insNS + "/remediations/write", 201, ""},
		rwRow{"PATCH missing remediation", "PATCH resource", insNS + "/remediations", "PATCH", v(group+"/providers/"+insNS+"/remediations/rw-missing", "2021-10-01"),
			map[string]any{"properties": map[string]any{}}, insNS + "/remediations/write", 404, "ResourceNotFound"},
		rwRow{"DELETE missing remediation", "DELETE resource", insNS + "/remediations", "DELETE", v(group+"/providers/"+insNS+"/remediations/rw-missing", "2021-10-01"),
			nil, insNS + "/remediations/delete", 204, ""},
		rwRow{"PUT policyStates", "PUT resource", insNS + "/policyStates", "PUT", insights(""), map[string]any{"properties": map[string]any{}}, insNS + "/policyStates/write", 405, "MethodNotAllowed"},
		rwRow{"PATCH policyStates", "PATCH resource", insNS + "/policyStates", "PATCH", insights(""), map[string]any{"properties": map[string]any{}}, insNS + "/policyStates/write", 404, "ResourceNotFound"},
		rwRow{"DELETE policyStates", "DELETE resource", insNS + "/policyStates", "DELETE", insights(""), nil, insNS + "/policyStates/delete", 204, ""},
		rwRow{"POST queryResults", "POST action", insNS + "/policyStates", "POST", insights("/queryResults"), nil, insNS + "/policyStates/queryResults/action", 200, ""},
		rwRow{"POST summarize", "POST action", insNS + "/policyStates", "POST", insights("/summarize"), nil, insNS + "/policyStates/summarize/action", 200, ""},
		rwRow{"POST triggerEvaluation", "POST action", insNS + "/policyStates", "POST", insights("/triggerEvaluation"), nil, insNS + "/policyStates/triggerEvaluation/action", 200, ""},
		rwRow{"DELETE policyAssignment", "DELETE resource", polNS + "/policyAssignments", "DELETE", pol(polAssignment), nil, polNS + "/policyAssignments/delete", 200, ""},
		rwRow{"DELETE policyDefinition", "DELETE resource", polNS + "/policyDefinitions", "DELETE", pol(polDef), nil, polNS + "/policyDefinitions/delete", 200, ""},
	)
	rows = append(rows, deleteGroup)
	// Identities: names that are not valid for the kind are refused after
	// authorization, and recorded.
	for _, kind := range []string{"servicePrincipals", "users", "groups"} {
		typ := "Citadel.Identity/" + kind
		id := v("/providers/"+typ+"/routewalk-"+strings.ToLower(kind), "2026-01-01")
		rows = append(rows,
			rwRow{"PUT " + kind, "PUT resource", typ, "PUT", id, map[string]any{"properties": map[string]any{}}, typ + "/write", 400, "BadRequest"},
			rwRow{"PATCH missing " + kind, "PATCH resource", typ, "PATCH", id, map[string]any{"properties": map[string]any{}}, typ + "/write", 404, "ResourceNotFound"},
			rwRow{"DELETE missing " + kind, "DELETE resource", typ, "DELETE", id, nil, typ + "/delete", 204, ""},
		)
	}

	t.Run("covers every route", func(t *testing.T) {
		kinds := map[string]bool{}
		methods := map[string]bool{}
		for _, r := range rows {
			if r.kind != rwEarly && !slices.Contains(rwRouteKinds, r.kind) {
				t.Errorf("row %q: kind %q is not in rwRouteKinds", r.name, r.kind)
			}
			kinds[r.kind] = true
			methods[r.typ+" "+r.method] = true
		}
		for _, k := range rwRouteKinds {
			if !kinds[k] {
				t.Errorf("no row exercises a %s route; add one", k)
			}
		}
		for _, typ := range cp.Resources.Types() {
			for _, m := range []string{"PUT", "PATCH", "DELETE"} {
				if !methods[typ.FullName()+" "+m] {
					t.Errorf("no row sends %s to a %s; add one", m, typ.FullName())
				}
			}
			for action := range func(yield func(string) bool) {
				for a := range typ.Actions {
					if !yield(a) {
						return
					}
				}
				for q := range typ.Queries {
					if !yield(q) {
						return
					}
				}
			} {
				found := false
				for _, r := range rows {
					found = found || r.typ == typ.FullName() && r.action == typ.FullName()+"/"+action+"/action"
				}
				if !found {
					t.Errorf("no row calls action %s of %s; add one", action, typ.FullName())
				}
			}
		}
	})

	// Each row is sent twice, by nobody and by the admin, each with a
	// correlation id of its own.
	type sent struct {
		row          rwRow
		refused, did string // correlation ids
		lro          bool
	}
	var walk []sent
	start := time.Now().UTC()
	for _, r := range rows {
		s := sent{row: r, refused: uuid.NewString(), did: uuid.NewString()}
		t.Run(r.name, func(t *testing.T) {
			send := func(p alPrincipal, corr string) (*client.Response, string) {
				t.Helper()
				resp := alSend(t, p.Client, r.method, r.path, http.Header{"X-Ms-Correlation-Request-Id": {corr}}, r.body)
				if got := resp.Header.Get("x-ms-correlation-request-id"); got != corr {
					t.Errorf("%s %s: x-ms-correlation-request-id = %q, want %q", r.method, r.path, got, corr)
				}
				code := ""
				if resp.Status >= 400 {
					code = errorCode(resp.Body)
				}
				return resp, code
			}
			// (a) no role: 403, unless refused before routing.
			resp, code := send(nobody, s.refused)
			wantStatus, wantCode := http.StatusForbidden, "AuthorizationFailed"
			if r.kind == rwEarly {
				wantStatus, wantCode = r.status, r.code
			}
			if resp.Status != wantStatus || code != wantCode {
				t.Errorf("%s %s without a role = %d %s, want %d %s", r.method, r.path, resp.Status, resp.Body, wantStatus, wantCode)
			}
			if r.kind != rwEarly && !strings.Contains(string(resp.Body), r.action) {
				t.Errorf("%s %s without a role: the refusal %s does not name the action %s", r.method, r.path, resp.Body, r.action)
			}
			// (b) the admin.
			resp, code = send(admin, s.did)
			if resp.Status != r.status || code != r.code {
				t.Errorf("%s %s as admin = %d %s, want %d %s", r.method, r.path, resp.Status, resp.Body, r.status, r.code)
			}
			if resp.Header.Get("Azure-AsyncOperation") != "" {
				s.lro = true
				alWaitOperation(t, admin.Client, r.method+" "+r.path, resp)
			}
		})
		walk = append(walk, s)
	}

	// (c) the records.
	alFlush(t, cp)
	end := time.Now().UTC()
	events := alEvents(t, alQuery(t, admin.Client, sub, url.Values{"$filter": {alFilter(start, end)}}))
	events = append(events, alEvents(t, alQuery(t, admin.Client, "", url.Values{"$filter": {alFilter(start, end)}}))...)
	byCorr := map[string][]alEvent{}
	for _, e := range events {
		byCorr[e.CorrelationID] = append(byCorr[e.CorrelationID], e)
	}
	t.Run("audited", func(t *testing.T) {
		known := map[string]bool{}
		for _, s := range walk {
			known[s.refused], known[s.did] = true, true
			r := s.row
			what := r.method + " " + r.path
			refused := byCorr[s.refused]
			if len(refused) != 1 {
				t.Errorf("%s without a role: %d records with its correlation id, want 1: %+v", what, len(refused), refused)
			} else {
				checkWalkRecord(t, what+" without a role", refused[0], r, nobody, "Failed")
			}
			did := byCorr[s.did]
			switch {
			case s.lro && len(did) == 0:
				t.Errorf("%s as admin (long-running): no record with its correlation id, want at least one", what)
			case !s.lro && len(did) != 1:
				t.Errorf("%s as admin: %d records with its correlation id, want 1: %+v", what, len(did), did)
			default:
				status := "Succeeded"
				switch {
				case s.lro:
					status = "Started" // then Accepted, then the operation's end
				case r.status >= 400:
					status = "Failed"
				}
				checkWalkRecord(t, what+" as admin", did[0], r, admin, status)
			}
		}
		for corr, es := range byCorr {
			if !known[corr] {
				t.Errorf("%d records with correlation id %s, which no request of the walk sent: %+v", len(es), corr, es)
			}
		}
	})
	t.Logf("%d requests, %d records; took %v", 2*len(rows), len(events), time.Since(t0).Round(time.Millisecond))
}

// checkWalkRecord checks the record of one request of the walk: the
// method, the action authorized, the outcome and who asked.
func checkWalkRecord(t *testing.T, what string, e alEvent, r rwRow, p alPrincipal, status string) {
	t.Helper()
	var bad []string
	check := func(field, got, want string) {
		if got != want {
			bad = append(bad, fmt.Sprintf("%s = %q, want %q", field, got, want))
		}
	}
	check("httpRequest.method", e.Method, r.method)
	check("operationName", e.OperationName, r.action)
	check("authorization.action", e.AuthAction, r.action)
	check("status", e.Status, status)
	check("claims.oid", e.OID, p.ObjectID)
	check("caller", e.Caller, p.Name)
	if status == "Failed" {
		check("level", e.Level, "Error")
	}
	if len(bad) > 0 {
		t.Errorf("%s: record %s: %s", what, e.EventDataID, strings.Join(bad, "; "))
	}
}

// missingCode is the error of a request on a missing resource of type
// typ: a child's parent is missing first.
func missingCode(typ string) string {
	if strings.Contains(typ, "/") {
		return "ParentResourceNotFound"
	}
	return "ResourceNotFound"
}
