package scheduler

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Machine is a bare-metal machine as the scheduler sees it.
type Machine struct {
	ID   string // ARM ID of the bareMetalMachine
	Rack string // ARM ID of its rack

	Ready, Cordoned bool

	// Cores and MemoryMiB are what VMs may use: the caller has already
	// taken off what the host keeps for itself.
	Cores, MemoryMiB int
	// UsedCores and UsedMemoryMiB are taken by the VMs already on it.
	UsedCores, UsedMemoryMiB int
	GPUs                     int // free GPUs

	Features   []string // CPU features (amx_tile, avx512f, ...) and "gpu" when it has GPUs
	Networks   []string // IDs of the networks present in its rack
	Appliances []string // IDs of the storage appliances it reaches
	VMs        []string // IDs of the VMs on it, for VM-to-VM hints and rack spreading
}

// Request is a virtual machine to place.
type Request struct {
	VM                     string // its ID: once committed, later hints may name it
	Cores, MemoryMiB, GPUs int
	Features               []string // CPU features the VM needs, "gpu" included
	Networks               []string // IDs of the networks it attaches to
	Appliance              string   // ID of the storage appliance of its volumes, or ""
	Hints                  []Hint
}

// Hint is one VirtualMachinePlacementHint. Its values compare
// case-insensitively.
type Hint struct {
	Type      HintType  // hintType
	Execution Execution // schedulingExecution
	Scope     Scope     // scope
	// Target is the hint's resourceId: a machine, a rack, or a VM placed
	// in the snapshot. A machine or a VM with RackScope stands for its rack;
	// a rack is a rack whatever the scope. A target the snapshot does not
	// know is on no machine: Hard affinity to it fits nowhere and
	// anti-affinity to it excludes nothing.
	Target string
}

// HintType says whether a hint attracts to its target or repels from it.
type HintType string

// The hint types.
const (
	Affinity     HintType = "Affinity"
	AntiAffinity HintType = "AntiAffinity"
)

// Execution says whether a hint filters machines (Hard) or only ranks them
// (Soft).
type Execution string

// The executions.
const (
	Hard Execution = "Hard"
	Soft Execution = "Soft"
)

// Scope says whether a hint is about the target's machine or its rack.
type Scope string

// The scopes.
const (
	MachineScope Scope = "Machine"
	RackScope    Scope = "Rack"
)

// Snapshot is a fleet indexed for placement. It is built once from the
// machines and kept up to date by Commit, so that placing a VM costs a
// handful of racks rather than the whole fleet. It is not safe for
// concurrent use, not even of Place alone.
type Snapshot struct {
	machines []machine // in order of folded ID: a lower index is a lower ID
	racks    []rack
	machine  map[string]int32 // folded machine ID → index in machines
	rack     map[string]int32 // folded rack ID → index in racks
	vm       map[string]int32 // folded VM ID → index of its machine

	features, networks, appliances set

	// byVMs[n] holds the racks with n VMs, best first: by the load and ID
	// of their least loaded machine, so that a search can stop at the first
	// rack that cannot do better. minVMs is the lowest n with a rack.
	byVMs  [][]int32
	minVMs int

	// Scratch space of Place and Commit. A mark equal to epoch is set for
	// this Place.
	epoch                               uint32
	rackDenied, rackTouched, machDenied []uint32
	touched                             []int32
	q                                   query
	key                                 []byte
}

type machine struct {
	id              string // as the caller spelled it
	rack            int32
	ready, cordoned bool
	cores, mem      int
	usedCores       int
	usedMem         int
	gpus            int     // free
	load            float64 // the larger of the used fractions of cores and memory
}

type rack struct {
	machines []int32 // least loaded first, then by ID
	vms      int
}

func fold(s string) string { return strings.ToLower(s) }

// folded is fold(id) in scratch space: m[string(s.folded(id))] looks id up
// without allocating.
func (s *Snapshot) folded(id string) []byte {
	b := append(s.key[:0], id...)
	for k, c := range b {
		if c >= utf8.RuneSelf {
			b = append(b[:0], fold(id)...)
			break
		}
		if 'A' <= c && c <= 'Z' {
			b[k] = c + 'a' - 'A'
		}
	}
	s.key = b
	return b
}

// NewSnapshot indexes machines; it keeps none of their slices. It refuses a
// fleet where two machines, or two VMs, have the same ID.
func NewSnapshot(machines []Machine) (*Snapshot, error) {
	ids := make([]string, len(machines))
	order := make([]int, len(machines))
	vms := 0
	for j := range machines {
		ids[j], order[j] = fold(machines[j].ID), j
		vms += len(machines[j].VMs)
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(ids[a], ids[b]) })

	s := &Snapshot{
		machines: make([]machine, len(machines)),
		machine:  make(map[string]int32, len(machines)),
		rack:     map[string]int32{},
		vm:       make(map[string]int32, vms),
	}
	for k, j := range order {
		in, i := &machines[j], int32(k)
		switch {
		case in.ID == "":
			return nil, fmt.Errorf("machine %d has no ID", j)
		case k > 0 && ids[j] == ids[order[k-1]]:
			return nil, fmt.Errorf("machine %q appears twice", in.ID)
		case in.Cores < 0 || in.MemoryMiB < 0 || in.UsedCores < 0 || in.UsedMemoryMiB < 0 || in.GPUs < 0:
			return nil, fmt.Errorf("machine %q: negative cores, memory or GPUs", in.ID)
		}
		s.machine[ids[j]] = i
		r, ok := s.rack[string(s.folded(in.Rack))]
		if !ok {
			r = int32(len(s.racks))
			s.rack[string(s.key)] = r
			s.racks = append(s.racks, rack{})
		}
		s.machines[i] = machine{id: in.ID, rack: r, ready: in.Ready, cordoned: in.Cordoned,
			cores: in.Cores, mem: in.MemoryMiB, usedCores: in.UsedCores, usedMem: in.UsedMemoryMiB, gpus: in.GPUs}
		s.machines[i].load = s.machines[i].loadNow()
		s.racks[r].machines = append(s.racks[r].machines, i)
		s.racks[r].vms += len(in.VMs)
		for _, vm := range in.VMs {
			if on, dup := s.vm[string(s.folded(vm))]; dup {
				return nil, fmt.Errorf("vm %q is on machines %q and %q", vm, s.machines[on].id, in.ID)
			}
			s.vm[string(s.key)] = i
		}
	}
	s.features = s.newSet(machines, order, func(m *Machine) []string { return m.Features })
	s.networks = s.newSet(machines, order, func(m *Machine) []string { return m.Networks })
	s.appliances = s.newSet(machines, order, func(m *Machine) []string { return m.Appliances })

	for r := range s.racks {
		slices.SortFunc(s.racks[r].machines, s.byLoad)
		n := s.racks[r].vms
		for len(s.byVMs) <= n {
			s.byVMs = append(s.byVMs, nil)
		}
		s.byVMs[n] = append(s.byVMs[n], int32(r))
	}
	for _, b := range s.byVMs {
		slices.SortFunc(b, s.byHead)
	}
	s.minVMs = slices.IndexFunc(s.byVMs, func(b []int32) bool { return len(b) > 0 })
	if s.minVMs < 0 {
		s.minVMs = len(s.byVMs)
	}
	s.rackDenied = make([]uint32, len(s.racks))
	s.rackTouched = make([]uint32, len(s.racks))
	s.machDenied = make([]uint32, len(s.machines))
	return s, nil
}

func (m *machine) loadNow() float64 {
	cores, mem := 1.0, 1.0 // a machine with nothing to give is full
	if m.cores > 0 {
		cores = float64(m.usedCores) / float64(m.cores)
	}
	if m.mem > 0 {
		mem = float64(m.usedMem) / float64(m.mem)
	}
	return max(cores, mem)
}

// byLoad orders machines least loaded first, then by ID.
func (s *Snapshot) byLoad(a, b int32) int {
	return cmp.Or(cmp.Compare(s.machines[a].load, s.machines[b].load), cmp.Compare(a, b))
}

// byHead orders racks by their least loaded machine.
func (s *Snapshot) byHead(a, b int32) int {
	return s.byLoad(s.racks[a].machines[0], s.racks[b].machines[0])
}

// Commit accounts req on machineID: its cores, memory and GPUs, its ID for
// later hints, and one more VM in the rack. It refuses a VM it already
// has, and checks capacity so that the snapshot never overbooks, but not
// the other filters: the caller may record a placement it decided itself.
func (s *Snapshot) Commit(machineID string, req Request) error {
	i, ok := s.machine[string(s.folded(machineID))]
	if !ok {
		return fmt.Errorf("machine %q is not in the snapshot", machineID)
	}
	m := &s.machines[i]
	vm := s.folded(req.VM)
	if on, dup := s.vm[string(vm)]; dup && req.VM != "" {
		return fmt.Errorf("vm %q is already on machine %q", req.VM, s.machines[on].id)
	}
	if req.Cores < 0 || req.MemoryMiB < 0 || req.GPUs < 0 {
		return errors.New("negative cores, memory or GPUs")
	}
	if m.cores-m.usedCores < req.Cores || m.mem-m.usedMem < req.MemoryMiB || m.gpus < req.GPUs {
		return fmt.Errorf("machine %q has %d free cores, %d MiB free memory and %d free GPUs, want %d, %d and %d",
			m.id, m.cores-m.usedCores, m.mem-m.usedMem, m.gpus, req.Cores, req.MemoryMiB, req.GPUs)
	}
	if req.VM != "" {
		s.vm[string(vm)] = i
	}

	// Take the rack out of its bucket while its key is the one it is
	// filed under.
	r := &s.racks[m.rack]
	b := s.byVMs[r.vms]
	p, _ := slices.BinarySearchFunc(b, m.rack, s.byHead)
	s.byVMs[r.vms] = slices.Delete(b, p, p+1)

	// The machine's load only grows: move it towards the back of its rack.
	m.usedCores += req.Cores
	m.usedMem += req.MemoryMiB
	m.gpus -= req.GPUs
	m.load = m.loadNow()
	for p := slices.Index(r.machines, i); p+1 < len(r.machines) && s.byLoad(r.machines[p+1], i) < 0; p++ {
		r.machines[p], r.machines[p+1] = r.machines[p+1], r.machines[p]
	}

	// The rack has one more VM: file it in the next bucket.
	r.vms++
	if r.vms == len(s.byVMs) {
		s.byVMs = append(s.byVMs, nil)
	}
	b = s.byVMs[r.vms]
	p, _ = slices.BinarySearchFunc(b, m.rack, s.byHead)
	s.byVMs[r.vms] = slices.Insert(b, p, m.rack)
	for s.minVMs < len(s.byVMs) && len(s.byVMs[s.minVMs]) == 0 {
		s.minVMs++
	}
	return nil
}

// Place returns the ID of the best machine for req, as spelled in its
// Machine, or a *NoFitError when no machine passes the filters, or another
// error when req is invalid (an unknown hint type, a negative size). It
// does not account the placement: call Commit for that.
func (s *Snapshot) Place(req Request) (string, error) {
	q, err := s.compile(req)
	if err != nil {
		return "", err
	}
	if best := s.search(q); best >= 0 {
		return s.machines[best].id, nil
	}
	return "", s.explain(req, q)
}

// A query is a Request resolved against the snapshot.
type query struct {
	cores, mem, gpus int

	// The bit of each requested feature, network and appliance, -1 when no
	// machine has it (then unknown is true), and the masks a machine must
	// cover.
	feat, net, appl             []int
	needFeat, needNet, needAppl []mask
	unknown                     bool

	hard, soft []constraint // in request order
	softAnti   int          // how many soft constraints are anti-affinity
}

// A constraint is a resolved hint.
type constraint struct {
	hint int // index in Request.Hints
	anti bool
	to   target
}

// A target is one machine, one rack or, with both -1, nothing.
type target struct{ machine, rack int32 }

func (s *Snapshot) holds(t target, i int32) bool {
	return i == t.machine || t.rack >= 0 && s.machines[i].rack == t.rack
}

func (s *Snapshot) compile(req Request) (*query, error) {
	if req.Cores < 0 || req.MemoryMiB < 0 || req.GPUs < 0 {
		return nil, errors.New("negative cores, memory or GPUs")
	}
	q := &s.q
	q.cores, q.mem, q.gpus = req.Cores, req.MemoryMiB, req.GPUs
	var ok [3]bool
	q.feat, q.needFeat, ok[0] = s.need(&s.features, req.Features, q.feat[:0], q.needFeat[:0])
	q.net, q.needNet, ok[1] = s.need(&s.networks, req.Networks, q.net[:0], q.needNet[:0])
	appl := [1]string{req.Appliance}
	q.appl, q.needAppl, ok[2] = s.need(&s.appliances, appl[:min(len(req.Appliance), 1)], q.appl[:0], q.needAppl[:0])
	q.unknown = ok != [3]bool{true, true, true}

	q.hard, q.soft, q.softAnti = q.hard[:0], q.soft[:0], 0
	for k, h := range req.Hints {
		c := constraint{hint: k, to: target{-1, -1}}
		var hard, rackScope bool
		switch {
		case strings.EqualFold(string(h.Type), string(Affinity)):
		case strings.EqualFold(string(h.Type), string(AntiAffinity)):
			c.anti = true
		default:
			return nil, fmt.Errorf("placement hint %d: hintType %q is neither %s nor %s", k, h.Type, Affinity, AntiAffinity)
		}
		switch {
		case strings.EqualFold(string(h.Execution), string(Hard)):
			hard = true
		case strings.EqualFold(string(h.Execution), string(Soft)):
		default:
			return nil, fmt.Errorf("placement hint %d: schedulingExecution %q is neither %s nor %s", k, h.Execution, Hard, Soft)
		}
		switch {
		case strings.EqualFold(string(h.Scope), string(MachineScope)):
		case strings.EqualFold(string(h.Scope), string(RackScope)):
			rackScope = true
		default:
			return nil, fmt.Errorf("placement hint %d: scope %q is neither %s nor %s", k, h.Scope, MachineScope, RackScope)
		}
		if h.Target == "" {
			return nil, fmt.Errorf("placement hint %d: no resourceId", k)
		}
		id := s.folded(h.Target)
		i, ok := s.machine[string(id)]
		if !ok {
			i, ok = s.vm[string(id)]
		}
		switch r, isRack := s.rack[string(id)]; {
		case ok && rackScope:
			c.to.rack = s.machines[i].rack
		case ok:
			c.to.machine = i
		case isRack:
			c.to.rack = r
		}
		if hard {
			q.hard = append(q.hard, c)
		} else {
			q.soft = append(q.soft, c)
			if c.anti {
				q.softAnti++
			}
		}
	}
	return q, nil
}

// fits reports whether machine i passes the filters, but for Hard affinity.
func (s *Snapshot) fits(i int32, q *query) bool {
	m := &s.machines[i]
	return m.ready && !m.cordoned &&
		m.cores-m.usedCores >= q.cores && m.mem-m.usedMem >= q.mem && m.gpus >= q.gpus &&
		s.machDenied[i] != s.epoch && s.rackDenied[m.rack] != s.epoch &&
		s.features.covers(i, q.needFeat) && s.networks.covers(i, q.needNet) && s.appliances.covers(i, q.needAppl)
}

// A candidate is a machine that fits with its score, or none when i < 0.
type candidate struct {
	i    int32
	soft int // Soft hints satisfied
	vms  int // in the rack
	load float64
}

func (a candidate) beats(b candidate) bool {
	switch {
	case b.i < 0:
		return true
	case a.soft != b.soft:
		return a.soft > b.soft
	case a.vms != b.vms:
		return a.vms < b.vms
	case a.load != b.load:
		return a.load < b.load
	}
	return a.i < b.i
}

// score is machine i as a candidate for q.
func (s *Snapshot) score(i int32, q *query) candidate {
	m := &s.machines[i]
	c := candidate{i: i, vms: s.racks[m.rack].vms, load: m.load}
	for _, h := range q.soft {
		if s.holds(h.to, i) != h.anti {
			c.soft++
		}
	}
	return c
}

// search returns the best machine for q, or -1.
func (s *Snapshot) search(q *query) int32 {
	if q.unknown {
		return -1
	}
	s.epoch++
	if s.epoch == 0 { // wrapped: forget the marks of 2³² Places ago
		clear(s.rackDenied)
		clear(s.rackTouched)
		clear(s.machDenied)
		s.epoch = 1
	}
	best := candidate{i: -1}

	// Hard anti-affinity: mark what it excludes. Hard affinity: the
	// candidates are the first one's target that all others hold.
	var affinity *constraint
	for k, h := range q.hard {
		switch {
		case !h.anti:
			if affinity == nil {
				affinity = &q.hard[k]
			}
		case h.to.machine >= 0:
			s.machDenied[h.to.machine] = s.epoch
		case h.to.rack >= 0:
			s.rackDenied[h.to.rack] = s.epoch
		}
	}
	if affinity != nil {
		one := [1]int32{affinity.to.machine}
		var in []int32
		switch {
		case affinity.to.machine >= 0:
			in = one[:]
		case affinity.to.rack >= 0:
			in = s.racks[affinity.to.rack].machines
		}
	next:
		for _, i := range in {
			for _, h := range q.hard {
				if !h.anti && !s.holds(h.to, i) {
					continue next
				}
			}
			if c := s.score(i, q); s.fits(i, q) && c.beats(best) {
				best = c
			}
		}
		return best.i
	}

	// Racks a Soft hint touches: every machine there may score differently,
	// so look at each.
	s.touched = s.touched[:0]
	for _, h := range q.soft {
		r := h.to.rack
		if h.to.machine >= 0 {
			r = s.machines[h.to.machine].rack
		}
		if r >= 0 && s.rackTouched[r] != s.epoch {
			s.rackTouched[r] = s.epoch
			s.touched = append(s.touched, r)
		}
	}
	for _, r := range s.touched {
		for _, i := range s.racks[r].machines {
			if c := s.score(i, q); c.beats(best) && s.fits(i, q) {
				best = c
			}
		}
	}

	// Every other machine satisfies exactly the Soft anti-affinities. Go
	// through their racks fewest VMs first, best first, and through each
	// rack least loaded machine first, stopping as soon as nothing left can
	// win.
	for n := s.minVMs; n < len(s.byVMs); n++ {
		if best.i >= 0 && (best.soft > q.softAnti || best.soft == q.softAnti && best.vms < n) {
			break
		}
		for _, r := range s.byVMs[n] {
			head := s.racks[r].machines[0]
			if !(candidate{i: head, soft: q.softAnti, vms: n, load: s.machines[head].load}).beats(best) {
				break
			}
			if s.rackTouched[r] == s.epoch || s.rackDenied[r] == s.epoch || !s.features.rackCovers(r, q.needFeat) ||
				!s.networks.rackCovers(r, q.needNet) || !s.appliances.rackCovers(r, q.needAppl) {
				continue
			}
			for _, i := range s.racks[r].machines {
				c := candidate{i: i, soft: q.softAnti, vms: n, load: s.machines[i].load}
				if !c.beats(best) {
					break
				}
				if s.fits(i, q) {
					best = c
					break
				}
			}
		}
	}
	return best.i
}

// A set gives each name (folded) a bit, each machine the bits of the names
// it has, and each rack the bits its machines have.
type set struct {
	bit   map[string]int
	words int      // per machine or rack
	bits  []uint64 // machine i has bits[i*words : (i+1)*words]
	racks []uint64 // rack r has racks[r*words : (r+1)*words]
}

// mask is the bits a machine must have in one word of its set.
type mask struct {
	word int
	bits uint64
}

// newSet makes the set of names of the machines, in order.
func (s *Snapshot) newSet(ms []Machine, order []int, names func(*Machine) []string) set {
	set := set{bit: map[string]int{}}
	for _, j := range order {
		for _, n := range names(&ms[j]) {
			if _, ok := set.bit[string(s.folded(n))]; !ok {
				set.bit[string(s.key)] = len(set.bit)
			}
		}
	}
	set.words = (len(set.bit) + 63) / 64
	set.bits = make([]uint64, len(order)*set.words)
	for i, j := range order {
		for _, n := range names(&ms[j]) {
			b := set.bit[string(s.folded(n))]
			set.bits[i*set.words+b/64] |= 1 << (b % 64)
		}
	}
	set.racks = make([]uint64, len(s.racks)*set.words)
	for i := range s.machines {
		r := int(s.machines[i].rack)
		for w := range set.words {
			set.racks[r*set.words+w] |= set.bits[i*set.words+w]
		}
	}
	return set
}

// need appends to bits the bit in set of each name, -1 for one no machine
// has, and to masks what a machine must have. ok is false when a name is
// unknown.
func (s *Snapshot) need(set *set, names []string, bits []int, masks []mask) (_ []int, _ []mask, ok bool) {
	ok = true
	for _, n := range names {
		b, known := set.bit[string(s.folded(n))]
		if !known {
			bits, ok = append(bits, -1), false
			continue
		}
		bits = append(bits, b)
		k := slices.IndexFunc(masks, func(m mask) bool { return m.word == b/64 })
		if k < 0 {
			k, masks = len(masks), append(masks, mask{word: b / 64})
		}
		masks[k].bits |= 1 << (b % 64)
	}
	return bits, masks, ok
}

func (s *set) has(i int32, b int) bool {
	return b >= 0 && s.bits[int(i)*s.words+b/64]&(1<<(b%64)) != 0
}

// covers reports whether machine i has every bit of masks.
func (s *set) covers(i int32, masks []mask) bool { return covers(s.bits[int(i)*s.words:], masks) }

// rackCovers reports whether the machines of rack r have, between them,
// every bit of masks.
func (s *set) rackCovers(r int32, masks []mask) bool { return covers(s.racks[int(r)*s.words:], masks) }

func covers(bits []uint64, masks []mask) bool {
	for _, m := range masks {
		if bits[m.word]&m.bits != m.bits {
			return false
		}
	}
	return true
}
