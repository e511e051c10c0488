package networkcloud

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/providers/extendedlocation"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// The L3 network type, and the fabric types networks name.
const (
	l3NetworkType = Namespace + "/l3Networks"

	fabricNamespace     = "Microsoft.ManagedNetworkFabric"
	l2DomainType        = fabricNamespace + "/l2IsolationDomains"
	l3DomainType        = fabricNamespace + "/l3IsolationDomains"
	internalNetworkType = fabricNamespace + "/l3IsolationDomains/internalNetworks"
)

// networkReadOnly are the properties every network type's server owns.
var networkReadOnly = []string{"associatedResourceIds", "clusterId", "detailedStatus", "detailedStatusMessage",
	"hybridAksClustersAssociatedIds", "virtualMachinesAssociatedIds"}

// interfaceNamePattern is the spec's rule for a network's default
// interface name in a virtual machine (at most 12 characters).
var interfaceNamePattern = regexp.MustCompile(`^[a-zA-Z0-9@._-]*$`)

// csnInterfaceName is the interface a cloud services network shows up as.
const csnInterfaceName = "csn"

// networkTypes are the four network types.
func (p *Provider) networkTypes() []*resource.Type {
	typ := func(name string, validate func(context.Context, *resource.Write) error, readOnly ...string) *resource.Type {
		return &resource.Type{
			Namespace: Namespace, Name: name, APIVersions: APIVersions, Tracked: true,
			NamePattern: namePattern, NameRule: nameRule,
			ReadOnly: append(slices.Clone(networkReadOnly), readOnly...),
			Validate: validate,
		}
	}
	l3 := typ("l3Networks", p.validateL3Network)
	l3.ValidateDelete, l3.OwnsPool = p.refuseHeldAddresses, true
	return []*resource.Type{
		typ("l2Networks", p.validateL2Network),
		l3,
		typ("trunkedNetworks", p.validateTrunkedNetwork),
		typ("cloudServicesNetworks", p.validateCloudServicesNetwork, "enabledEgressEndpoints", "interfaceName", "storageStatus"),
	}
}

// l2NetworkProperties are an L2 network's (2026-07-01 L2NetworkProperties).
type l2NetworkProperties struct {
	HybridAksPluginType string `json:"hybridAksPluginType"` // deprecated: kept, ignored
	InterfaceName       string `json:"interfaceName"`
	L2IsolationDomainID string `json:"l2IsolationDomainId"`
}

// l3NetworkProperties are an L3 network's (2026-07-01 L3NetworkProperties).
type l3NetworkProperties struct {
	HybridAksIpamEnabled string `json:"hybridAksIpamEnabled"` // deprecated: kept, ignored
	HybridAksPluginType  string `json:"hybridAksPluginType"`  // deprecated: kept, ignored
	InterfaceName        string `json:"interfaceName"`
	IPAllocationType     string `json:"ipAllocationType"`
	IPv4ConnectedPrefix  string `json:"ipv4ConnectedPrefix"`
	IPv6ConnectedPrefix  string `json:"ipv6ConnectedPrefix"`
	L3IsolationDomainID  string `json:"l3IsolationDomainId"`
	VLAN                 int    `json:"vlan"`
}

// trunkedNetworkProperties are a trunked network's (2026-07-01
// TrunkedNetworkProperties).
type trunkedNetworkProperties struct {
	HybridAksPluginType string   `json:"hybridAksPluginType"` // deprecated: kept, ignored
	InterfaceName       string   `json:"interfaceName"`
	IsolationDomainIDs  []string `json:"isolationDomainIds"`
	VLANs               []int    `json:"vlans"`
}

// cloudServicesNetworkProperties are a cloud services network's
// (2026-07-01 CloudServicesNetworkProperties).
type cloudServicesNetworkProperties struct {
	AdditionalEgressEndpoints    []egressEndpoint `json:"additionalEgressEndpoints"`
	EnableDefaultEgressEndpoints string           `json:"enableDefaultEgressEndpoints"`
	InterfaceName                string           `json:"interfaceName"`
	StorageOptions               *struct {
		Mode               string `json:"mode"`
		SizeMiB            *int64 `json:"sizeMiB"`
		StorageApplianceID string `json:"storageApplianceId"`
	} `json:"storageOptions"`
}

type egressEndpoint struct {
	Category  string `json:"category"`
	Endpoints []struct {
		DomainName string `json:"domainName"`
		Port       *int   `json:"port,omitempty"`
	} `json:"endpoints"`
}

// networkCluster resolves a network's extendedLocation to its cluster and
// fills in what every network type shows: clusterId, and on creation an
// Available status and no associations yet.
func (p *Provider) networkCluster(ctx context.Context, w *resource.Write, kind string) error {
	cluster, err := extendedlocation.Resolve(ctx, p.svc, "extendedLocation", w.New.ExtendedLocation, clusterType)
	if err != nil {
		return err
	}
	w.New.Properties["clusterId"] = cluster.String()
	if w.Old == nil {
		set(w.New.Properties, map[string]any{
			"detailedStatus": "Available", "detailedStatusMessage": "The " + kind + " is available.",
			"associatedResourceIds": []any{},
		})
	}
	return nil
}

func checkInterfaceName(name string) error {
	switch {
	case len(name) > 12:
		return arm.FieldError("properties.interfaceName", "interfaceName '%s' is longer than 12 characters.", name)
	case !interfaceNamePattern.MatchString(name):
		return arm.FieldError("properties.interfaceName", "interfaceName '%s' may have only letters, digits, '@', '.', '_' and '-'.", name)
	}
	return nil
}

func checkVLAN(field string, vlan int) error {
	if vlan < 1 || vlan > 4094 {
		return arm.FieldError(field, "%s must be a VLAN from 1 to 4094, not %d.", field[strings.LastIndex(field, ".")+1:], vlan)
	}
	return nil
}

// isolationDomain looks up the fabric isolation domain id names, which
// must be of one of the types given.
func (p *Provider) isolationDomain(ctx context.Context, field, id string, types ...string) (*resource.Resource, error) {
	what := "an isolation domain"
	if len(types) == 1 {
		what = "an " + strings.TrimSuffix(types[0][strings.LastIndex(types[0], "/")+1:], "s")
	}
	if id == "" {
		return nil, arm.FieldError(field, "%s is required: the resource ID of %s.", field[strings.LastIndex(field, ".")+1:], what)
	}
	rid, err := arm.ParseID(id)
	if err != nil || !slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(rid.Type(), t) }) {
		return nil, arm.FieldError(field, "'%s' is not the resource ID of %s.", id, what)
	}
	r, err := p.svc.Lookup(ctx, rid)
	if isMissing(err) {
		return nil, arm.FieldError(field, "The isolation domain '%s' was not found.", id)
	}
	return r, err
}

// isMissing reports whether err says that a resource, its group or its
// parent does not exist: for a reference, all mean it names nothing.
func isMissing(err error) bool {
	e, ok := errors.AsType[*arm.Error](err)
	return ok && e.Status == http.StatusNotFound
}

func (p *Provider) validateL2Network(ctx context.Context, w *resource.Write) error {
	var n l2NetworkProperties
	if err := resource.DecodeProperties(w.New, &n); err != nil {
		return err
	}
	if err := p.networkCluster(ctx, w, "L2 network"); err != nil {
		return err
	}
	if _, err := p.isolationDomain(ctx, "properties.l2IsolationDomainId", n.L2IsolationDomainID, l2DomainType); err != nil {
		return err
	}
	return checkInterfaceName(n.InterfaceName)
}

// IP allocation types of an L3 network.
const (
	allocIPv4      = "IPV4"
	allocIPv6      = "IPV6"
	allocDualStack = "DualStack"
)

func (p *Provider) validateL3Network(ctx context.Context, w *resource.Write) error {
	var n l3NetworkProperties
	if err := resource.DecodeProperties(w.New, &n); err != nil {
		return err
	}
	if err := p.networkCluster(ctx, w, "L3 network"); err != nil {
		return err
	}
	domain, err := p.isolationDomain(ctx, "properties.l3IsolationDomainId", n.L3IsolationDomainID, l3DomainType)
	if err != nil {
		return err
	}
	if err := checkVLAN("properties.vlan", n.VLAN); err != nil {
		return err
	}
	if err := p.checkDomainVLAN(ctx, domain, n.VLAN); err != nil {
		return err
	}
	if err := checkInterfaceName(n.InterfaceName); err != nil {
		return err
	}
	switch {
	case n.IPAllocationType == "":
		n.IPAllocationType = allocDualStack
	case strings.EqualFold(n.IPAllocationType, allocIPv4):
		n.IPAllocationType = allocIPv4
	case strings.EqualFold(n.IPAllocationType, allocIPv6):
		n.IPAllocationType = allocIPv6
	case strings.EqualFold(n.IPAllocationType, allocDualStack):
		n.IPAllocationType = allocDualStack
	default:
		return arm.FieldError("properties.ipAllocationType", "ipAllocationType must be IPV4, IPV6 or DualStack, not '%s'.", n.IPAllocationType)
	}
	w.New.Properties["ipAllocationType"] = n.IPAllocationType
	v4, err := connectedPrefix("ipv4ConnectedPrefix", n.IPv4ConnectedPrefix, n.IPAllocationType != allocIPv6, n.IPAllocationType, true)
	if err != nil {
		return err
	}
	if _, err := connectedPrefix("ipv6ConnectedPrefix", n.IPv6ConnectedPrefix, n.IPAllocationType != allocIPv4, n.IPAllocationType, false); err != nil {
		return err
	}
	if w.Old != nil {
		return p.checkPrefixKept(ctx, w, v4)
	}
	return nil
}

// connectedPrefix checks an L3 network's prefix of one family: required
// when the allocation type has the family, refused when it has not.
func connectedPrefix(name, cidr string, wanted bool, allocation string, is4 bool) (netip.Prefix, error) {
	field := "properties." + name
	switch {
	case cidr == "" && wanted:
		return netip.Prefix{}, arm.FieldError(field, "%s is required when ipAllocationType is %s.", name, allocation)
	case cidr == "":
		return netip.Prefix{}, nil
	case !wanted:
		return netip.Prefix{}, arm.FieldError(field, "%s is not used when ipAllocationType is %s; leave it out.", name, allocation)
	}
	pool, err := network.ParsePool(cidr)
	if err != nil {
		return netip.Prefix{}, arm.FieldError(field, "%s is not a usable prefix: %s.", name, ruleReason(err))
	}
	if pool.Prefix.Addr().Is4() != is4 {
		family := "an IPv6"
		if is4 {
			family = "an IPv4"
		}
		return netip.Prefix{}, arm.FieldError(field, "%s must be %s prefix, not %s.", name, family, cidr)
	}
	return pool.Prefix, nil
}

// ruleReason is the reason of a network.RuleError, without its field.
func ruleReason(err error) string {
	if re, ok := errors.AsType[*network.RuleError](err); ok {
		return re.Reason
	}
	return err.Error()
}

// checkDomainVLAN requires vlan to be one of the domain's internal
// networks' VLANs, when it has any.
func (p *Provider) checkDomainVLAN(ctx context.Context, domain *resource.Resource, vlan int) error {
	did, err := arm.ParseID(domain.ID)
	if err != nil {
		return err
	}
	internal, err := p.svc.Resources(ctx, did, internalNetworkType)
	if err != nil {
		return err
	}
	if len(internal) == 0 {
		return nil
	}
	var vlans []string
	for _, n := range internal {
		v := int(num(n.Properties, "vlanId"))
		if v == vlan {
			return nil
		}
		vlans = append(vlans, strconv.Itoa(v))
	}
	return arm.FieldError("properties.vlan", "vlan %d is not the VLAN of an internal network of the l3IsolationDomain '%s' (%s).",
		vlan, domain.Name, strings.Join(vlans, ", "))
}

// addressPool names the claims of an L3 network's IPv4 addresses.
func addressPool(networkID string) string { return resource.PoolOf(networkID) }

// checkPrefixKept refuses changing an L3 network's IPv4 prefix while
// anything holds an address in it.
func (p *Provider) checkPrefixKept(ctx context.Context, w *resource.Write, v4 netip.Prefix) error {
	var old l3NetworkProperties
	if err := decode(w.Old.Properties, &old); err != nil {
		return err
	}
	oldPrefix, _ := netip.ParsePrefix(old.IPv4ConnectedPrefix)
	if oldPrefix == v4 {
		return nil
	}
	holders, err := p.addressHolders(ctx, w.ID.String())
	if err != nil || holders == "" {
		return err
	}
	e := arm.Errorf(http.StatusConflict, "NetworkInUse",
		"The ipv4ConnectedPrefix of the L3 network '%s' cannot change from %s while these resources hold addresses in it: %s.",
		w.ID.Name(), oldPrefix, holders)
	e.Target = "properties.ipv4ConnectedPrefix"
	return e
}

// addressHolders names the resources that hold addresses of the L3
// network, "" when none does.
func (p *Provider) addressHolders(ctx context.Context, networkID string) (string, error) {
	claimed, err := p.svc.Claimed(ctx, addressPool(networkID))
	if err != nil {
		return "", err
	}
	var owners []string
	for _, o := range claimed {
		if !slices.ContainsFunc(owners, func(x string) bool { return strings.EqualFold(x, o) }) {
			owners = append(owners, o)
		}
	}
	slices.Sort(owners)
	const shown = 10
	if len(owners) > shown {
		return fmt.Sprintf("%s and %d more", strings.Join(owners[:shown], ", "), len(owners)-shown), nil
	}
	return strings.Join(owners, ", "), nil
}

// refuseHeldAddresses refuses deleting an L3 network while anything
// holds an address in it.
func (p *Provider) refuseHeldAddresses(ctx context.Context, r *resource.Resource) error {
	holders, err := p.addressHolders(ctx, r.ID)
	if err != nil || holders == "" {
		return err
	}
	return arm.Errorf(http.StatusConflict, "NetworkInUse",
		"The L3 network '%s' cannot be deleted while these resources hold addresses in it: %s.", r.Name, holders)
}

func (p *Provider) validateTrunkedNetwork(ctx context.Context, w *resource.Write) error {
	var n trunkedNetworkProperties
	if err := resource.DecodeProperties(w.New, &n); err != nil {
		return err
	}
	if err := p.networkCluster(ctx, w, "trunked network"); err != nil {
		return err
	}
	if len(n.IsolationDomainIDs) == 0 {
		return arm.FieldError("properties.isolationDomainIds", "isolationDomainIds is required: at least one l2IsolationDomain or l3IsolationDomain.")
	}
	for i, id := range n.IsolationDomainIDs {
		if _, err := p.isolationDomain(ctx, fmt.Sprintf("properties.isolationDomainIds[%d]", i), id, l2DomainType, l3DomainType); err != nil {
			return err
		}
	}
	if len(n.VLANs) == 0 {
		return arm.FieldError("properties.vlans", "vlans is required: at least one VLAN of the isolation domains.")
	}
	for i, v := range n.VLANs {
		field := fmt.Sprintf("properties.vlans[%d]", i)
		if err := checkVLAN(field, v); err != nil {
			return err
		}
		if slices.Contains(n.VLANs[:i], v) {
			return arm.FieldError(field, "VLAN %d is listed twice.", v)
		}
	}
	return checkInterfaceName(n.InterfaceName)
}

func (p *Provider) validateCloudServicesNetwork(ctx context.Context, w *resource.Write) error {
	var n cloudServicesNetworkProperties
	if err := resource.DecodeProperties(w.New, &n); err != nil {
		return err
	}
	if err := p.networkCluster(ctx, w, "cloud services network"); err != nil {
		return err
	}
	switch {
	case n.EnableDefaultEgressEndpoints == "":
		n.EnableDefaultEgressEndpoints = "True"
	case strings.EqualFold(n.EnableDefaultEgressEndpoints, "True"):
		n.EnableDefaultEgressEndpoints = "True"
	case strings.EqualFold(n.EnableDefaultEgressEndpoints, "False"):
		n.EnableDefaultEgressEndpoints = "False"
	default:
		return arm.FieldError("properties.enableDefaultEgressEndpoints", "enableDefaultEgressEndpoints must be True or False, not '%s'.", n.EnableDefaultEgressEndpoints)
	}
	for i, e := range n.AdditionalEgressEndpoints {
		field := fmt.Sprintf("properties.additionalEgressEndpoints[%d]", i)
		if e.Category == "" {
			return arm.FieldError(field+".category", "category is required.")
		}
		if len(e.Endpoints) == 0 {
			return arm.FieldError(field+".endpoints", "endpoints is required: at least one endpoint.")
		}
		for j, ep := range e.Endpoints {
			f := fmt.Sprintf("%s.endpoints[%d]", field, j)
			if ep.DomainName == "" {
				return arm.FieldError(f+".domainName", "domainName is required.")
			}
			if ep.Port != nil && (*ep.Port < 1 || *ep.Port > 65535) {
				return arm.FieldError(f+".port", "port must be from 1 to 65535, not %d.", *ep.Port)
			}
		}
	}
	if so := n.StorageOptions; so != nil {
		if so.Mode != "" && so.Mode != "None" && so.Mode != "Standard" {
			return arm.FieldError("properties.storageOptions.mode", "mode must be None or Standard, not '%s'.", so.Mode)
		}
		if so.SizeMiB != nil && *so.SizeMiB < 1 {
			return arm.FieldError("properties.storageOptions.sizeMiB", "sizeMiB must be at least 1, not %d.", *so.SizeMiB)
		}
	}
	enabled := []any{}
	if n.EnableDefaultEgressEndpoints == "True" {
		enabled = append(enabled, p.defaultEgressEndpoints()...)
	}
	for _, e := range n.AdditionalEgressEndpoints {
		enabled = append(enabled, jsonValue(e))
	}
	set(w.New.Properties, map[string]any{
		"enableDefaultEgressEndpoints": n.EnableDefaultEgressEndpoints,
		"enabledEgressEndpoints":       enabled,
		"interfaceName":                csnInterfaceName,
	})
	return nil
}

// defaultEgressEndpoints are the endpoints a cloud services network lets
// workloads reach by default. Nothing outside the boundary is reachable,
// so the platform's own endpoint, the control plane (where machines fetch
// their images), is the only one.
func (p *Provider) defaultEgressEndpoints() []any {
	u, err := url.Parse(p.cfg.ImageURL)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	ep := map[string]any{"domainName": u.Hostname()}
	port := 443
	if u.Port() != "" {
		port, _ = strconv.Atoi(u.Port())
	}
	ep["port"] = port
	return []any{map[string]any{"category": "default", "endpoints": []any{ep}}}
}

// claimAddress gives the resource being written (a virtual machine) an
// IPv4 address on the L3 network networkID, claimed in the write's
// transaction, and returns it ("" when method is Disabled). Static takes
// requested, which nothing else may hold; Dynamic keeps the address the
// resource holds on the network already, or picks a free one. Errors are
// *arm.Error without a Target: the caller names its field.
func (p *Provider) claimAddress(ctx context.Context, w *resource.Write, networkID string, method string, requested string) (string, error) {
	if strings.EqualFold(method, "Disabled") {
		return "", nil
	}
	nid, err := arm.ParseID(networkID)
	if err != nil || !strings.EqualFold(nid.Type(), l3NetworkType) {
		return "", arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "'%s' is not the resource ID of an L3 network.", networkID)
	}
	n, err := p.svc.Lookup(ctx, nid)
	if isMissing(err) {
		return "", arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "The L3 network '%s' was not found.", networkID)
	}
	if err != nil {
		return "", err
	}
	pool, err := addressPoolOf(n)
	if err != nil {
		return "", err
	}
	name := addressPool(n.ID)
	claimed, err := p.svc.Claimed(ctx, name)
	if err != nil {
		return "", err
	}
	mine := func(a string) bool { // claimed by this write already (a second attachment)
		return slices.Contains(w.Claims, resource.Claim{Pool: name, Item: a})
	}
	var addr netip.Addr
	switch {
	case strings.EqualFold(method, "Static"):
		if addr, err = pool.CheckStatic(requested); err != nil {
			return "", arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent,
				"The address '%s' cannot be assigned on the L3 network '%s': %s.", requested, n.Name, ruleReason(err))
		}
		owner, held := claimed[addr.String()]
		if held && !strings.EqualFold(owner, w.ID.String()) || mine(addr.String()) {
			holder := owner
			if mine(addr.String()) {
				holder = w.ID.String()
			}
			return "", arm.Errorf(http.StatusConflict, "IPAddressInUse",
				"The address %s on the L3 network '%s' is already held by '%s'.", addr, n.Name, holder)
		}
	case strings.EqualFold(method, "Dynamic"):
		for _, h := range w.Held(name) {
			if a, err := netip.ParseAddr(h); err == nil && pool.Reserved(a) == "" && !mine(h) {
				addr = a
				break
			}
		}
		if !addr.IsValid() {
			taken := func(a netip.Addr) bool {
				_, held := claimed[a.String()]
				return held || mine(a.String())
			}
			addr, err = pool.Pick(taken, rand.Uint64N(pool.Size()))
			if errors.Is(err, network.ErrExhausted) {
				return "", arm.Errorf(http.StatusConflict, "IPAddressExhausted",
					"The L3 network '%s' has no free IPv4 address left in %s.", n.Name, pool.Prefix)
			}
			if err != nil {
				return "", err
			}
		}
	default:
		return "", arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent,
			"The IP allocation method must be Dynamic, Static or Disabled, not '%s'.", method)
	}
	w.ClaimIn(n, addr.String())
	return addr.String(), nil
}

// addressPoolOf is the IPv4 pool of a stored L3 network.
func addressPoolOf(n *resource.Resource) (network.Pool, error) {
	prefix := str(n.Properties, "ipv4ConnectedPrefix")
	if prefix == "" {
		return network.Pool{}, arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent,
			"The L3 network '%s' has no IPv4 prefix (its ipAllocationType is %s).", n.Name, str(n.Properties, "ipAllocationType"))
	}
	pool, err := network.ParsePool(prefix)
	if err != nil {
		return network.Pool{}, fmt.Errorf("l3 network %s: stored prefix %q: %w", n.ID, prefix, err)
	}
	return pool, nil
}
