package fabric

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

const (
	testSub   = "3b0c9d5e-7a41-4f0e-9d8a-1c2e5f6a7b80"
	testGroup = "/subscriptions/" + testSub + "/resourceGroups/rg"
)

var (
	controllerID = nmfID("networkFabricControllers", "nfc1")
	fabricID     = nmfID("networkFabrics", "nf1")
	l3ID         = nmfID("l3IsolationDomains", "l3a")
)

func nmfID(typ, name string) string {
	return testGroup + "/providers/" + Namespace + "/" + typ + "/" + name
}

func deviceID(name string) string { return nmfID("networkDevices", name) }

// serialOf is the serial number the tests give a device.
func serialOf(device string) string { return "Citadel;SONiC;1.0;SN-" + device }

// env is the provider registered on a resource.Service over a real store,
// with the operations controller running and a fabric controller (nfc1)
// created.
type env struct {
	svc *resource.Service
	p   *Provider
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	return newEnvOn(t, storetest.Start(t), cfg)
}

// newEnvOn is newEnv on st. Devices report every 20 ms and get 5 s to
// apply a configuration unless cfg says otherwise.
func newEnvOn(t *testing.T, st *store.Store, cfg Config) *env {
	t.Helper()
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	if cfg.DeviceReport == 0 {
		cfg.DeviceReport = 20 * time.Millisecond
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = 5 * time.Second
	}
	svc := resource.NewService(resource.Config{Store: st, Location: "local", Logger: log})
	svc.Register(&resource.Type{Namespace: "Microsoft.Resources", Name: "resourceGroups", APIVersions: []string{"2021-04-01"},
		Scope: resource.ScopeSubscription, Tracked: true})
	e := &env{svc: svc, p: Register(svc, cfg)}
	if err := svc.CreateTenancy(ctx, resource.Tenant{ID: "t1"}, resource.Subscription{ID: testSub, TenantID: "t1", State: "Enabled"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rg := e.req(t, testGroup, `{"location":"local"}`)
	rg.APIVersion = "2021-04-01"
	if _, err := svc.Put(ctx, rg); err != nil {
		t.Fatal(err)
	}
	opsCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := svc.RunOperations(opsCtx, "test"); err != nil {
			t.Errorf("RunOperations = %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done }) // before the store closes
	e.mustPut(t, controllerID, map[string]any{"ipv4AddressSpace": "10.250.0.0/19"})
	return e
}

func mustID(t testing.TB, id string) arm.ID {
	t.Helper()
	parsed, err := arm.ParseID(id)
	if err != nil {
		t.Fatalf("ParseID(%s): %v", id, err)
	}
	return parsed
}

func (e *env) req(t testing.TB, id, body string) *resource.Request {
	t.Helper()
	return &resource.Request{ID: mustID(t, id), APIVersion: APIVersions[0], Body: []byte(body), Header: http.Header{},
		Caller: resource.Caller{ObjectID: "oid", Name: "tester", Type: "User"}, BaseURL: "https://example.test"}
}

// put PUTs properties at id (with a location for a top-level type) and,
// when the write is long-running, waits for it to succeed. It answers the
// stored resource.
func (e *env) put(t *testing.T, id string, props map[string]any) (*resource.Resource, error) {
	t.Helper()
	body := map[string]any{"properties": props}
	if len(mustID(t, id).Types) == 1 {
		body["location"] = "local"
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.Put(t.Context(), e.req(t, id, string(b)))
	if err != nil {
		return nil, err
	}
	if u := resp.Header.Get("Azure-AsyncOperation"); u != "" {
		if st := e.waitOp(t, opID(t, u)); st.Status != resource.OpSucceeded {
			t.Fatalf("Put(%s) ended %s: %+v", id, st.Status, st.Error)
		}
	}
	return e.lookup(t, id), nil
}

func (e *env) mustPut(t *testing.T, id string, props map[string]any) *resource.Resource {
	t.Helper()
	r, err := e.put(t, id, props)
	if err != nil {
		t.Fatalf("Put(%s): %v", id, err)
	}
	return r
}

func (e *env) patch(t *testing.T, id string, props map[string]any) error {
	t.Helper()
	b, err := json.Marshal(map[string]any{"properties": props})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Patch(t.Context(), e.req(t, id, string(b)))
	return err
}

func (e *env) delete(t *testing.T, id string) error {
	t.Helper()
	_, err := e.svc.Delete(t.Context(), e.req(t, id, ""))
	return err
}

// action starts POST {id}/{name} and answers its operation's id, or the
// error that refused it.
func (e *env) action(t *testing.T, id, name string, input any) (string, error) {
	t.Helper()
	b, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.Action(t.Context(), e.req(t, id, string(b)), name)
	if err != nil {
		return "", err
	}
	return opID(t, resp.Header.Get("Azure-AsyncOperation")), nil
}

// mustAction runs an action to its success and answers its result.
func (e *env) mustAction(t *testing.T, id, name string, input any) map[string]any {
	t.Helper()
	op, err := e.action(t, id, name, input)
	if err != nil {
		t.Fatalf("Action(%s, %s): %v", id, name, err)
	}
	return e.succeeded(t, op)
}

// succeeded waits for operation op and answers its result; it fails the
// test unless the operation succeeded.
func (e *env) succeeded(t *testing.T, op string) map[string]any {
	t.Helper()
	st := e.waitOp(t, op)
	if st.Status != resource.OpSucceeded {
		t.Fatalf("operation %s ended %s: %+v", op, st.Status, st.Error)
	}
	var out map[string]any
	if len(st.Properties) > 0 {
		if err := json.Unmarshal(st.Properties, &out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// opStatus is the part of an operation's status the tests read.
type opStatus struct {
	Status     string          `json:"status"`
	Error      *arm.Error      `json:"error"`
	Properties json.RawMessage `json:"properties"`
}

func opID(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil || u == "" {
		t.Fatalf("polling URL %q: %v", u, err)
	}
	return path.Base(p.Path)
}

// waitOp polls the operation until it ends, for at most 10 s.
func (e *env) waitOp(t testing.TB, op string) opStatus {
	t.Helper()
	req := &resource.Request{Caller: resource.Caller{ObjectID: "oid", Name: "tester", Type: "User"}}
	var st opStatus
	waitFor(t, "operation "+op+" to end", func() bool {
		resp, err := e.svc.OperationStatus(t.Context(), req, testSub, op)
		if err != nil {
			t.Fatalf("OperationStatus(%s): %v", op, err)
		}
		b, err := json.Marshal(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		st = opStatus{}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		return st.Status != resource.OpInProgress
	})
	return st
}

// waitFor polls cond every 5 ms until it holds, for at most 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lookup reads a stored resource, hidden properties included.
func (e *env) lookup(t testing.TB, id string) *resource.Resource {
	t.Helper()
	r, err := e.svc.Lookup(t.Context(), mustID(t, id))
	if err != nil {
		t.Fatalf("Lookup(%s): %v", id, err)
	}
	return r
}

// etag is the stored resource's ETag, or "" when there is none.
func (e *env) etag(t testing.TB, id string) string {
	t.Helper()
	r, err := e.svc.Lookup(t.Context(), mustID(t, id))
	if err != nil {
		return ""
	}
	return r.ETag
}

// set changes properties of a stored resource on the system's behalf, as
// the fabric's own work does; a nil value removes the property.
func (e *env) set(t testing.TB, id string, kv map[string]any) {
	t.Helper()
	if _, err := e.svc.Upsert(t.Context(), mustID(t, id), func(r *resource.Resource, _ bool) error {
		for k, v := range kv {
			if v == nil {
				delete(r.Properties, k)
			} else {
				r.Properties[k] = v
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("Upsert(%s): %v", id, err)
	}
}

func (e *env) ofType(t testing.TB, fullName string) []*resource.Resource {
	t.Helper()
	all, err := e.svc.ResourcesOfType(t.Context(), fullName)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func names(rs []*resource.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	slices.Sort(out)
	return out
}

// with copies base and sets (or, for nil, removes) the key-value pairs kv.
func with(base map[string]any, kv ...any) map[string]any {
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

func fabricBody(kv ...any) map[string]any {
	return with(map[string]any{
		"networkFabricSku": "M4-A400-A100-C16-aa", "networkFabricControllerId": controllerID,
		"fabricASN": 65048, "ipv4Prefix": "10.254.0.0/19", "rackCount": 1, "serverCountPerRack": 2,
		"managementNetworkConfiguration": map[string]any{"infrastructureVpnConfiguration": map[string]any{"peeringOption": "OptionA"},
			"workloadVpnConfiguration": map[string]any{"peeringOption": "OptionA"}},
		"terminalServerConfiguration": map[string]any{"username": "admin", "password": "ts-secret",
			"primaryIpv4Prefix": "10.254.32.0/30", "secondaryIpv4Prefix": "10.254.32.4/30"},
	}, kv...)
}

func l2Body(kv ...any) map[string]any {
	return with(map[string]any{"networkFabricId": fabricID, "vlanId": 501, "mtu": 1500}, kv...)
}

func internalBody(kv ...any) map[string]any {
	return with(map[string]any{"vlanId": 601, "connectedIPv4Subnets": []any{map[string]any{"prefix": "10.60.1.0/24"}},
		"bgpConfiguration": map[string]any{"peerASN": 65300, "ipv4NeighborAddress": []any{map[string]any{"address": "10.60.1.10"}}}}, kv...)
}

func optionA(vlan, asn int, prefix string) map[string]any {
	return map[string]any{"vlanId": vlan, "peerASN": asn, "primaryIpv4Prefix": prefix}
}

func externalBody(kv ...any) map[string]any {
	return with(map[string]any{"peeringOption": "OptionA", "optionAProperties": optionA(701, 65200, "10.70.0.0/31")}, kv...)
}

func statement(seq int, action, prefixList string) map[string]any {
	s := map[string]any{"sequenceNumber": seq, "action": map[string]any{"actionType": action}}
	if prefixList != "" {
		s["condition"] = map[string]any{"ipPrefixId": prefixList}
	}
	return s
}

func policyBody(kv ...any) map[string]any {
	return with(map[string]any{"networkFabricId": fabricID, "statements": []any{statement(10, "Permit", "")}}, kv...)
}

func aclMatch(seq int, prefix, action string) map[string]any {
	return map[string]any{"sequenceNumber": seq,
		"matchConditions": []any{map[string]any{"protocolTypes": []any{"TCP"},
			"ipCondition":   map[string]any{"type": "SourceIP", "ipPrefixValues": []any{prefix}},
			"portCondition": map[string]any{"ports": []any{"22"}}}},
		"actions": []any{map[string]any{"type": action}}}
}

func aclBody(kv ...any) map[string]any {
	return with(map[string]any{"configurationType": "Inline", "defaultAction": "Permit",
		"matchConfigurations": []any{aclMatch(10, "10.1.0.0/16", "Drop")}}, kv...)
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

// TestValidation: a refused write names the field it is about and changes
// nothing, whether it creates a resource or replaces one.
func TestValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.mustPut(t, fabricID, fabricBody())
	e.mustPut(t, l3ID, map[string]any{"networkFabricId": fabricID})
	ce1 := deviceID("nf1-AggrRack-CE1")
	missingPolicy := nmfID("routePolicies", "nope")

	const (
		typFabric   = "networkFabrics"
		typL2       = "l2IsolationDomains"
		typInternal = "internalNetworks"
		typExternal = "externalNetworks"
		typPolicy   = "routePolicies"
		typACL      = "accessControlLists"
		typDevice   = "networkDevices"
	)
	tests := []struct {
		name, typ string
		props     map[string]any
		target    string // the field named; "" for a success
		says      string
	}{
		{"fabric ok", typFabric, fabricBody(), "", ""},
		{"fabric unknown SKU", typFabric, fabricBody("networkFabricSku", "M9-Z"), "properties.networkFabricSku", "not in the catalog"},
		{"fabric racks above SKU", typFabric, fabricBody("rackCount", 5), "properties.rackCount", "more than SKU M4-A400-A100-C16-aa allows (4)"},
		{"fabric missing controller", typFabric, fabricBody("networkFabricControllerId", nmfID("networkFabricControllers", "nope")),
			"properties.networkFabricControllerId", "does not exist"},
		{"fabric controller not an ID", typFabric, fabricBody("networkFabricControllerId", "nfc1"), "properties.networkFabricControllerId", "resource ID"},
		{"fabric prefix not CIDR", typFabric, fabricBody("ipv4Prefix", "10.254.0.0"), "properties.ipv4Prefix", "not a CIDR prefix"},
		{"fabric prefix host bits", typFabric, fabricBody("ipv4Prefix", "10.254.0.1/19"), "properties.ipv4Prefix", "host bits"},
		{"fabric prefix too small", typFabric, fabricBody("ipv4Prefix", "10.254.0.0/29"), "properties.ipv4Prefix", "too small"},
		{"fabric ASN 0", typFabric, fabricBody("fabricASN", 0), "properties.fabricASN", "not 0"},
		{"fabric ASN of the ToRs", typFabric, fabricBody("fabricASN", 65001), "properties.fabricASN", "ToRs' AS"},
		{"fabric no management network", typFabric, fabricBody("managementNetworkConfiguration", nil), "properties.managementNetworkConfiguration", "required"},

		{"l2 ok", typL2, l2Body(), "", ""},
		{"l2 vlan 50", typL2, l2Body("vlanId", 50), "properties.vlanId", "from 100 to 4094, not 50"},
		{"l2 vlan 5000", typL2, l2Body("vlanId", 5000), "properties.vlanId", "not 5000"},
		{"l2 mtu 20000", typL2, l2Body("mtu", 20000), "properties.mtu", "not 20000"},
		{"l2 missing fabric", typL2, l2Body("networkFabricId", nmfID("networkFabrics", "nope")), "properties.networkFabricId", "does not exist"},

		{"internal ok", typInternal, internalBody("importRoutePolicy", nil), "", ""},
		{"internal subnet not CIDR", typInternal, internalBody("connectedIPv4Subnets", []any{map[string]any{"prefix": "10.60.1.0"}}),
			"properties.connectedIPv4Subnets[0].prefix", "not an IPv4 CIDR prefix"},
		{"internal subnet IPv6", typInternal, internalBody("connectedIPv4Subnets", []any{map[string]any{"prefix": "10.60.1.0/24"}, map[string]any{"prefix": "fd00::/64"}}),
			"properties.connectedIPv4Subnets[1].prefix", "fd00::/64"},
		{"internal peer ASN 0", typInternal, internalBody("bgpConfiguration", map[string]any{"peerASN": 0}), "properties.bgpConfiguration.peerASN", "not 0"},
		{"internal missing import policy", typInternal, internalBody("importRoutePolicy", map[string]any{"importIpv4RoutePolicyId": missingPolicy}),
			"properties.importRoutePolicy.importIpv4RoutePolicyId", "does not exist"},

		{"external ok", typExternal, externalBody(), "", ""},
		{"external option B", typExternal, externalBody("peeringOption", "OptionB"), "properties.peeringOption", "OptionB"},
		{"external /29", typExternal, externalBody("optionAProperties", optionA(701, 65200, "10.70.0.0/29")), "properties.optionAProperties.primaryIpv4Prefix", "/30 or /31"},
		{"external host bits", typExternal, externalBody("optionAProperties", optionA(701, 65200, "10.70.0.1/30")), "properties.optionAProperties.primaryIpv4Prefix", ""},

		{"policy ok", typPolicy, policyBody(), "", ""},
		{"policy duplicate sequence", typPolicy, policyBody("statements", []any{statement(10, "Permit", ""), statement(10, "Deny", "")}),
			"properties.statements[1].sequenceNumber", "unique"},
		{"policy sequence 70000", typPolicy, policyBody("statements", []any{statement(70000, "Permit", "")}), "properties.statements[0].sequenceNumber", "not 70000"},
		{"policy action Maybe", typPolicy, policyBody("statements", []any{statement(10, "Maybe", "")}), "properties.statements[0].action.actionType", "not 'Maybe'"},
		{"policy action Continue", typPolicy, policyBody("statements", []any{statement(10, "Continue", "")}), "properties.statements[0].action.actionType", "no SONiC route map equivalent"},
		{"policy missing prefix list", typPolicy, policyBody("statements", []any{statement(10, "Permit", nmfID("ipPrefixes", "nope"))}),
			"properties.statements[0].condition.ipPrefixId", "does not exist"},

		{"acl ok", typACL, aclBody(), "", ""},
		{"acl from a file", typACL, aclBody("configurationType", "File"), "properties.configurationType", "not 'File'"},
		{"acl without matches", typACL, aclBody("matchConfigurations", []any{}), "properties.matchConfigurations", "is required"},
		{"acl bad prefix", typACL, aclBody("matchConfigurations", []any{aclMatch(10, "10.1.0.0", "Drop")}),
			"properties.matchConfigurations[0].matchConditions[0].ipCondition.ipPrefixValues[0]", "not a CIDR prefix"},

		{"device ok", typDevice, map[string]any{"serialNumber": serialOf("nf1-AggrRack-CE1")}, "", ""},
		{"device serial without three ';'", typDevice, map[string]any{"serialNumber": "Citadel;SONiC;SN1"}, "properties.serialNumber", "Make;Model;HardwareRevisionId;SerialNumber"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The fabric and the device are replaced; the rest is created.
			var id string
			name := fmt.Sprintf("res%02d", i)
			switch tt.typ {
			case typFabric:
				id = fabricID
			case typDevice:
				id = ce1
			case typInternal, typExternal:
				id = l3ID + "/" + tt.typ + "/" + name
			default:
				id = nmfID(tt.typ, name)
			}
			before := e.etag(t, id)
			var err error
			if tt.typ == typDevice {
				err = e.patch(t, id, tt.props) // a PUT of the system's device is refused
			} else {
				_, err = e.put(t, id, tt.props)
			}
			if tt.target == "" {
				if err != nil {
					t.Fatalf("Put(%s %v) = %v, want success", tt.typ, tt.props, err)
				}
				return
			}
			wantError(t, "Put("+tt.name+")", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, tt.target, tt.says)
			if after := e.etag(t, id); after != before {
				t.Errorf("Put(%s) was refused but changed %s: ETag %q, was %q", tt.name, id, after, before)
			}
		})
	}
}

// TestFabricLayout: the fabric's PUT lays out an aggregator rack and its
// compute racks, three devices each, and the devices' cabled interfaces;
// a smaller fabric drops a rack, and devices keep their serial numbers.
func TestFabricLayout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	plan := func(racks int) network.Topology {
		topo, err := network.PlanFabric(network.FabricSpec{Name: "nf1", ASN: 65048, ManagementPrefix: netip.MustParsePrefix("10.254.0.0/19"),
			ComputeRacks: racks, ServersPerRack: 2})
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	cabled := func(topo network.Topology) int {
		n := 0
		for _, d := range topo.Devices {
			for _, p := range d.Ports {
				if p.Kind != network.PortUnused {
					n++
				}
			}
		}
		return n
	}
	rackID := func(name string) string { return nmfID("networkRacks", "nf1-"+name) }
	check := func(t *testing.T, racks int) {
		t.Helper()
		topo := plan(racks)
		devices := e.ofType(t, deviceType)
		var want []string
		for _, d := range topo.Devices {
			want = append(want, d.Name)
		}
		slices.Sort(want)
		if len(devices) != 3+3*racks {
			t.Errorf("%d rack(s): %d devices, want %d", racks, len(devices), 3+3*racks)
		}
		if diff := cmp.Diff(want, names(devices)); diff != "" {
			t.Errorf("%d rack(s): devices (-want +got):\n%s", racks, diff)
		}
		wantRacks := []string{rackID("AggrRack")}
		for i := 1; i <= racks; i++ {
			wantRacks = append(wantRacks, rackID(fmt.Sprintf("CompRack%d", i)))
		}
		f := e.lookup(t, fabricID)
		var gotRacks, routers []string
		decode(f.Properties["racks"], &gotRacks)
		decode(f.Properties["routerIds"], &routers)
		if diff := cmp.Diff(wantRacks, gotRacks); diff != "" {
			t.Errorf("%d rack(s): fabric racks (-want +got):\n%s", racks, diff)
		}
		if len(routers) != 2+2*racks {
			t.Errorf("%d rack(s): routerIds %v, want one per CE and ToR", racks, routers)
		}
		if got := len(e.ofType(t, rackType)); got != 1+racks {
			t.Errorf("%d rack(s): %d racks stored, want %d", racks, got, 1+racks)
		}
		for _, r := range wantRacks {
			var ds []string
			decode(e.lookup(t, r).Properties["networkDevices"], &ds)
			if len(ds) != 3 {
				t.Errorf("rack %s has devices %v, want 3", r, ds)
			}
		}
	}

	f := e.mustPut(t, fabricID, fabricBody("rackCount", 2))
	if f.Properties["configurationState"] != stateSucceeded || f.Properties["administrativeState"] != adminDisabled {
		t.Errorf("new fabric: configurationState %v, administrativeState %v; want Succeeded, Disabled",
			f.Properties["configurationState"], f.Properties["administrativeState"])
	}
	check(t, 2)
	if got, want := len(e.ofType(t, interfaceType)), cabled(plan(2)); got != want {
		t.Errorf("%d interfaces, want %d (the cabled ports)", got, want)
	}

	tor := deviceID("nf1-CompRack1-TOR1")
	d := e.lookup(t, tor)
	for k, want := range map[string]any{"networkDeviceRole": network.RoleToR, "networkRackId": rackID("CompRack1"),
		"networkFabricId": fabricID, "serialNumber": "", "configurationState": stateSucceeded, "administrativeState": adminDisabled} {
		if d.Properties[k] != want {
			t.Errorf("%s %s = %v, want %v", d.Name, k, d.Properties[k], want)
		}
	}
	interfaces := []struct {
		port, kind, description, connectedTo string
	}{
		{"Ethernet0", "Data", network.PortUplink, "nf1-AggrRack-CE1:Ethernet0"},
		{"Ethernet4", "Data", network.PortUplink, "nf1-AggrRack-CE2:Ethernet0"},
		{"Ethernet8", "Data", network.PortServer, "CompRack1 slot 1 eth0"},
		{"Ethernet120", "Data", network.PortPeer, "nf1-CompRack1-TOR2:Ethernet120"},
		{"Management0", "Management", network.PortManagement, "nf1-CompRack1-MgmtSwitch:Ethernet40"},
	}
	for _, want := range interfaces {
		r := e.lookup(t, tor+"/networkInterfaces/"+want.port)
		got := []any{r.Properties["interfaceType"], r.Properties["description"], r.Properties["connectedTo"]}
		if diff := cmp.Diff([]any{want.kind, want.description, want.connectedTo}, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", d.Name, want.port, diff)
		}
	}
	if etag := e.etag(t, tor+"/networkInterfaces/Ethernet100"); etag != "" {
		t.Errorf("unused port Ethernet100 of %s is an interface", d.Name)
	}

	// A device's serial number survives the fabric's next PUT, which
	// also drops the second compute rack with its devices and interfaces.
	ce1 := deviceID("nf1-AggrRack-CE1")
	if err := e.patch(t, ce1, map[string]any{"serialNumber": serialOf("nf1-AggrRack-CE1")}); err != nil {
		t.Fatal(err)
	}
	e.mustPut(t, fabricID, fabricBody("rackCount", 1))
	if got := e.lookup(t, ce1).Properties["serialNumber"]; got != serialOf("nf1-AggrRack-CE1") {
		t.Errorf("serialNumber after the fabric's second PUT = %v, want %s", got, serialOf("nf1-AggrRack-CE1"))
	}
	check(t, 1)
	// The interfaces of the dropped devices go with them, and so do the
	// CEs' interfaces of the ports that were cabled to the dropped rack.
	for _, r := range e.ofType(t, interfaceType) {
		if strings.Contains(r.ID, "/networkDevices/nf1-CompRack2-") {
			t.Errorf("interface %s of a dropped device is still there", r.ID)
		}
	}
	if got, want := len(e.ofType(t, interfaceType)), cabled(plan(1)); got != want {
		t.Errorf("%d interfaces after shrinking, want %d (the cabled ports)", got, want)
	}
}

// TestStaging: intent written to a provisioned fabric waits for a commit;
// a Configuration lock refuses changes and commits; an enabled domain
// cannot be deleted.
func TestStaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.mustPut(t, fabricID, fabricBody())
	states := func(r *resource.Resource) [2]any {
		return [2]any{r.Properties["configurationState"], r.Properties["administrativeState"]}
	}
	l2a, l2b, l2c := nmfID("l2IsolationDomains", "l2a"), nmfID("l2IsolationDomains", "l2b"), nmfID("l2IsolationDomains", "l2c")

	if got := states(e.mustPut(t, l2a, l2Body())); got != [2]any{stateSucceeded, adminDisabled} {
		t.Errorf("new domain of an unprovisioned fabric: %v, want Succeeded, Disabled", got)
	}
	e.set(t, fabricID, map[string]any{"configurationState": stateProvisioned})
	if got := states(e.mustPut(t, l2b, l2Body("vlanId", 502))); got != [2]any{statePendingCommit, adminDisabled} {
		t.Errorf("new domain of a provisioned fabric: %v, want PendingCommit, Disabled", got)
	}
	// The states are the fabric's: a client cannot set them.
	if got := states(e.mustPut(t, l2a, l2Body("mtu", 9000, "administrativeState", adminEnabled, "configurationState", stateSucceeded))); got != [2]any{statePendingCommit, adminDisabled} {
		t.Errorf("changed domain of a provisioned fabric: %v, want PendingCommit, Disabled", got)
	}
	res := e.mustAction(t, l2a, "updateAdministrativeState", map[string]any{"state": "Enable"})
	if got := states(e.lookup(t, l2a)); got != [2]any{statePendingCommit, adminEnabled} || res["configurationState"] != statePendingCommit {
		t.Errorf("enabled domain: %v (result %v), want PendingCommit, Enabled", got, res)
	}
	_, err := e.action(t, l2a, "updateAdministrativeState", map[string]any{"state": "UnderMaintenance"})
	wantError(t, "updateAdministrativeState(UnderMaintenance) of a domain", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "state", "Enable or Disable")

	err = e.delete(t, l2a)
	wantError(t, "Delete(enabled domain)", err, http.StatusConflict, "ResourceEnabled", "", "disable it")
	e.lookup(t, l2a) // still there

	_, err = e.action(t, fabricID, "lockFabric", map[string]any{"lockType": "Everything", "action": "Lock"})
	wantError(t, "lockFabric(Everything)", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "lockType")
	e.mustAction(t, fabricID, "lockFabric", map[string]any{"lockType": lockConfiguration, "action": "Lock"})
	var locks []lock
	decode(e.lookup(t, fabricID).Properties["fabricLocks"], &locks)
	if diff := cmp.Diff([]lock{{LockType: lockConfiguration, LockState: adminEnabled}}, locks); diff != "" {
		t.Errorf("fabricLocks (-want +got):\n%s", diff)
	}
	for _, w := range []struct {
		name, id string
		props    map[string]any
	}{
		{"new l2 domain", l2c, l2Body("vlanId", 503)},
		{"changed l2 domain", l2b, l2Body("vlanId", 504)},
		{"new l3 domain", nmfID("l3IsolationDomains", "l3b"), map[string]any{"networkFabricId": fabricID}},
		{"new route policy", nmfID("routePolicies", "rp1"), policyBody()},
	} {
		before := e.etag(t, w.id)
		_, err := e.put(t, w.id, w.props)
		wantError(t, "Put("+w.name+") while locked", err, http.StatusConflict, "FabricLocked", "", "Configuration lock")
		if after := e.etag(t, w.id); after != before {
			t.Errorf("Put(%s) was refused but changed it: ETag %q, was %q", w.name, after, before)
		}
	}
	_, err = e.action(t, fabricID, "commitConfiguration", map[string]any{})
	wantError(t, "commitConfiguration while locked", err, http.StatusConflict, "FabricLocked", "")
	err = e.delete(t, l2b) // disabled, but the fabric is locked
	wantError(t, "Delete(disabled domain) while locked", err, http.StatusConflict, "FabricLocked", "")
	e.lookup(t, l2b)

	// An Administrative lock refuses changes of administrative state.
	e.mustAction(t, fabricID, "lockFabric", map[string]any{"lockType": lockAdministrative, "action": "Lock"})
	_, err = e.action(t, l2b, "updateAdministrativeState", map[string]any{"state": "Enable"})
	wantError(t, "updateAdministrativeState while locked", err, http.StatusConflict, "FabricLocked", "", "Administrative lock")

	// Unlocked, the same writes go through.
	e.mustAction(t, fabricID, "lockFabric", map[string]any{"lockType": lockConfiguration, "action": "Unlock"})
	decode(e.lookup(t, fabricID).Properties["fabricLocks"], &locks)
	if diff := cmp.Diff([]lock{{LockType: lockAdministrative, LockState: adminEnabled}}, locks); diff != "" {
		t.Errorf("fabricLocks after unlocking Configuration (-want +got):\n%s", diff)
	}
	if got := states(e.mustPut(t, l2c, l2Body("vlanId", 503))); got != [2]any{statePendingCommit, adminDisabled} {
		t.Errorf("domain written after the unlock: %v, want PendingCommit, Disabled", got)
	}
	if err := e.delete(t, l2b); err != nil {
		t.Errorf("Delete(disabled domain) after the unlock: %v", err)
	}
}

// fakeCertificates records the devices whose certificates were revoked.
type fakeCertificates struct {
	mu      sync.Mutex
	revoked []string
}

func (c *fakeCertificates) Revoke(_ context.Context, subject string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revoked = append(c.revoked, subject)
	return nil
}

func (c *fakeCertificates) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.revoked)
}

// device decodes what the fabric keeps of a device.
func (e *env) device(t testing.TB, id string) deviceState {
	t.Helper()
	return deviceOf(e.lookup(t, id))
}

// TestDevices: provisioning a fabric opens its devices' bootstrap; each
// device is admitted by its serial number once, reports what it runs, and
// learns what to do: apply a configuration again while it drifted, reboot
// once when asked.
func TestDevices(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	signer, err := audit.NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	activity := audit.NewLog(audit.LogConfig{Store: st, Signer: signer})
	certs := &fakeCertificates{}
	e := newEnvOn(t, st, Config{Audit: activity, Certificates: certs})
	chainCtx, cancel := context.WithCancel(t.Context())
	chained := make(chan struct{})
	go func() {
		defer close(chained)
		activity.RunChainer(chainCtx, "test")
	}()
	t.Cleanup(func() { cancel(); <-chained })
	ctx := t.Context()

	e.mustPut(t, fabricID, fabricBody())
	devices := names(e.ofType(t, deviceType))
	if len(devices) != 6 {
		t.Fatalf("devices %v, want 6", devices)
	}
	_, err = e.action(t, fabricID, "provision", map[string]any{})
	wantError(t, "provision without serial numbers", err, http.StatusBadRequest, "SerialNumberRequired", "", devices[0])
	for _, d := range devices {
		if err := e.patch(t, deviceID(d), map[string]any{"serialNumber": serialOf(d)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.p.Bootstrap(ctx, serialOf(devices[0])); !errors.Is(err, ErrNotAwaited) {
		t.Errorf("Bootstrap before provision = %v, want ErrNotAwaited", err)
	}

	// Provision renders every configuration and waits for the devices:
	// this test plays them.
	op, err := e.action(t, fabricID, "provision", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the devices to await their bootstrap", func() bool {
		for _, d := range devices {
			if ds := e.device(t, deviceID(d)); ds.Bootstrap != awaiting || ds.Intended == nil {
				return false
			}
		}
		return true
	})
	if _, _, err := e.p.Bootstrap(ctx, "Citadel;SONiC;1.0;SN-unknown"); !errors.Is(err, ErrNotAwaited) {
		t.Errorf("Bootstrap(unknown serial) = %v, want ErrNotAwaited", err)
	}
	configs := map[string]agentapi.DeviceConfig{}
	for _, d := range devices {
		id, cfg, err := e.p.Bootstrap(ctx, serialOf(d))
		if err != nil || id != deviceID(d) || cfg.Revision != 1 || len(cfg.ConfigDB) == 0 {
			t.Fatalf("Bootstrap(%s) = %s, revision %d, %v; want %s at revision 1", serialOf(d), id, cfg.Revision, err, deviceID(d))
		}
		if got, err := e.p.DeviceConfig(ctx, id); err != nil || !cmp.Equal(got, cfg) {
			t.Errorf("DeviceConfig(%s) = %v, %v; want what the bootstrap gave", d, got, err)
		}
		if ds := e.device(t, id); ds.ConfigurationState != stateProvisioning {
			t.Errorf("%s before its first report: configurationState %s, want Provisioning", d, ds.ConfigurationState)
		}
		configs[d] = cfg
		reply, err := e.p.Report(ctx, id, agentapi.DeviceState{AppliedRevision: cfg.Revision, Running: cfg.ConfigDB, Version: "1.0.0"})
		if err != nil || reply != (agentapi.DeviceReply{ConfigRevision: 1}) {
			t.Errorf("Report(%s) = %+v, %v; want revision 1 and nothing to do", d, reply, err)
		}
	}
	e.succeeded(t, op)
	if f := e.lookup(t, fabricID); f.Properties["configurationState"] != stateProvisioned || f.Properties["administrativeState"] != adminEnabled {
		t.Errorf("fabric after provision: %v, %v; want Provisioned, Enabled", f.Properties["configurationState"], f.Properties["administrativeState"])
	}
	ce := devices[0] // nf1-AggrRack-CE1
	ceID := deviceID(ce)
	intended := agentapi.DeviceState{AppliedRevision: 1, Running: configs[ce].ConfigDB, Version: "1.0.0"}
	ds := e.device(t, ceID)
	if ds.ConfigurationState != stateProvisioned || ds.Drift.Status != "InSync" || len(ds.Drift.Items) != 0 || ds.Applied != 1 || ds.Bootstrap != "" {
		t.Errorf("%s after its report: %s, drift %+v, applied %d, bootstrap %q; want Provisioned, InSync, 1, none", ce, ds.ConfigurationState, ds.Drift, ds.Applied, ds.Bootstrap)
	}
	if _, _, err := e.p.Bootstrap(ctx, serialOf(ce)); !errors.Is(err, ErrNotAwaited) {
		t.Errorf("a second Bootstrap(%s) = %v, want ErrNotAwaited", ce, err)
	}

	// The same report again writes nothing.
	report := func(st agentapi.DeviceState) agentapi.DeviceReply {
		t.Helper()
		reply, err := e.p.Report(ctx, ceID, st)
		if err != nil {
			t.Fatalf("Report(%s): %v", ce, err)
		}
		return reply
	}
	before := e.etag(t, ceID)
	report(intended)
	if after := e.etag(t, ceID); after != before {
		t.Errorf("the same report changed %s: ETag %s, was %s", ce, after, before)
	}

	// A hand edit is drift: one item naming the field, DeferredControl,
	// an event in the activity log; the same drifted report again writes
	// nothing either.
	db, err := network.ParseConfigDB(configs[ce].ConfigDB)
	if err != nil {
		t.Fatal(err)
	}
	host := db["DEVICE_METADATA"]["localhost"]["hostname"]
	db["DEVICE_METADATA"]["localhost"]["hostname"] = "rogue"
	drifted := agentapi.DeviceState{AppliedRevision: 1, Running: db.JSON(), Version: "1.0.0"}
	if reply := report(drifted); reply.Reapply || reply.Reboot != "" {
		t.Errorf("Report(drifted) before a refresh = %+v, want nothing asked", reply)
	}
	ds = e.device(t, ceID)
	wantItems := []string{"DEVICE_METADATA|localhost hostname: intended " + host + ", running rogue"}
	if ds.ConfigurationState != stateDeferred || ds.Drift.Status != "Drifted" || ds.Drift.DetectedTime == "" || !cmp.Equal(ds.Drift.Items, wantItems) {
		t.Errorf("%s drifted: %s, %+v; want DeferredControl, Drifted %v", ce, ds.ConfigurationState, ds.Drift, wantItems)
	}
	before = e.etag(t, ceID)
	report(drifted)
	if after := e.etag(t, ceID); after != before {
		t.Errorf("the same drifted report changed %s: ETag %s, was %s", ce, after, before)
	}

	// refreshConfiguration asks the device to apply its configuration
	// again while it drifts, and no longer once it runs it.
	op, err = e.action(t, ceID, "refreshConfiguration", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reapply to be asked", func() bool { return e.device(t, ceID).Reapply })
	if reply := report(drifted); !reply.Reapply {
		t.Errorf("Report(drifted) during a refresh = %+v, want Reapply", reply)
	}
	if reply := report(intended); reply.Reapply {
		t.Errorf("Report(intended) during a refresh = %+v, want no Reapply", reply)
	}
	e.succeeded(t, op)
	ds = e.device(t, ceID)
	if ds.ConfigurationState != stateProvisioned || ds.Drift.Status != "InSync" || ds.Reapply {
		t.Errorf("%s after the refresh: %s, %+v, reapply %v; want Provisioned, InSync, no reapply", ce, ds.ConfigurationState, ds.Drift, ds.Reapply)
	}

	if err := activity.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _, err := activity.Records(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, r := range recs {
		if r.Event.OperationName.Value == driftOperation && strings.EqualFold(r.Event.ResourceID, ceID) {
			events = append(events, r.Event.Level+": "+r.Event.Description)
		}
	}
	wantEvents := []string{
		"Warning: " + ce + " runs a configuration that differs from the one it was given: " + wantItems[0] + ".",
		"Informational: " + ce + " runs its configuration again.",
	}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("drift events in the activity log (-want +got):\n%s", diff)
	}

	// A reboot is handed out once and cleared.
	op, err = e.action(t, ceID, "reboot", map[string]any{"rebootType": "GracefulRebootWithoutZTP"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reboot to be asked", func() bool { return e.device(t, ceID).PendingReboot != "" })
	if reply := report(intended); reply.Reboot != "WithoutZTP" {
		t.Errorf("Report during a reboot = %+v, want Reboot WithoutZTP", reply)
	}
	if reply := report(intended); reply.Reboot != "" {
		t.Errorf("the next Report = %+v, want the reboot asked only once", reply)
	}
	e.succeeded(t, op)
	if ds := e.device(t, ceID); ds.PendingReboot != "" || ds.Bootstrap != "" {
		t.Errorf("after the reboot: pendingReboot %q, bootstrap %q; want both cleared", ds.PendingReboot, ds.Bootstrap)
	}
	if got := certs.list(); len(got) != 0 {
		t.Errorf("certificates revoked by a reboot without ZTP: %v", got)
	}

	// With ZTP the device forgets its certificate and bootstraps again.
	op, err = e.action(t, ceID, "reboot", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reboot to be asked", func() bool { return e.device(t, ceID).PendingReboot != "" })
	if reply := report(intended); reply.Reboot != "WithZTP" {
		t.Errorf("Report during a reboot = %+v, want Reboot WithZTP", reply)
	}
	if ds := e.device(t, ceID); ds.PendingReboot != "" || ds.Bootstrap != awaiting {
		t.Errorf("after the reboot was handed out: pendingReboot %q, bootstrap %q; want none, Awaiting", ds.PendingReboot, ds.Bootstrap)
	}
	if diff := cmp.Diff([]string{ceID}, certs.list()); diff != "" {
		t.Errorf("revoked certificates (-want +got):\n%s", diff)
	}
	if id, _, err := e.p.Bootstrap(ctx, serialOf(ce)); err != nil || id != ceID {
		t.Errorf("Bootstrap(%s) after a reboot with ZTP = %s, %v; want %s", ce, id, err, ceID)
	}
	if reply := report(intended); reply.Reboot != "" {
		t.Errorf("Report after the bootstrap = %+v, want no reboot", reply)
	}
	e.succeeded(t, op)
	if ds := e.device(t, ceID); ds.Bootstrap != "" || ds.ConfigurationState != stateProvisioned {
		t.Errorf("after a reboot with ZTP: bootstrap %q, %s; want none, Provisioned", ds.Bootstrap, ds.ConfigurationState)
	}
}

// TestRenderIntent: the enabled intent of a fabric reaches its devices'
// configurations; what is disabled does not.
func TestRenderIntent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := t.Context()
	e.mustPut(t, fabricID, fabricBody())
	e.set(t, fabricID, map[string]any{"configurationState": stateProvisioned})

	pl := nmfID("ipPrefixes", "pl1")
	rp := nmfID("routePolicies", "rp1")
	acl := nmfID("accessControlLists", "acl1")
	l2on, l2off := nmfID("l2IsolationDomains", "l2on"), nmfID("l2IsolationDomains", "l2off")
	in601, in602 := l3ID+"/internalNetworks/in601", l3ID+"/internalNetworks/in602"
	e.mustPut(t, pl, map[string]any{"ipPrefixRules": []any{map[string]any{"action": "Permit", "sequenceNumber": 10,
		"networkPrefix": "10.60.0.0/16", "condition": "GreaterThanOrEqualTo", "subnetMaskLength": "24"}}})
	e.mustPut(t, rp, policyBody("statements", []any{statement(10, "Permit", pl), statement(20, "Deny", "")}))
	e.mustPut(t, acl, aclBody())
	e.mustPut(t, l2on, l2Body("vlanId", 501))
	e.mustPut(t, l2off, l2Body("vlanId", 777))
	e.mustPut(t, l3ID, map[string]any{"networkFabricId": fabricID})
	e.mustPut(t, in601, internalBody("importRoutePolicy", map[string]any{"importIpv4RoutePolicyId": rp}, "ingressAclId", acl))
	e.mustPut(t, in602, internalBody("vlanId", 602, "connectedIPv4Subnets", []any{map[string]any{"prefix": "10.60.2.0/24"}}, "bgpConfiguration", nil))
	for _, id := range []string{l2on, l3ID, in601} {
		e.set(t, id, map[string]any{"administrativeState": adminEnabled})
	}

	intent, pending, err := e.p.collectIntent(ctx, fabricID)
	if err != nil {
		t.Fatal(err)
	}
	wantL2 := []network.L2Domain{{Name: "l2off", VLAN: 777, MTU: 1500}, {Name: "l2on", VLAN: 501, MTU: 1500, Enabled: true}}
	if diff := cmp.Diff(wantL2, intent.L2Domains); diff != "" {
		t.Errorf("L2 domains (-want +got):\n%s", diff)
	}
	if len(intent.L3Domains) != 1 || len(intent.L3Domains[0].Networks) != 2 || !intent.L3Domains[0].Enabled {
		t.Fatalf("L3 domains = %+v, want l3a, enabled, with two networks", intent.L3Domains)
	}
	if n := intent.L3Domains[0].Networks[0]; n.Name != "in601" || !n.Enabled || n.ImportPolicy != "rp1" || n.IngressACL != "acl1" || n.PeerASN != 65300 {
		t.Errorf("in601 = %+v, want enabled with rp1 in, acl1 in and peer AS 65300", n)
	}
	if len(intent.RoutePolicies) != 1 || len(intent.PrefixLists) != 1 || len(intent.ACLs) != 1 {
		t.Errorf("intent has route policies %+v, prefix lists %+v, ACLs %+v; want rp1, pl1, acl1", intent.RoutePolicies, intent.PrefixLists, intent.ACLs)
	}
	slices.Sort(pending)
	wantPending := []string{l2off, l2on, l3ID, in601, in602, rp}
	slices.Sort(wantPending)
	if diff := cmp.Diff(wantPending, pending); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}

	configs, _, err := e.p.render(ctx, e.lookup(t, fabricID))
	if err != nil {
		t.Fatal(err)
	}
	parse := func(device string) network.ConfigDB {
		t.Helper()
		b, ok := configs[strings.ToLower(device)]
		if !ok {
			t.Fatalf("no configuration rendered for %s", device)
		}
		db, err := network.ParseConfigDB(b)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	if len(configs) != 6 {
		t.Errorf("%d configurations rendered, want one per device (6)", len(configs))
	}
	tor := parse("nf1-CompRack1-TOR1")
	has := func(db network.ConfigDB, table, key string) bool { _, ok := db[table][key]; return ok }
	for _, want := range [][2]string{
		{"VLAN", "Vlan501"}, {"VLAN", "Vlan601"},
		{"VLAN_INTERFACE", "Vlan601|10.60.1.1/24"},
		{"VRF", "Vrf_l3a"},
		{"BGP_NEIGHBOR", "Vrf_l3a|10.60.1.10"},
		{"ROUTE_MAP", "rp1|10"}, {"ROUTE_MAP", "rp1|20"},
		{"PREFIX_SET", "pl1"}, {"PREFIX", "pl1|10|10.60.0.0/16|24..32"},
		{"ACL_TABLE", "acl1"}, {"ACL_RULE", "acl1|RULE_1000"},
	} {
		if !has(tor, want[0], want[1]) {
			t.Errorf("ToR configuration has no %s|%s; its %s: %v", want[0], want[1], want[0], tor[want[0]])
		}
	}
	for _, check := range []struct{ table, key, field, want string }{
		{"ROUTE_MAP", "rp1|10", "match_prefix_set", "pl1"},
		{"ROUTE_MAP", "rp1|20", "route_operation", "deny"},
		{"BGP_NEIGHBOR_AF", "Vrf_l3a|10.60.1.10|ipv4_unicast", "route_map_in", "rp1"},
		{"ACL_TABLE", "acl1", "ports@", "Vlan601"},
		{"ACL_TABLE", "acl1", "stage", "ingress"},
		{"ACL_RULE", "acl1|RULE_1000", "PACKET_ACTION", "DROP"},
		{"ACL_RULE", "acl1|RULE_1000", "SRC_IP", "10.1.0.0/16"},
		{"ACL_RULE", "acl1|RULE_1000", "L4_DST_PORT", "22"},
	} {
		if got := tor[check.table][check.key][check.field]; got != check.want {
			t.Errorf("ToR %s|%s %s = %q, want %q", check.table, check.key, check.field, got, check.want)
		}
	}
	// The disabled domain and network render nothing, on any device.
	for name := range configs {
		db := parse(name)
		for _, vlan := range []string{"Vlan777", "Vlan602"} {
			if has(db, "VLAN", vlan) {
				t.Errorf("%s carries disabled %s", name, vlan)
			}
		}
	}
	// CEs route the domain but carry no VLANs; management switches
	// neither.
	if ce := parse("nf1-AggrRack-CE1"); !has(ce, "VRF", "Vrf_l3a") || len(ce["VLAN"]) != 0 || len(ce["ACL_TABLE"]) != 0 {
		t.Errorf("CE1: VRF %v, VLAN %v, ACL_TABLE %v; want Vrf_l3a and no VLANs or ACLs", ce["VRF"], ce["VLAN"], ce["ACL_TABLE"])
	}
	if mgmt := parse("nf1-CompRack1-MgmtSwitch"); len(mgmt["VRF"]) != 0 || len(mgmt["VLAN"]) != 0 {
		t.Errorf("management switch: VRF %v, VLAN %v; want neither", mgmt["VRF"], mgmt["VLAN"])
	}

	// Disabling the L3 domain takes its VRF, networks, route map and ACL
	// off the ToRs.
	e.set(t, l3ID, map[string]any{"administrativeState": adminDisabled})
	configs, _, err = e.p.render(ctx, e.lookup(t, fabricID))
	if err != nil {
		t.Fatal(err)
	}
	tor = parse("nf1-CompRack1-TOR1")
	for _, gone := range [][2]string{{"VLAN", "Vlan601"}, {"VRF", "Vrf_l3a"}, {"ROUTE_MAP", "rp1|10"}, {"ACL_TABLE", "acl1"}} {
		if has(tor, gone[0], gone[1]) {
			t.Errorf("ToR configuration with l3a disabled still has %s|%s", gone[0], gone[1])
		}
	}
	if !has(tor, "VLAN", "Vlan501") {
		t.Error("ToR configuration lost the enabled L2 domain's Vlan501")
	}
}
