package host

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/citadel-cloud/citadel/internal/agent/hostnet"
	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// Healer is a host that puts back what was changed by hand on its own
// (the networks the Linux host configured): the agent calls Heal at
// every heartbeat and logs what it repaired.
type Healer interface {
	Heal(ctx context.Context) (repaired []string, err error)
}

var _ Healer = (*Linux)(nil)

// networks is the Linux host's part that configures the workload
// networks on the machine's uplink, and keeps them as configured.
type networks struct {
	uplink string
	handle *netlink.Handle
	mu     sync.Mutex
	last   *hostnet.Config // what Apply configured last
}

// WithNetworks makes Apply configure the desired workload networks on
// uplink (the NIC cabled to the top-of-rack switches): a VLAN
// sub-interface and a bridge each, with netlink in the network namespace
// of h (nil: the host's own).
func (l *Linux) WithNetworks(uplink string, h *netlink.Handle) (*Linux, error) {
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return nil, fmt.Errorf("host: netlink: %w", err)
		}
	}
	l.nets = &networks{uplink: uplink, handle: h}
	return l, nil
}

// apply configures the networks d asks for; a machine whose host does
// not manage networks ignores them.
func (n *networks) apply(ctx context.Context, want []agentapi.Network) error {
	if n == nil {
		return nil
	}
	cfg := hostnet.Config{Uplink: n.uplink}
	for _, w := range want {
		net := hostnet.Network{Name: w.Name, VLAN: w.VLAN, MTU: w.MTU}
		for _, a := range w.Addresses {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return fmt.Errorf("host: network %s: address %q: %w", w.Name, a, err)
			}
			net.Addresses = append(net.Addresses, p)
		}
		cfg.Networks = append(cfg.Networks, net)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("host: networks: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := hostnet.Apply(ctx, n.handle, cfg); err != nil {
		return fmt.Errorf("host: networks: %w", err)
	}
	n.last = &cfg
	return nil
}

// Heal applies the networks last configured again, which puts back what
// was changed by hand, and says what that took.
func (l *Linux) Heal(ctx context.Context) ([]string, error) {
	n := l.nets
	if n == nil {
		return nil, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last == nil {
		return nil, nil
	}
	return hostnet.Apply(ctx, n.handle, *n.last)
}
