package network

import (
	"encoding/json"
	"net/netip"
	"strings"
)

// GuestNIC is one network interface of a virtual machine, as its guest
// is to configure it.
type GuestNIC struct {
	Name string // the interface's name in the guest
	MAC  string
	// IPv4 is its address with the network's prefix length; the zero
	// Prefix for a NIC with no address (an L2 or trunked network).
	IPv4 netip.Prefix
	// Gateway is the default route's next hop through this NIC; the
	// zero Addr when the default route is elsewhere.
	Gateway netip.Addr
}

// GuestNetworkConfig is cloud-init's network-config (version 2) for nics:
// each interface matched by its MAC address and named, with its address
// and, on the one with a gateway, the default route; an interface with no
// address is brought up without one (no DHCP). JSON is YAML, which
// cloud-init reads; the output is deterministic.
func GuestNetworkConfig(nics []GuestNIC) []byte {
	type route struct {
		To  string `json:"to"`
		Via string `json:"via"`
	}
	type ethernet struct {
		Match     map[string]string `json:"match"`
		SetName   string            `json:"set-name"`
		DHCP4     bool              `json:"dhcp4"`
		DHCP6     bool              `json:"dhcp6"`
		Addresses []string          `json:"addresses,omitempty"`
		Routes    []route           `json:"routes,omitempty"`
	}
	ethernets := map[string]ethernet{}
	for _, n := range nics {
		e := ethernet{Match: map[string]string{"macaddress": strings.ToLower(n.MAC)}, SetName: n.Name}
		if n.IPv4.IsValid() {
			e.Addresses = []string{n.IPv4.String()}
		}
		if n.Gateway.IsValid() {
			e.Routes = []route{{To: "0.0.0.0/0", Via: n.Gateway.String()}}
		}
		ethernets[n.Name] = e
	}
	out, _ := json.MarshalIndent(map[string]any{"network": map[string]any{"version": 2, "ethernets": ethernets}}, "", "  ")
	return append(out, '\n')
}
