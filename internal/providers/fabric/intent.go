package fabric

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// The fabric's intent is what its isolation domains, internal networks,
// route policies, ACLs and prefix lists add up to. Writing them stages a
// change (configurationState PendingCommit once the fabric is
// provisioned); the fabric's commitConfiguration renders it onto the
// devices.

// fabricOfWrite finds the fabric a write of an intent resource belongs
// to (its networkFabricId, or its parent's for an internal network) and
// refuses the write while the fabric holds a Configuration lock.
func (p *Provider) fabricOfWrite(ctx context.Context, w *resource.Write, fabricID string) (*resource.Resource, error) {
	f, err := p.reference(ctx, "properties.networkFabricId", fabricID, fabricType)
	if err != nil {
		return nil, err
	}
	if fp, _ := fabricOf(f); fp.locked(lockConfiguration) {
		return nil, fabricLocked(f.Name, lockConfiguration)
	}
	staged(w, f)
	return f, nil
}

// staged sets the states of a written intent resource: its change waits
// for a commit once the fabric is provisioned; a new resource starts
// administratively disabled.
func staged(w *resource.Write, fabric *resource.Resource) {
	state := stateSucceeded
	if str(fabric.Properties, "configurationState") == stateProvisioned {
		state = statePendingCommit
	}
	w.New.Properties["configurationState"] = state
	if w.Old == nil {
		w.New.Properties["administrativeState"] = adminDisabled
	}
}

type l2Props struct {
	NetworkFabricID string `json:"networkFabricId"`
	VlanID          int    `json:"vlanId"`
	MTU             int    `json:"mtu"`
}

func (p *Provider) validateL2Domain(ctx context.Context, w *resource.Write) error {
	var d l2Props
	if err := resource.DecodeProperties(w.New, &struct {
		*l2Props
		Annotation                     string `json:"annotation"`
		ExtendedVlan                   string `json:"extendedVlan"`
		NetworkToNetworkInterconnectID string `json:"networkToNetworkInterconnectId"`
	}{l2Props: &d}); err != nil {
		return err
	}
	if err := checkVLAN("properties.vlanId", d.VlanID); err != nil {
		return err
	}
	if err := checkMTU(w, d.MTU); err != nil {
		return err
	}
	_, err := p.fabricOfWrite(ctx, w, d.NetworkFabricID)
	return err
}

func checkVLAN(field string, vlan int) error {
	if vlan < 100 || vlan > 4094 {
		return arm.FieldError(field, "%s must be from 100 to 4094, not %d.", nameOf(strings.ReplaceAll(field, ".", "/")), vlan)
	}
	return nil
}

func checkMTU(w *resource.Write, mtu int) error {
	if mtu == 0 {
		w.New.Properties["mtu"] = 1500
		return nil
	}
	if mtu < 64 || mtu > 9200 {
		return arm.FieldError("properties.mtu", "mtu must be from 64 to 9200, not %d.", mtu)
	}
	return nil
}

type l3Props struct {
	NetworkFabricID              string `json:"networkFabricId"`
	RedistributeConnectedSubnets string `json:"redistributeConnectedSubnets"`
	RedistributeStaticRoutes     string `json:"redistributeStaticRoutes"`
}

func (p *Provider) validateL3Domain(ctx context.Context, w *resource.Write) error {
	var d l3Props
	if err := decode(w.New.Properties, &d); err != nil {
		return arm.FieldError("properties", "The isolation domain's properties are invalid: %v.", err)
	}
	for _, f := range []string{"redistributeConnectedSubnets", "redistributeStaticRoutes"} {
		switch v := str(w.New.Properties, f); v {
		case "":
			w.New.Properties[f] = "True"
		case "True", "False":
		default:
			return arm.FieldError("properties."+f, "%s must be True or False, not '%s'.", f, v)
		}
	}
	_, err := p.fabricOfWrite(ctx, w, d.NetworkFabricID)
	return err
}

// internalProps is the part of an internal network the fabric renders.
type internalProps struct {
	VlanID               int `json:"vlanId"`
	MTU                  int `json:"mtu"`
	ConnectedIPv4Subnets []struct {
		Prefix string `json:"prefix"`
	} `json:"connectedIPv4Subnets"`
	BgpConfiguration *struct {
		PeerASN             int64 `json:"peerASN"`
		IPv4NeighborAddress []struct {
			Address string `json:"address"`
		} `json:"ipv4NeighborAddress"`
	} `json:"bgpConfiguration"`
	ImportRoutePolicy struct {
		ImportIPv4RoutePolicyID string `json:"importIpv4RoutePolicyId"`
	} `json:"importRoutePolicy"`
	ExportRoutePolicy struct {
		ExportIPv4RoutePolicyID string `json:"exportIpv4RoutePolicyId"`
	} `json:"exportRoutePolicy"`
	IngressACLID string `json:"ingressAclId"`
	EgressACLID  string `json:"egressAclId"`
}

func (p *Provider) validateInternalNetwork(ctx context.Context, w *resource.Write) error {
	var n internalProps
	if err := decode(w.New.Properties, &n); err != nil {
		return arm.FieldError("properties", "The internal network's properties are invalid: %v.", err)
	}
	if err := checkVLAN("properties.vlanId", n.VlanID); err != nil {
		return err
	}
	if err := checkMTU(w, n.MTU); err != nil {
		return err
	}
	for i, s := range n.ConnectedIPv4Subnets {
		if pr, err := netip.ParsePrefix(s.Prefix); err != nil || !pr.Addr().Is4() {
			return arm.FieldError("properties.connectedIPv4Subnets["+itoa(i)+"].prefix", "'%s' is not an IPv4 CIDR prefix.", s.Prefix)
		}
	}
	if b := n.BgpConfiguration; b != nil {
		if b.PeerASN < 1 || b.PeerASN > 4294967295 {
			return arm.FieldError("properties.bgpConfiguration.peerASN", "peerASN must be from 1 to 4294967295, not %d.", b.PeerASN)
		}
		for i, a := range b.IPv4NeighborAddress {
			if _, err := netip.ParseAddr(a.Address); err != nil {
				return arm.FieldError("properties.bgpConfiguration.ipv4NeighborAddress["+itoa(i)+"].address", "'%s' is not an IP address.", a.Address)
			}
		}
	}
	if err := p.references(ctx,
		ref{"properties.importRoutePolicy.importIpv4RoutePolicyId", n.ImportRoutePolicy.ImportIPv4RoutePolicyID, routePolicy},
		ref{"properties.exportRoutePolicy.exportIpv4RoutePolicyId", n.ExportRoutePolicy.ExportIPv4RoutePolicyID, routePolicy},
		ref{"properties.ingressAclId", n.IngressACLID, aclType},
		ref{"properties.egressAclId", n.EgressACLID, aclType},
	); err != nil {
		return err
	}
	return p.inDomain(ctx, w)
}

// ref is a property that names another resource, if set.
type ref struct{ field, id, typ string }

// references checks that each set reference names a stored resource of
// its type.
func (p *Provider) references(ctx context.Context, refs ...ref) error {
	for _, r := range refs {
		if r.id == "" {
			continue
		}
		if _, err := p.reference(ctx, r.field, r.id, r.typ); err != nil {
			return err
		}
	}
	return nil
}

// inDomain fills in the networkFabricId of a network in an L3 isolation
// domain from its domain's, and checks the write against that fabric.
func (p *Provider) inDomain(ctx context.Context, w *resource.Write) error {
	parent, _ := w.ID.Parent()
	domain, err := p.svc.Lookup(ctx, parent)
	if err != nil {
		return err
	}
	w.New.Properties["networkFabricId"] = str(domain.Properties, "networkFabricId")
	_, err = p.fabricOfWrite(ctx, w, str(domain.Properties, "networkFabricId"))
	return err
}

// externalProps is the part of an external network the fabric renders.
type externalProps struct {
	PeeringOption     string `json:"peeringOption"`
	OptionAProperties *struct {
		VlanID            int    `json:"vlanId"`
		PeerASN           int64  `json:"peerASN"`
		PrimaryIPv4Prefix string `json:"primaryIpv4Prefix"`
	} `json:"optionAProperties"`
	ImportRoutePolicy struct {
		ImportIPv4RoutePolicyID string `json:"importIpv4RoutePolicyId"`
	} `json:"importRoutePolicy"`
	ExportRoutePolicy struct {
		ExportIPv4RoutePolicyID string `json:"exportIpv4RoutePolicyId"`
	} `json:"exportRoutePolicy"`
}

// validateExternalNetwork accepts option A external networks (a VLAN
// and a point-to-point prefix towards the provider edge).
func (p *Provider) validateExternalNetwork(ctx context.Context, w *resource.Write) error {
	var n externalProps
	if err := decode(w.New.Properties, &n); err != nil {
		return arm.FieldError("properties", "The external network's properties are invalid: %v.", err)
	}
	if n.PeeringOption != "OptionA" {
		return arm.FieldError("properties.peeringOption", "peeringOption must be OptionA, not '%s': Citadel's fabrics peer with the provider edge by VLAN.", n.PeeringOption)
	}
	a := n.OptionAProperties
	if a == nil {
		return arm.FieldError("properties.optionAProperties", "optionAProperties is required with peeringOption OptionA.")
	}
	if err := checkVLAN("properties.optionAProperties.vlanId", a.VlanID); err != nil {
		return err
	}
	if a.PeerASN < 1 || a.PeerASN > 4294967295 {
		return arm.FieldError("properties.optionAProperties.peerASN", "peerASN must be from 1 to 4294967295, not %d.", a.PeerASN)
	}
	if pr, err := netip.ParsePrefix(a.PrimaryIPv4Prefix); err != nil || !pr.Addr().Is4() || pr.Masked() != pr || pr.Bits() < 30 {
		return arm.FieldError("properties.optionAProperties.primaryIpv4Prefix",
			"'%s' must be an IPv4 /30 or /31 network prefix: the CE's link to the provider edge.", a.PrimaryIPv4Prefix)
	}
	if err := p.references(ctx,
		ref{"properties.importRoutePolicy.importIpv4RoutePolicyId", n.ImportRoutePolicy.ImportIPv4RoutePolicyID, routePolicy},
		ref{"properties.exportRoutePolicy.exportIpv4RoutePolicyId", n.ExportRoutePolicy.ExportIPv4RoutePolicyID, routePolicy},
	); err != nil {
		return err
	}
	return p.inDomain(ctx, w)
}

type routePolicyProps struct {
	NetworkFabricID string `json:"networkFabricId"`
	Statements      []struct {
		SequenceNumber int64 `json:"sequenceNumber"`
		Condition      struct {
			IPPrefixID string `json:"ipPrefixId"`
		} `json:"condition"`
		Action struct {
			ActionType string `json:"actionType"`
		} `json:"action"`
	} `json:"statements"`
}

func (p *Provider) validateRoutePolicy(ctx context.Context, w *resource.Write) error {
	var rp routePolicyProps
	if err := decode(w.New.Properties, &rp); err != nil {
		return arm.FieldError("properties", "The route policy's properties are invalid: %v.", err)
	}
	if len(rp.Statements) == 0 {
		return arm.FieldError("properties.statements", "statements is required.")
	}
	seen := map[int64]bool{}
	for i, s := range rp.Statements {
		field := "properties.statements[" + itoa(i) + "]"
		if s.SequenceNumber < 1 || s.SequenceNumber > 65535 || seen[s.SequenceNumber] {
			return arm.FieldError(field+".sequenceNumber", "sequenceNumber must be unique and from 1 to 65535 (a SONiC route map's range), not %d.", s.SequenceNumber)
		}
		seen[s.SequenceNumber] = true
		if a := s.Action.ActionType; a != "Permit" && a != "Deny" {
			return arm.FieldError(field+".action.actionType", "actionType must be Permit or Deny, not '%s' (Continue has no SONiC route map equivalent).", a)
		}
		if s.Condition.IPPrefixID != "" {
			if _, err := p.reference(ctx, field+".condition.ipPrefixId", s.Condition.IPPrefixID, ipPrefixType); err != nil {
				return err
			}
		}
	}
	_, err := p.fabricOfWrite(ctx, w, rp.NetworkFabricID)
	return err
}

// aclProps is the part of an access control list the fabric renders:
// inline match configurations of IP prefixes, protocols and ports.
type aclProps struct {
	ConfigurationType   string `json:"configurationType"`
	DefaultAction       string `json:"defaultAction"`
	MatchConfigurations []struct {
		SequenceNumber  int64 `json:"sequenceNumber"`
		MatchConditions []struct {
			ProtocolTypes []string `json:"protocolTypes"`
			IPCondition   *struct {
				Type           string   `json:"type"`
				IPPrefixValues []string `json:"ipPrefixValues"`
			} `json:"ipCondition"`
			PortCondition *struct {
				Ports []string `json:"ports"`
			} `json:"portCondition"`
		} `json:"matchConditions"`
		Actions []struct {
			Type string `json:"type"`
		} `json:"actions"`
	} `json:"matchConfigurations"`
}

func (p *Provider) validateACL(_ context.Context, w *resource.Write) error {
	var a aclProps
	if err := decode(w.New.Properties, &a); err != nil {
		return arm.FieldError("properties", "The access control list's properties are invalid: %v.", err)
	}
	if a.ConfigurationType != "Inline" {
		return arm.FieldError("properties.configurationType", "configurationType must be Inline, not '%s': a disconnected fabric cannot fetch ACL files.", a.ConfigurationType)
	}
	if len(a.MatchConfigurations) == 0 {
		return arm.FieldError("properties.matchConfigurations", "matchConfigurations is required with configurationType Inline.")
	}
	rules, err := aclRules(a)
	if err != nil {
		return err
	}
	// What the devices could not run is refused now, not at the commit.
	err = network.Intent{ACLs: []network.ACL{{Name: w.ID.Name(), Rules: rules}}}.Validate()
	if re, ok := errors.AsType[*network.RuleError](err); ok {
		return arm.FieldError("properties.matchConfigurations", "The access control list cannot be configured: %s: %s.", re.Field, re.Reason)
	} else if err != nil {
		return err
	}
	w.New.Properties["configurationState"] = stateSucceeded
	if w.Old == nil {
		w.New.Properties["administrativeState"] = adminEnabled
	}
	return nil
}

// aclRules turns an ACL's match configurations into rules.
func aclRules(a aclProps) ([]network.ACLRule, error) {
	var rules []network.ACLRule
	for i, mc := range a.MatchConfigurations {
		action := "Permit"
		for _, act := range mc.Actions {
			if act.Type == "Drop" {
				action = "Deny"
			}
		}
		for j, c := range mc.MatchConditions {
			field := "properties.matchConfigurations[" + itoa(i) + "].matchConditions[" + itoa(j) + "]"
			r := network.ACLRule{Sequence: int(mc.SequenceNumber)*100 + j, Action: action, Protocol: "Any"}
			if len(c.ProtocolTypes) > 0 {
				r.Protocol = c.ProtocolTypes[0]
			}
			if ip := c.IPCondition; ip != nil && len(ip.IPPrefixValues) > 0 {
				pr, err := netip.ParsePrefix(ip.IPPrefixValues[0])
				if err != nil {
					return nil, arm.FieldError(field+".ipCondition.ipPrefixValues[0]", "'%s' is not a CIDR prefix.", ip.IPPrefixValues[0])
				}
				if ip.Type == "DestinationIP" {
					r.Destination = pr
				} else {
					r.Source = pr
				}
			}
			if pc := c.PortCondition; pc != nil && len(pc.Ports) > 0 {
				r.DestinationPorts = pc.Ports[0]
			}
			rules = append(rules, r)
		}
	}
	return rules, nil
}

func validateIPPrefix(_ context.Context, w *resource.Write) error {
	var p struct {
		Annotation    string               `json:"annotation"`
		IPPrefixRules []network.PrefixRule `json:"ipPrefixRules"`
	}
	if err := resource.DecodeProperties(w.New, &p); err != nil {
		return err
	}
	if _, ok := w.New.Properties["ipPrefixRules"]; !ok {
		return arm.FieldError("properties.ipPrefixRules", "ipPrefixRules is required.")
	}
	rules, err := network.ValidatePrefixRules(p.IPPrefixRules)
	if re, ok := errors.AsType[*network.RuleError](err); ok {
		return arm.FieldError("properties."+re.Field, "The value of %s is invalid: %s.", re.Field, re.Reason)
	} else if err != nil {
		return err
	}
	w.New.Properties["ipPrefixRules"] = rules
	return nil
}

// acceptPrefixList accepts the prefix list into the fabric's
// configuration. A prefix list is configured on devices when a route
// policy that uses it is committed; until then it is Succeeded and
// Enabled.
func acceptPrefixList(_ context.Context, t *resource.Task) error {
	t.Resource.Properties["configurationState"] = stateSucceeded
	t.Resource.Properties["administrativeState"] = adminEnabled
	return nil
}

// validateIntentDelete refuses to delete an isolation domain or network
// that is enabled (disable it first, so that its removal is a commit
// like any change) or whose fabric is locked.
func (p *Provider) validateIntentDelete(ctx context.Context, r *resource.Resource) error {
	if str(r.Properties, "administrativeState") == adminEnabled && !strings.HasSuffix(strings.ToLower(r.Type), "/ipprefixes") &&
		!strings.HasSuffix(strings.ToLower(r.Type), "/accesscontrollists") {
		return arm.Errorf(http.StatusConflict, "ResourceEnabled", "%s '%s' is enabled; disable it with updateAdministrativeState before deleting it.", r.Type, r.Name)
	}
	if users, err := p.referencedBy(ctx, r.ID); err != nil {
		return err
	} else if len(users) > 0 {
		return arm.Errorf(http.StatusConflict, "ResourceInUse", "%s '%s' is used by %s; change those first.", r.Type, r.Name, strings.Join(users, ", "))
	}
	if fabricID := str(r.Properties, "networkFabricId"); fabricID != "" {
		if f, err := p.reference(ctx, "networkFabricId", fabricID, fabricType); err == nil {
			if fp, _ := fabricOf(f); fp.locked(lockConfiguration) {
				return fabricLocked(f.Name, lockConfiguration)
			}
		}
	}
	return nil
}

// referencedBy lists the fabric resources whose properties name id (a
// network naming a route policy or an ACL, a route policy naming a prefix
// list): what a render of their fabric needs.
func (p *Provider) referencedBy(ctx context.Context, id string) ([]string, error) {
	needle := []byte(strings.ToLower(`"` + id + `"`))
	var users []string
	for _, typ := range []string{internalType, externalType, routePolicy} {
		all, err := p.svc.ResourcesOfType(ctx, typ)
		if err != nil {
			return nil, err
		}
		for _, r := range all {
			if b, _ := json.Marshal(r.Properties); bytes.Contains(bytes.ToLower(b), needle) {
				users = append(users, r.Name)
			}
		}
	}
	return users, nil
}

// updateAdministrativeState: {state: Enable|Disable|UnderMaintenance}.
type adminStateRequest struct {
	State       string   `json:"state"`
	ResourceIDs []string `json:"resourceIds"`
}

func (p *Provider) validateAdminState(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	var in adminStateRequest
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	allowed := []string{"Enable", "Disable"}
	if strings.EqualFold(r.Type, deviceType) {
		allowed = append(allowed, adminMaintenance)
	}
	if !slices.Contains(allowed, in.State) {
		return arm.FieldError("state", "state must be %s, not '%s'.", strings.Join(allowed, " or "), in.State)
	}
	if fabricID := str(r.Properties, "networkFabricId"); fabricID != "" {
		f, err := p.reference(ctx, "networkFabricId", fabricID, fabricType)
		if err != nil {
			return err
		}
		if fp, _ := fabricOf(f); fp.locked(lockAdministrative) {
			return fabricLocked(f.Name, lockAdministrative)
		}
	}
	return nil
}

func (p *Provider) updateAdministrativeState(ctx context.Context, t *resource.Task) (any, error) {
	var in adminStateRequest
	if err := t.Input(&in); err != nil {
		return nil, err
	}
	state := map[string]string{"Enable": adminEnabled, "Disable": adminDisabled, adminMaintenance: adminMaintenance}[in.State]
	t.Resource.Properties["administrativeState"] = state
	if !strings.EqualFold(t.Resource.Type, deviceType) && t.Resource.Properties["configurationState"] != nil {
		f, err := p.reference(ctx, "networkFabricId", str(t.Resource.Properties, "networkFabricId"), fabricType)
		if err == nil && str(f.Properties, "configurationState") == stateProvisioned {
			t.Resource.Properties["configurationState"] = statePendingCommit
		}
	}
	t.Resource.Properties["lastOperation"] = map[string]any{"details": "administrative state " + state + " at " + now()}
	return map[string]any{"configurationState": t.Resource.Properties["configurationState"]}, nil
}

// collectIntent reads what the fabric's resources add up to, and the
// resources that a commit settles (those waiting for one).
func (p *Provider) collectIntent(ctx context.Context, fabricID string) (network.Intent, []string, error) {
	var in network.Intent
	var pending []string
	ofFabric := func(fullName string) ([]*resource.Resource, error) {
		all, err := p.svc.ResourcesOfType(ctx, fullName)
		var out []*resource.Resource
		for _, r := range all {
			if strings.EqualFold(str(r.Properties, "networkFabricId"), fabricID) {
				out = append(out, r)
				if str(r.Properties, "configurationState") == statePendingCommit {
					pending = append(pending, r.ID)
				}
			}
		}
		return out, err
	}
	enabled := func(r *resource.Resource) bool { return str(r.Properties, "administrativeState") == adminEnabled }
	l2s, err := ofFabric(l2DomainType)
	if err != nil {
		return in, nil, err
	}
	for _, r := range l2s {
		var d l2Props
		decode(r.Properties, &d)
		in.L2Domains = append(in.L2Domains, network.L2Domain{Name: r.Name, VLAN: d.VlanID, MTU: cmp.Or(d.MTU, 1500), Enabled: enabled(r)})
	}
	policies := map[string]bool{}
	acls := map[string]bool{}
	l3s, err := ofFabric(l3DomainType)
	if err != nil {
		return in, nil, err
	}
	networks, err := ofFabric(internalType)
	if err != nil {
		return in, nil, err
	}
	externals, err := ofFabric(externalType)
	if err != nil {
		return in, nil, err
	}
	below := func(child *resource.Resource, kind string, parent *resource.Resource) bool {
		i := strings.LastIndex(strings.ToLower(child.ID), "/"+kind+"/")
		return i > 0 && strings.EqualFold(child.ID[:i], parent.ID)
	}
	for _, r := range l3s {
		var d l3Props
		decode(r.Properties, &d)
		dom := network.L3Domain{Name: r.Name, Enabled: enabled(r),
			RedistributeConnected: d.RedistributeConnectedSubnets == "True", RedistributeStatic: d.RedistributeStaticRoutes == "True"}
		for _, nr := range networks {
			if !below(nr, "internalnetworks", r) {
				continue
			}
			var n internalProps
			decode(nr.Properties, &n)
			in := network.InternalNetwork{Name: nr.Name, VLAN: n.VlanID, MTU: cmp.Or(n.MTU, 1500), Enabled: enabled(nr),
				ImportPolicy: refName(n.ImportRoutePolicy.ImportIPv4RoutePolicyID), ExportPolicy: refName(n.ExportRoutePolicy.ExportIPv4RoutePolicyID),
				IngressACL: refName(n.IngressACLID), EgressACL: refName(n.EgressACLID)}
			for _, s := range n.ConnectedIPv4Subnets {
				if pr, err := netip.ParsePrefix(s.Prefix); err == nil {
					in.Subnets = append(in.Subnets, pr)
				}
			}
			if b := n.BgpConfiguration; b != nil {
				in.PeerASN = uint32(b.PeerASN)
				for _, a := range b.IPv4NeighborAddress {
					if addr, err := netip.ParseAddr(a.Address); err == nil {
						in.Peers = append(in.Peers, addr)
					}
				}
			}
			for _, id := range []string{n.ImportRoutePolicy.ImportIPv4RoutePolicyID, n.ExportRoutePolicy.ExportIPv4RoutePolicyID} {
				if id != "" {
					policies[strings.ToLower(id)] = true
				}
			}
			for _, id := range []string{n.IngressACLID, n.EgressACLID} {
				if id != "" {
					acls[strings.ToLower(id)] = true
				}
			}
			dom.Networks = append(dom.Networks, in)
		}
		for _, xr := range externals {
			var x externalProps
			if !below(xr, "externalnetworks", r) || decode(xr.Properties, &x) != nil || x.OptionAProperties == nil {
				continue
			}
			a := x.OptionAProperties
			prefix, _ := netip.ParsePrefix(a.PrimaryIPv4Prefix)
			dom.ExternalNetworks = append(dom.ExternalNetworks, network.ExternalNetwork{Name: xr.Name, VLAN: a.VlanID,
				PeerASN: uint32(a.PeerASN), Prefix: prefix, Enabled: enabled(xr),
				ImportPolicy: refName(x.ImportRoutePolicy.ImportIPv4RoutePolicyID), ExportPolicy: refName(x.ExportRoutePolicy.ExportIPv4RoutePolicyID)})
			for _, id := range []string{x.ImportRoutePolicy.ImportIPv4RoutePolicyID, x.ExportRoutePolicy.ExportIPv4RoutePolicyID} {
				if id != "" {
					policies[strings.ToLower(id)] = true
				}
			}
		}
		in.L3Domains = append(in.L3Domains, dom)
	}
	prefixLists := map[string]bool{}
	for id := range policies {
		r, err := p.lookup(ctx, id)
		if err != nil {
			return in, nil, err
		}
		if str(r.Properties, "configurationState") == statePendingCommit {
			pending = append(pending, r.ID)
		}
		var rp routePolicyProps
		decode(r.Properties, &rp)
		pol := network.RoutePolicy{Name: r.Name}
		for _, s := range rp.Statements {
			pol.Statements = append(pol.Statements, network.RouteStatement{Sequence: int(s.SequenceNumber),
				PrefixList: refName(s.Condition.IPPrefixID), Action: s.Action.ActionType})
			if s.Condition.IPPrefixID != "" {
				prefixLists[strings.ToLower(s.Condition.IPPrefixID)] = true
			}
		}
		in.RoutePolicies = append(in.RoutePolicies, pol)
	}
	for id := range prefixLists {
		r, err := p.lookup(ctx, id)
		if err != nil {
			return in, nil, err
		}
		var rules []network.PrefixRule
		decode(r.Properties["ipPrefixRules"], &rules)
		in.PrefixLists = append(in.PrefixLists, network.PrefixList{Name: r.Name, Rules: rules})
	}
	for id := range acls {
		r, err := p.lookup(ctx, id)
		if err != nil {
			return in, nil, err
		}
		var a aclProps
		decode(r.Properties, &a)
		rules, _ := aclRules(a)
		in.ACLs = append(in.ACLs, network.ACL{Name: r.Name, Rules: rules})
	}
	sortIntent(&in)
	return in, pending, nil
}

func (p *Provider) lookup(ctx context.Context, id string) (*resource.Resource, error) {
	parsed, err := arm.ParseID(id)
	if err != nil {
		return nil, err
	}
	r, err := p.svc.Lookup(ctx, parsed)
	if err != nil {
		return nil, arm.Errorf(http.StatusConflict, "ReferenceNotFound", "'%s' is referenced by the fabric's configuration but does not exist.", id)
	}
	return r, nil
}

// refName is the name of a referenced resource, or "".
func refName(id string) string {
	if id == "" {
		return ""
	}
	return nameOf(id)
}
