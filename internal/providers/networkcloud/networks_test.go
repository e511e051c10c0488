package networkcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// netEnv is the provider registered on a resource.Service over a real
// store, with what networks refer to created directly: a cluster and its
// custom location, and fabric isolation domains (stand-in types: the
// fabric provider is not needed to store them).
type netEnv struct {
	svc *resource.Service
	p   *Provider
	el  map[string]any // the cluster's extendedLocation
}

const (
	testSub    = "6f1c3a52-0c1e-4d4b-9a57-2f0e0c9f7a11"
	testGroup  = "/subscriptions/" + testSub + "/resourceGroups/rg"
	fabricAPI  = "2024-06-15-preview"
	testVMType = "Test.Nets/vms"
)

var (
	l2Domain     = testGroup + "/providers/" + l2DomainType + "/l2d"
	l3Domain     = testGroup + "/providers/" + l3DomainType + "/l3d"      // internal networks with VLANs 501 and 502
	l3DomainBare = testGroup + "/providers/" + l3DomainType + "/l3d-bare" // no internal networks
	clusterID    = testGroup + "/providers/" + clusterType + "/c1"
)

func networkID(typ, name string) string {
	return testGroup + "/providers/" + Namespace + "/" + typ + "/" + name
}

func vmID(name string) string { return testGroup + "/providers/" + testVMType + "/" + name }

// vmProps is the test type's model: one attachment to an L3 network.
type vmProps struct {
	Network     string `json:"network"`
	Method      string `json:"method"`
	Address     string `json:"address"`
	IPv4Address string `json:"ipv4Address"`
}

func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := resource.NewService(resource.Config{Store: storetest.Start(t), Location: "local", Logger: log})
	svc.Register(&resource.Type{Namespace: "Microsoft.Resources", Name: "resourceGroups", APIVersions: []string{"2021-04-01"},
		Scope: resource.ScopeSubscription, Tracked: true})
	extendedlocation.Register(svc)
	for _, name := range []string{"l2IsolationDomains", "l3IsolationDomains", "l3IsolationDomains/internalNetworks"} {
		svc.Register(&resource.Type{Namespace: fabricNamespace, Name: name, APIVersions: []string{fabricAPI}, Tracked: !strings.Contains(name, "/")})
	}
	e := &netEnv{svc: svc, p: Register(svc, Config{Logger: log, ImageURL: "https://citadel.example.test:8443/images"})}
	svc.Register(&resource.Type{Namespace: "Test.Nets", Name: "vms", APIVersions: APIVersions, Tracked: true, Validate: e.validateVM})
	if err := svc.CreateTenancy(ctx, resource.Tenant{ID: "t1"}, resource.Subscription{ID: testSub, TenantID: "t1", State: "Enabled"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Put(ctx, e.req(t, testGroup, "2021-04-01", `{"location":"local"}`)); err != nil {
		t.Fatal(err)
	}
	e.upsert(t, clusterID, map[string]any{"clusterType": "SingleRack"})
	e.upsert(t, l2Domain, map[string]any{"vlanId": 400})
	e.upsert(t, l3Domain, map[string]any{})
	e.upsert(t, l3Domain+"/internalNetworks/in1", map[string]any{"vlanId": 501})
	e.upsert(t, l3Domain+"/internalNetworks/in2", map[string]any{"vlanId": 502})
	e.upsert(t, l3DomainBare, map[string]any{})
	el, err := extendedlocation.Ensure(ctx, svc, mustID(clusterID))
	if err != nil {
		t.Fatal(err)
	}
	e.el = el
	return e
}

// validateVM is a virtual machine's Validate, reduced to its address.
func (e *netEnv) validateVM(ctx context.Context, w *resource.Write) error {
	var v vmProps
	if err := resource.DecodeProperties(w.New, &v); err != nil {
		return err
	}
	addr, err := e.p.claimAddress(ctx, w, v.Network, v.Method, v.Address)
	if err != nil {
		return err
	}
	w.New.Properties["ipv4Address"] = addr
	return nil
}

// upsert sets some properties of id, as the system would, and waits
// until the provider's projections show the change: the test's next
// step reads them.
func (e *netEnv) upsert(t *testing.T, id string, props map[string]any) {
	t.Helper()
	r, err := e.svc.Upsert(t.Context(), mustID(id), func(r *resource.Resource, _ bool) error {
		for k, v := range props {
			r.Properties[k] = v
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Upsert(%s): %v", id, err)
	}
	written, _ := r.Revision()
	mem, _ := e.p.memory()
	switch rid := mustID(id); {
	case strings.EqualFold(rid.Type(), machineType):
		_, _, err = mem.machines.Until(t.Context(), rid, func(_ placementView, revision int64) bool { return revision >= written })
	case strings.EqualFold(rid.Type(), vmType):
		_, _, err = mem.vms.Until(t.Context(), rid, func(_ vmReport, revision int64) bool { return revision >= written })
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (e *netEnv) req(t *testing.T, id, apiVersion, body string) *resource.Request {
	t.Helper()
	return &resource.Request{ID: mustID(id), APIVersion: apiVersion, Body: []byte(body), Header: http.Header{},
		Caller: resource.Caller{ObjectID: "oid", Name: "tester", Type: "User"}, BaseURL: "https://example.test"}
}

// put PUTs properties (and the cluster's extendedLocation) at id.
func (e *netEnv) put(t *testing.T, id string, props map[string]any) (*resource.Resource, error) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"location": "local", "extendedLocation": e.el, "properties": props})
	resp, err := e.svc.Put(t.Context(), e.req(t, id, APIVersions[0], string(body)))
	if err != nil {
		return nil, err
	}
	return resp.Body.(*resource.Resource), nil
}

func (e *netEnv) mustPut(t *testing.T, id string, props map[string]any) *resource.Resource {
	t.Helper()
	r, err := e.put(t, id, props)
	if err != nil {
		t.Fatalf("Put(%s): %v", id, err)
	}
	return r
}

func (e *netEnv) delete(t *testing.T, id string) error {
	t.Helper()
	_, err := e.svc.Delete(t.Context(), e.req(t, id, APIVersions[0], ""))
	return err
}

// wantError checks that err is an *arm.Error of status and code whose
// target is target and whose message has every one of says.
func wantError(t *testing.T, call string, err error, status int, code, target string, says ...string) {
	t.Helper()
	ae, ok := errors.AsType[*arm.Error](err)
	if !ok {
		t.Errorf("%s = %v, want %d %s (target %q)", call, err, status, code, target)
		return
	}
	if ae.Status != status || ae.Code != code || ae.Target != target {
		t.Errorf("%s = %d %s (target %q): %s; want %d %s (target %q)", call, ae.Status, ae.Code, ae.Target, ae.Message, status, code, target)
	}
	for _, s := range says {
		if !strings.Contains(ae.Message, s) {
			t.Errorf("%s: %q does not say %q", call, ae.Message, s)
		}
	}
}

func TestNetworkValidation(t *testing.T) {
	t.Parallel()
	e := newNetEnv(t)
	l2 := func(kv ...any) map[string]any { return props(map[string]any{"l2IsolationDomainId": l2Domain}, kv...) }
	l3 := func(kv ...any) map[string]any {
		return props(map[string]any{"l3IsolationDomainId": l3Domain, "vlan": 501,
			"ipv4ConnectedPrefix": "10.1.0.0/24", "ipv6ConnectedPrefix": "fd00:1::/64"}, kv...)
	}
	trunk := func(kv ...any) map[string]any {
		return props(map[string]any{"isolationDomainIds": []any{l2Domain, l3Domain}, "vlans": []any{400, 501}}, kv...)
	}
	csn := func(kv ...any) map[string]any { return props(map[string]any{}, kv...) }
	tests := []struct {
		name, typ string
		props     map[string]any
		target    string // the field named; "" for a success
		says      string
	}{
		{"l2 ok", "l2Networks", l2("interfaceName", "eth-l2.1@x"), "", ""},
		{"l2 no domain", "l2Networks", l2("l2IsolationDomainId", nil), "properties.l2IsolationDomainId", "required"},
		{"l2 missing domain", "l2Networks", l2("l2IsolationDomainId", l2Domain+"x"), "properties.l2IsolationDomainId", "not found"},
		{"l2 domain of l3 type", "l2Networks", l2("l2IsolationDomainId", l3Domain), "properties.l2IsolationDomainId", "l2IsolationDomain"},
		{"l2 domain not an ID", "l2Networks", l2("l2IsolationDomainId", "l2d"), "properties.l2IsolationDomainId", "not the resource ID"},
		{"l2 long interface", "l2Networks", l2("interfaceName", "abcdefghijklm"), "properties.interfaceName", "12"},
		{"l2 bad interface", "l2Networks", l2("interfaceName", "eth 0"), "properties.interfaceName", "only letters"},
		{"l2 interface not a string", "l2Networks", l2("interfaceName", 7), "properties.interfaceName", "expected string"},

		{"l3 ok", "l3Networks", l3(), "", ""},
		{"l3 ok IPV4 only", "l3Networks", l3("ipAllocationType", "IPV4", "ipv6ConnectedPrefix", nil), "", ""},
		{"l3 ok bare domain, any VLAN", "l3Networks", l3("l3IsolationDomainId", l3DomainBare, "vlan", 77), "", ""},
		{"l3 no domain", "l3Networks", l3("l3IsolationDomainId", nil), "properties.l3IsolationDomainId", "required"},
		{"l3 missing domain", "l3Networks", l3("l3IsolationDomainId", testGroup+"/providers/"+l3DomainType+"/nope"), "properties.l3IsolationDomainId", "not found"},
		{"l3 no vlan", "l3Networks", l3("vlan", nil), "properties.vlan", "1 to 4094"},
		{"l3 vlan too big", "l3Networks", l3("l3IsolationDomainId", l3DomainBare, "vlan", 4095), "properties.vlan", "4095"},
		{"l3 vlan not the domain's", "l3Networks", l3("vlan", 503), "properties.vlan", "501, 502"},
		{"l3 vlan not a number", "l3Networks", l3("vlan", "501"), "properties.vlan", ""},
		{"l3 bad allocation type", "l3Networks", l3("ipAllocationType", "IPv5"), "properties.ipAllocationType", "IPv5"},
		{"l3 dual stack without ipv4", "l3Networks", l3("ipv4ConnectedPrefix", nil), "properties.ipv4ConnectedPrefix", "required when ipAllocationType is DualStack"},
		{"l3 dual stack without ipv6", "l3Networks", l3("ipv6ConnectedPrefix", nil), "properties.ipv6ConnectedPrefix", "required"},
		{"l3 IPV6 without ipv6", "l3Networks", l3("ipAllocationType", "IPV6", "ipv4ConnectedPrefix", nil, "ipv6ConnectedPrefix", nil), "properties.ipv6ConnectedPrefix", "required when ipAllocationType is IPV6"},
		{"l3 IPV6 with ipv4", "l3Networks", l3("ipAllocationType", "IPV6"), "properties.ipv4ConnectedPrefix", "not used"},
		{"l3 ipv4 host bits", "l3Networks", l3("ipv4ConnectedPrefix", "10.1.0.5/24"), "properties.ipv4ConnectedPrefix", "host bits"},
		{"l3 ipv4 not CIDR", "l3Networks", l3("ipv4ConnectedPrefix", "10.1.0.0"), "properties.ipv4ConnectedPrefix", "not a CIDR prefix"},
		{"l3 ipv4 too small", "l3Networks", l3("ipv4ConnectedPrefix", "10.1.0.0/31"), "properties.ipv4ConnectedPrefix", "too small"},
		{"l3 ipv4 is IPv6", "l3Networks", l3("ipv4ConnectedPrefix", "fd00:2::/64"), "properties.ipv4ConnectedPrefix", "IPv4"},
		{"l3 ipv6 is IPv4", "l3Networks", l3("ipv6ConnectedPrefix", "10.2.0.0/24"), "properties.ipv6ConnectedPrefix", "IPv6"},
		{"l3 ipv6 too small", "l3Networks", l3("ipv6ConnectedPrefix", "fd00:1::/127"), "properties.ipv6ConnectedPrefix", "too small"},
		{"l3 long interface", "l3Networks", l3("interfaceName", "interface-name"), "properties.interfaceName", ""},

		{"trunk ok", "trunkedNetworks", trunk(), "", ""},
		{"trunk no domains", "trunkedNetworks", trunk("isolationDomainIds", []any{}), "properties.isolationDomainIds", "at least one"},
		{"trunk missing domain", "trunkedNetworks", trunk("isolationDomainIds", []any{l2Domain, l2Domain + "x"}), "properties.isolationDomainIds[1]", "not found"},
		{"trunk domain of another type", "trunkedNetworks", trunk("isolationDomainIds", []any{clusterID}), "properties.isolationDomainIds[0]", "isolation domain"},
		{"trunk no vlans", "trunkedNetworks", trunk("vlans", nil), "properties.vlans", "at least one"},
		{"trunk vlan 0", "trunkedNetworks", trunk("vlans", []any{400, 0}), "properties.vlans[1]", "1 to 4094"},
		{"trunk vlan twice", "trunkedNetworks", trunk("vlans", []any{400, 400}), "properties.vlans[1]", "twice"},
		{"trunk bad interface", "trunkedNetworks", trunk("interfaceName", "a/b"), "properties.interfaceName", ""},

		{"csn ok", "cloudServicesNetworks", csn(), "", ""},
		{"csn bad default flag", "cloudServicesNetworks", csn("enableDefaultEgressEndpoints", "Maybe"), "properties.enableDefaultEgressEndpoints", "Maybe"},
		{"csn endpoint without category", "cloudServicesNetworks",
			csn("additionalEgressEndpoints", []any{map[string]any{"endpoints": []any{map[string]any{"domainName": "a.example"}}}}),
			"properties.additionalEgressEndpoints[0].category", "required"},
		{"csn endpoint without endpoints", "cloudServicesNetworks",
			csn("additionalEgressEndpoints", []any{map[string]any{"category": "c", "endpoints": []any{}}}),
			"properties.additionalEgressEndpoints[0].endpoints", "at least one"},
		{"csn endpoint bad port", "cloudServicesNetworks",
			csn("additionalEgressEndpoints", []any{map[string]any{"category": "c", "endpoints": []any{map[string]any{"domainName": "a.example", "port": 70000}}}}),
			"properties.additionalEgressEndpoints[0].endpoints[0].port", "70000"},
		{"csn bad storage mode", "cloudServicesNetworks", csn("storageOptions", map[string]any{"mode": "Fast"}), "properties.storageOptions.mode", "Fast"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := networkID(tt.typ, fmt.Sprintf("n%d", i))
			r, err := e.put(t, id, tt.props)
			if tt.target == "" {
				if err != nil {
					t.Fatalf("Put(%s %v) = %v, want success", tt.typ, tt.props, err)
				}
				if r.Properties["clusterId"] != clusterID || r.Properties["detailedStatus"] != "Available" {
					t.Errorf("Put(%s): clusterId %v, detailedStatus %v; want %s, Available", tt.typ, r.Properties["clusterId"], r.Properties["detailedStatus"], clusterID)
				}
				return
			}
			ae, ok := errors.AsType[*arm.Error](err)
			if !ok || ae.Status != http.StatusBadRequest || ae.Target != tt.target || !strings.Contains(ae.Message, tt.says) {
				t.Errorf("Put(%s %v) = %v (target %q), want 400 naming %s and saying %q", tt.typ, tt.props, err, targetOf(err), tt.target, tt.says)
			}
		})
	}

	// Without extendedLocation every type is refused naming it.
	for _, typ := range []string{"l2Networks", "l3Networks", "trunkedNetworks", "cloudServicesNetworks"} {
		_, err := e.svc.Put(t.Context(), e.req(t, networkID(typ, "noel"), APIVersions[0], `{"location":"local","properties":{}}`))
		wantError(t, "Put("+typ+" without extendedLocation)", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "extendedLocation")
	}
}

func TestNetworkDefaults(t *testing.T) {
	t.Parallel()
	e := newNetEnv(t)
	l3 := e.mustPut(t, networkID("l3Networks", "l3"), map[string]any{"l3IsolationDomainId": l3Domain, "vlan": 502,
		"ipv4ConnectedPrefix": "10.1.0.0/24", "ipv6ConnectedPrefix": "fd00:1::/64", "ipAllocationType": "dualstack"})
	if got := l3.Properties["ipAllocationType"]; got != "DualStack" {
		t.Errorf("l3 ipAllocationType = %v, want DualStack", got)
	}
	csn := e.mustPut(t, networkID("cloudServicesNetworks", "csn"), map[string]any{"interfaceName": "mine",
		"additionalEgressEndpoints": []any{map[string]any{"category": "repo", "endpoints": []any{map[string]any{"domainName": "repo.example", "port": 443}}}}})
	got, _ := json.Marshal(csn.Properties["enabledEgressEndpoints"])
	want := `[{"category":"default","endpoints":[{"domainName":"citadel.example.test","port":8443}]},{"category":"repo","endpoints":[{"domainName":"repo.example","port":443}]}]`
	if string(got) != want || csn.Properties["interfaceName"] != "csn" || csn.Properties["enableDefaultEgressEndpoints"] != "True" {
		t.Errorf("csn: enabledEgressEndpoints %s, interfaceName %v, enableDefaultEgressEndpoints %v; want %s, csn, True",
			got, csn.Properties["interfaceName"], csn.Properties["enableDefaultEgressEndpoints"], want)
	}
	csn = e.mustPut(t, networkID("cloudServicesNetworks", "csn"), map[string]any{"enableDefaultEgressEndpoints": "False"})
	if got, _ := json.Marshal(csn.Properties["enabledEgressEndpoints"]); string(got) != "[]" {
		t.Errorf("csn without defaults: enabledEgressEndpoints %s, want []", got)
	}
}

func TestClaimAddress(t *testing.T) {
	t.Parallel()
	e := newNetEnv(t)
	net := networkID("l3Networks", "vmnet")
	e.mustPut(t, net, map[string]any{"l3IsolationDomainId": l3Domain, "vlan": 501, "ipAllocationType": "IPV4",
		"ipv4ConnectedPrefix": "10.9.0.0/29"}) // .2 to .6
	vm := func(method, address string) map[string]any {
		return map[string]any{"network": net, "method": method, "address": address}
	}
	addrOf := func(r *resource.Resource) string { s, _ := r.Properties["ipv4Address"].(string); return s }

	a := addrOf(e.mustPut(t, vmID("a"), vm("Dynamic", "")))
	b := addrOf(e.mustPut(t, vmID("b"), vm("Dynamic", "")))
	if a == "" || b == "" || a == b {
		t.Fatalf("Dynamic gave a %q and b %q, want two distinct addresses", a, b)
	}
	if again := addrOf(e.mustPut(t, vmID("a"), vm("Dynamic", ""))); again != a {
		t.Errorf("a's address changed from %s to %s on an update", a, again)
	}
	if again := addrOf(e.mustPut(t, vmID("b"), vm("Static", b))); again != b {
		t.Errorf("b asking for its own address %s statically got %s", b, again)
	}

	_, err := e.put(t, vmID("c"), vm("Static", a))
	wantError(t, "Put(c) of a's address", err, http.StatusConflict, "IPAddressInUse", "", a, vmID("a"))
	for _, reserved := range []string{"10.9.0.0", "10.9.0.1", "10.9.0.7"} {
		_, err := e.put(t, vmID("c"), vm("Static", reserved))
		wantError(t, "Put(c) of "+reserved, err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "", reserved, "cannot be assigned")
	}
	_, err = e.put(t, vmID("c"), vm("Static", "10.9.1.3"))
	wantError(t, "Put(c) outside the network", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "", "outside")
	_, err = e.put(t, vmID("c"), vm("Sometimes", ""))
	wantError(t, "Put(c) with a bad method", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "", "Sometimes")

	// Fill the /29 and overflow it.
	for _, n := range []string{"c", "d", "e"} {
		e.mustPut(t, vmID(n), vm("Dynamic", ""))
	}
	_, err = e.put(t, vmID("f"), vm("Dynamic", ""))
	wantError(t, "Put(f) on a full network", err, http.StatusConflict, "IPAddressExhausted", "", "vmnet")

	// The network's prefix cannot change, nor the network go, while VMs
	// hold addresses in it.
	_, err = e.put(t, net, map[string]any{"l3IsolationDomainId": l3Domain, "vlan": 501, "ipAllocationType": "IPV4", "ipv4ConnectedPrefix": "10.9.8.0/24"})
	wantError(t, "Put(network) with another prefix", err, http.StatusConflict, "NetworkInUse", "properties.ipv4ConnectedPrefix", vmID("a"), vmID("e"))
	err = e.delete(t, net)
	wantError(t, "Delete(network) in use", err, http.StatusConflict, "NetworkInUse", "", vmID("b"))

	// Delete releases: f may take a's address now. Disabled releases too.
	if err := e.delete(t, vmID("a")); err != nil {
		t.Fatal(err)
	}
	if got := addrOf(e.mustPut(t, vmID("f"), vm("Static", a))); got != a {
		t.Errorf("f asking for released %s got %q", a, got)
	}
	if got := addrOf(e.mustPut(t, vmID("b"), vm("Disabled", ""))); got != "" {
		t.Errorf("Disabled b has address %q", got)
	}
	if got := addrOf(e.mustPut(t, vmID("g"), vm("Dynamic", ""))); got != b {
		t.Errorf("g got %q, want b's released %s, the only free one", got, b)
	}

	// A network without IPv4 cannot give one; a missing one is named.
	v6 := networkID("l3Networks", "v6net")
	e.mustPut(t, v6, map[string]any{"l3IsolationDomainId": l3Domain, "vlan": 502, "ipAllocationType": "IPV6", "ipv6ConnectedPrefix": "fd00:9::/64"})
	_, err = e.put(t, vmID("h"), map[string]any{"network": v6, "method": "Dynamic"})
	wantError(t, "Put(h) on an IPv6 network", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "", "no IPv4 prefix")
	_, err = e.put(t, vmID("h"), map[string]any{"network": net + "x", "method": "Dynamic"})
	wantError(t, "Put(h) on a missing network", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "", "not found")

	// Once nothing holds an address the network may change and go.
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		if err := e.delete(t, vmID(n)); err != nil {
			t.Fatal(err)
		}
	}
	e.mustPut(t, net, map[string]any{"l3IsolationDomainId": l3Domain, "vlan": 501, "ipAllocationType": "IPV4", "ipv4ConnectedPrefix": "10.9.8.0/24"})
	if err := e.delete(t, net); err != nil {
		t.Errorf("Delete(network) no longer in use: %v", err)
	}
}

// props copies base and sets (or, for nil, removes) the key-value pairs kv.
func props(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func targetOf(err error) string {
	if ae, ok := errors.AsType[*arm.Error](err); ok {
		return ae.Target
	}
	return ""
}
