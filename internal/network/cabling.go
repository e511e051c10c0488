package network

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Observation is what LLDP hears at one end: on port At (a device port,
// or a server's NIC), the other end's system name and port. An empty
// SystemName means the port is up but hears nothing.
type Observation struct {
	At         Endpoint
	SystemName string
	PortID     string
}

// CablingFault is one thing a technician must fix at the racks.
type CablingFault struct {
	Kind    string     // CablingSwapped, CablingMiscabled or CablingMissing
	Ports   []Endpoint // the ports to look at, the most telling first
	Message string
}

// The kinds of cabling fault.
const (
	// CablingSwapped: two cables are on each other's ports; Ports names
	// the two ports to swap them back at, and the message names a switch
	// by its hostname, as its prompt shows it.
	CablingSwapped = "swapped"
	// CablingMiscabled: a cable reaches a port other than the planned one.
	CablingMiscabled = "miscabled"
	// CablingMissing: a planned cable's end is up but hears nothing, and
	// nothing else is heard of the cable.
	CablingMissing = "missing"
)

// ValidateCabling compares the expected cables (topo.Links) with what
// LLDP reports, for validateConfiguration's cabling check.
//
// Each observation that names a device (by its Hostname, ignoring case)
// is a cable between At and that device's port PortID. Servers are found
// the other way round: a server's NIC reports the switch it hears, while
// a switch port facing a server hears a name the fabric does not know and
// is not judged. A planned cable is judged only from what its ends, or
// the ports that hear them, report: an end that reports nothing is
// assumed fine, so a partial report yields no false faults. An end that
// reports an empty SystemName is up but hears nothing, and its cable is
// missing unless some other report shows where it goes. Cables between
// ports that no planned link names are not judged.
//
// Faults come in the order of the first planned link they concern, and do
// not depend on the order of observed.
func ValidateCabling(topo Topology, observed []Observation) []CablingFault {
	c := newCablingCheck(topo, len(observed))
	obs := slices.Clone(observed)
	// Observations equal under this order are identical, so an unstable
	// sort is as deterministic as a stable one.
	slices.SortFunc(obs, func(a, b Observation) int {
		return cmp.Or(compareEndpoints(a.At, b.At), cmp.Compare(a.SystemName, b.SystemName), cmp.Compare(a.PortID, b.PortID))
	})
	for _, o := range obs {
		c.observe(o)
	}
	var faults []CablingFault
	for _, w := range c.wrong {
		if c.done[w] {
			continue
		}
		if f, ok := c.swap(w); ok {
			faults = append(faults, f)
			continue
		}
		faults = append(faults, c.miscabled(w))
		c.done[w] = true
	}
	for _, l := range topo.Links {
		if f, ok := c.missing(l); ok {
			faults = append(faults, f)
		}
	}
	slices.SortStableFunc(faults, func(a, b CablingFault) int {
		return cmp.Or(cmp.Compare(c.firstLink(a.Ports), c.firstLink(b.Ports)), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Message, b.Message))
	})
	return faults
}

// String names the end as a technician reads it on a label:
// "nf1-CompRack1-TOR1:Ethernet8", or "CompRack1 slot 2 eth0" for a server.
func (e Endpoint) String() string {
	if e.Device != "" {
		return e.Device + ":" + e.Port
	}
	return fmt.Sprintf("%s slot %d %s", e.Rack, e.Slot, e.Port)
}

// cable is one observed cable from a to b. If system is set, b's system
// is no device of the fabric: b is then the zero Endpoint and port is the
// PortID it reported.
type cable struct {
	a, b         Endpoint
	system, port string
}

func (w cable) far() string {
	if w.system == "" {
		return w.b.String()
	}
	if w.port == "" {
		return fmt.Sprintf("unknown system %q", w.system)
	}
	return fmt.Sprintf("unknown system %q port %s", w.system, w.port)
}

type cablingCheck struct {
	device   map[string]string     // lower-case hostname → device name
	hostname map[string]string     // device name → hostname, as the technician's prompt shows it
	peer     map[Endpoint]Endpoint // each planned end's far end
	link     map[Endpoint]int      // each planned end's index in Links
	links    int

	seen    map[cable]bool
	wrong   []cable            // observed cables that are not planned, in observation order
	heard   map[Endpoint]bool  // ends known to be cabled to something
	silent  map[Endpoint]bool  // ends up but hearing nothing
	cableAt map[Endpoint]cable // the wrong cable at each of its known ends
	done    map[cable]bool     // wrong cables already reported
}

func newCablingCheck(topo Topology, observations int) *cablingCheck {
	c := &cablingCheck{
		device:   make(map[string]string, len(topo.Devices)),
		hostname: make(map[string]string, len(topo.Devices)),
		peer:     make(map[Endpoint]Endpoint, 2*len(topo.Links)),
		link:     make(map[Endpoint]int, 2*len(topo.Links)),
		links:    len(topo.Links),
		seen:     map[cable]bool{},
		heard:    make(map[Endpoint]bool, 2*observations),
		silent:   map[Endpoint]bool{},
		cableAt:  map[Endpoint]cable{},
		done:     map[cable]bool{},
	}
	for _, d := range topo.Devices {
		c.device[strings.ToLower(d.Hostname)] = d.Name
		c.hostname[d.Name] = cmp.Or(d.Hostname, d.Name)
	}
	for i, l := range topo.Links {
		c.peer[l.A], c.peer[l.B] = l.B, l.A
		c.link[l.A], c.link[l.B] = i, i
	}
	return c
}

func (c *cablingCheck) observe(o Observation) {
	if o.SystemName == "" {
		c.silent[o.At] = true
		return
	}
	c.heard[o.At] = true
	peer, planned := c.peer[o.At]
	name, known := c.device[strings.ToLower(o.SystemName)]
	if !known {
		// A switch port facing a server hears the server's own name,
		// which the topology does not know: the server's report judges
		// that cable.
		if !planned || (o.At.Device != "" && peer.Device == "") {
			return
		}
		c.add(cable{a: o.At, system: o.SystemName, port: o.PortID})
		return
	}
	far := Endpoint{Device: name, Port: o.PortID}
	c.heard[far] = true
	if _, farPlanned := c.peer[far]; !planned && !farPlanned {
		return
	}
	if peer == far && planned {
		return
	}
	// One cable heard from both ends is one cable.
	if compareEndpoints(far, o.At) < 0 {
		c.add(cable{a: far, b: o.At})
	} else {
		c.add(cable{a: o.At, b: far})
	}
}

func (c *cablingCheck) add(w cable) {
	if c.seen[w] {
		return
	}
	c.seen[w] = true
	c.wrong = append(c.wrong, w)
	c.cableAt[w.a] = w
	if w.system == "" {
		c.cableAt[w.b] = w
	}
}

// swap finds the cable crossed with w: w joins u to v where u belongs with
// pu and v with pv, and another cable joins pu to pv.
func (c *cablingCheck) swap(w cable) (CablingFault, bool) {
	if w.system != "" {
		return CablingFault{}, false
	}
	u, v := w.a, w.b
	pu, okU := c.peer[u]
	pv, okV := c.peer[v]
	if !okU || !okV || u == v || pu == pv {
		return CablingFault{}, false
	}
	x, ok := c.cableAt[pu]
	if !ok || c.done[x] || x == w || x.system != "" || (x.a != pv && x.b != pv) {
		return CablingFault{}, false
	}
	c.done[w], c.done[x] = true, true
	reaches := map[Endpoint]Endpoint{u: v, v: u, pu: pv, pv: pu}
	// The cables cross between two sides, {u, pv} and {v, pu}; name the
	// side that reads as one switch's two ports.
	side := [2]Endpoint{u, pv}
	if other := [2]Endpoint{v, pu}; sideScore(other) > sideScore(side) ||
		(sideScore(other) == sideScore(side) && compareEndpoints(min2(other), min2(side)) < 0) {
		side = other
	}
	p, q := side[0], side[1]
	if c.link[q] < c.link[p] {
		p, q = q, p
	}
	msg := fmt.Sprintf("cables swapped: %s reaches %s, %s reaches %s", p, reaches[p], q, reaches[q])
	if p.Device != "" && p.Device == q.Device {
		msg = fmt.Sprintf("cables swapped at %s: %s reaches %s, %s reaches %s", cmp.Or(c.hostname[p.Device], p.Device), p.Port, reaches[p], q.Port, reaches[q])
	}
	return CablingFault{Kind: CablingSwapped, Ports: []Endpoint{p, q}, Message: msg}, true
}

// sideScore prefers naming two ports of one device, then two device
// ports, over server NICs.
func sideScore(s [2]Endpoint) int {
	switch {
	case s[0].Device == "" || s[1].Device == "":
		return 0
	case s[0].Device == s[1].Device:
		return 2
	}
	return 1
}

func min2(s [2]Endpoint) Endpoint {
	if compareEndpoints(s[1], s[0]) < 0 {
		return s[1]
	}
	return s[0]
}

func (c *cablingCheck) miscabled(w cable) CablingFault {
	// Tell it from the planned end, the earlier-planned one if both are.
	_, aPlanned := c.peer[w.a]
	_, bPlanned := c.peer[w.b]
	if w.system == "" && bPlanned && (!aPlanned || c.link[w.b] < c.link[w.a]) {
		w.a, w.b = w.b, w.a
	}
	a, b := w.a, w.b
	msg := fmt.Sprintf("%s reaches %s, expected %s", a, w.far(), c.peer[a])
	ports := []Endpoint{a}
	if w.system == "" {
		ports = append(ports, b)
	}
	ports = append(ports, c.peer[a])
	if pb, ok := c.peer[b]; ok && w.system == "" && pb != a {
		msg += fmt.Sprintf("; %s should reach %s", b, pb)
		ports = append(ports, pb)
	}
	return CablingFault{Kind: CablingMiscabled, Ports: ports, Message: msg}
}

func (c *cablingCheck) missing(l Link) (CablingFault, bool) {
	if c.heard[l.A] || c.heard[l.B] {
		return CablingFault{}, false
	}
	var msg string
	switch {
	case c.silent[l.A] && c.silent[l.B]:
		msg = fmt.Sprintf("no cable between %s and %s: both are up but hear nothing", l.A, l.B)
	case c.silent[l.A]:
		msg = fmt.Sprintf("no cable between %s and %s: %s is up but hears nothing", l.A, l.B, l.A)
	case c.silent[l.B]:
		msg = fmt.Sprintf("no cable between %s and %s: %s is up but hears nothing", l.A, l.B, l.B)
	default:
		return CablingFault{}, false
	}
	return CablingFault{Kind: CablingMissing, Ports: []Endpoint{l.A, l.B}, Message: msg}, true
}

// firstLink is the index of the first planned link that ports concern.
func (c *cablingCheck) firstLink(ports []Endpoint) int {
	first := c.links
	for _, e := range ports {
		if i, ok := c.link[e]; ok {
			first = min(first, i)
		}
	}
	return first
}

func compareEndpoints(a, b Endpoint) int {
	return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Rack, b.Rack), cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.Port, b.Port))
}
