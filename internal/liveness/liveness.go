package liveness

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// State is how alive a machine (or, Ready and Unreachable only, a rack) is.
type State uint8

const (
	// Unknown is a machine not heard from since the tracker started: a
	// restarted replica does not know what its predecessor knew.
	Unknown State = iota
	// Ready is a machine heard from within NotReadyAfter, and a rack that
	// is not partitioned.
	Ready
	// NotReady is a machine silent for NotReadyAfter or longer.
	NotReady
	// Unreachable is a silent machine in a partitioned rack, and the
	// partitioned rack itself.
	Unreachable
	// Failed is a machine silent past FailedAfter whose BMC corroborates:
	// its power is Off or the BMC cannot be reached.
	Failed

	numStates = int(Failed) + 1
)

var stateNames = [numStates]string{"Unknown", "Ready", "NotReady", "Unreachable", "Failed"}

func (s State) String() string {
	if int(s) < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// Config tunes the rules. A zero field takes its DefaultConfig value.
type Config struct {
	// NotReadyAfter is how long a machine may be silent before it is
	// NotReady: three of the agents' 10 s heartbeats by default (30 s).
	NotReadyAfter time.Duration
	// FailedAfter is the grace, counted from the last heartbeat (or from
	// the end of a partition of its rack), before a silent machine may be
	// declared Failed on its BMC's evidence (default 40 s: the VMs of a
	// failed machine then run elsewhere within a minute of its last
	// heartbeat).
	FailedAfter time.Duration
	// PartitionWindow is how recently a machine must have fallen silent
	// (passed NotReadyAfter) to count toward a partition of its rack
	// (default 30 s). Machines silent for longer, such as a hung machine
	// whose BMC says it is on, do not make a partition.
	PartitionWindow time.Duration
	// PartitionMin is the fewest silent machines that make a partition
	// (default 2), so that a rack of one or two machines can still have a
	// machine fail.
	PartitionMin int
	// AskEvery is how often Tick asks again about the BMC of a machine
	// that stays NotReady without corroborating evidence (default 30 s).
	AskEvery time.Duration
}

// DefaultConfig is the configuration the control plane runs with.
func DefaultConfig() Config {
	return Config{
		NotReadyAfter:   30 * time.Second,
		FailedAfter:     40 * time.Second,
		PartitionWindow: 30 * time.Second,
		PartitionMin:    2,
		AskEvery:        30 * time.Second,
	}
}

// withDefaults fills the zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.NotReadyAfter == 0 {
		c.NotReadyAfter = d.NotReadyAfter
	}
	if c.FailedAfter == 0 {
		c.FailedAfter = d.FailedAfter
	}
	if c.PartitionWindow == 0 {
		c.PartitionWindow = d.PartitionWindow
	}
	if c.PartitionMin == 0 {
		c.PartitionMin = d.PartitionMin
	}
	if c.AskEvery == 0 {
		c.AskEvery = d.AskEvery
	}
	return c
}

// Validate reports a configuration New would refuse, once its zero fields
// have their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"NotReadyAfter", c.NotReadyAfter}, {"FailedAfter", c.FailedAfter}, {"PartitionWindow", c.PartitionWindow}, {"AskEvery", c.AskEvery}} {
		if d.v < time.Microsecond {
			errs = append(errs, fmt.Errorf("liveness: %s %v is less than 1µs", d.name, d.v))
		}
	}
	if c.FailedAfter < c.NotReadyAfter {
		errs = append(errs, fmt.Errorf("liveness: FailedAfter %v is shorter than NotReadyAfter %v", c.FailedAfter, c.NotReadyAfter))
	}
	if c.PartitionMin < 1 {
		errs = append(errs, fmt.Errorf("liveness: PartitionMin %d is less than 1", c.PartitionMin))
	}
	return errors.Join(errs...)
}

// Transition is a change of state of a machine or, when Machine is empty,
// of a rack. It is what the caller writes to the store.
type Transition struct {
	Machine  string // empty for a rack
	Rack     string
	From, To State
	At       time.Time
	Reason   string // for people: "no heartbeat for 31s"
}

func (tr Transition) String() string {
	if tr.Machine == "" {
		return fmt.Sprintf("rack %s: %v → %v: %s", tr.Rack, tr.From, tr.To, tr.Reason)
	}
	return fmt.Sprintf("machine %s: %v → %v: %s", tr.Machine, tr.From, tr.To, tr.Reason)
}

// Evidence is what a machine's BMC said when the caller asked it.
type Evidence struct {
	At             time.Time // when the BMC was asked
	PowerOff       bool      // the BMC reports the power Off
	BMCUnreachable bool      // the BMC could not be reached or read
}

// Evidence flags as a machine keeps them.
const (
	evPowerOff uint8 = 1 << iota
	evUnreachable
)

// Stats are counts for dashboards and benchmarks.
type Stats struct {
	Machines, Racks  int
	PartitionedRacks int
	ByState          [numStates]int // machines in each State, indexed by it
	Unregistered     uint64         // heartbeats from machines not registered, ignored
	Transitions      uint64         // of machines and racks, reported by Heartbeat and Tick
}

// Tracker holds the liveness of a set of machines. It is safe for
// concurrent use. Heartbeat takes no lock: it finds its machine in an index
// it only reads and changes the machine's state word alone, so heartbeats
// on many cores do not slow each other down.
type Tracker struct {
	// Read by every heartbeat, written rarely.
	index atomic.Pointer[index]
	seed  maphash.Seed
	cfg   Config
	// The durations in microseconds, the unit of machine.word.
	notReady, failed, window, askEvery int64

	_            [64]byte // keeps what follows off the cache line above
	unregistered atomic.Uint64
	hbChanges    atomic.Uint64 // transitions reported by Heartbeat

	mu          sync.Mutex // serialises Tick, Register, Forget, ReportBMC and Stats
	racks       map[string]*rack
	order       []*rack // registration order, so Tick's output is deterministic
	machines    int
	transitions uint64 // reported by Tick
}

// machine is one machine's liveness, kept small: 64 bytes, one cache line.
type machine struct {
	// word is the time of the last heartbeat in Unix microseconds,
	// shifted left by timeShift, with the State and the heard bit in the
	// low bits. Until the machine is heard from, the time is when Tick
	// first saw it (0 before that). Heartbeat and Tick change it only by
	// compare-and-swap, so each transition is made, and reported, once.
	word atomic.Uint64
	hash uint64 // of name
	name string
	rack atomic.Pointer[rack]

	// Guarded by Tracker.mu.
	evAt  int64 // when the newest BMC evidence was gathered, µs
	asked int64 // when Tick last asked for BMC evidence, µs
	pos   int32 // in rack.machines
	ev    uint8 // evPowerOff | evUnreachable
}

// rack is a group of machines that can be partitioned together. Guarded by
// Tracker.mu.
type rack struct {
	name        string
	machines    []*machine
	pos         int  // in Tracker.order
	partitioned bool // Unreachable
	// While partitioned, silences that began at or after cutoff (µs) count
	// toward the partition: those that made it and any later ones.
	cutoff int64
	healed int64 // when the last partition ended, µs
}

// The low bits of machine.word: the State and whether the machine has
// been heard from since the tracker started.
const (
	stateMask = 1<<3 - 1
	heardBit  = 1 << 3
	timeShift = 4
)

func pack(us int64, s State, heard bool) uint64 {
	w := uint64(us)<<timeShift | uint64(s)
	if heard {
		w |= heardBit
	}
	return w
}

func unpack(w uint64) (us int64, s State, heard bool) {
	return int64(w >> timeShift), State(w & stateMask), w&heardBit != 0
}

// micros is t in Unix microseconds, at least 1 (0 is "never").
func micros(t time.Time) int64 { return max(t.UnixMicro(), 1) }

// New returns an empty tracker. It panics on a configuration Validate
// rejects: callers validate their flags first.
func New(cfg Config) *Tracker {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	t := &Tracker{
		cfg:      cfg,
		notReady: cfg.NotReadyAfter.Microseconds(),
		failed:   cfg.FailedAfter.Microseconds(),
		window:   cfg.PartitionWindow.Microseconds(),
		askEvery: cfg.AskEvery.Microseconds(),
		seed:     maphash.MakeSeed(),
		racks:    map[string]*rack{},
	}
	t.index.Store(newIndex(0))
	return t
}

// Config is the configuration in force, defaults filled in.
func (t *Tracker) Config() Config { return t.cfg }

func (t *Tracker) lookup(name string) *machine {
	return t.index.Load().find(name, maphash.String(t.seed, name))
}

// Register makes a machine known, in a rack, or moves it to another rack.
// A new machine is Unknown until its first heartbeat; it becomes NotReady
// if none comes within NotReadyAfter of the first Tick after Register, so
// a replica should register every machine it owns when it starts. Machines
// with an empty rack are never part of a partition. Names are compared
// exactly: the caller normalises them (ARM IDs are case-insensitive).
func (t *Tracker) Register(machineName, rackName string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := t.lookup(machineName); m != nil {
		if m.rack.Load().name != rackName {
			t.detach(m)
			t.attach(m, rackName)
		}
		return
	}
	m := &machine{name: strings.Clone(machineName), hash: maphash.String(t.seed, machineName)}
	t.attach(m, rackName)
	t.insert(m)
	t.machines++
}

// Forget drops a machine, reporting whether it was known. Its rack goes
// with its last machine.
func (t *Tracker) Forget(machineName string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.lookup(machineName)
	if m == nil {
		return false
	}
	t.index.Load().remove(m)
	t.detach(m)
	t.machines--
	return true
}

// attach puts m in the named rack, creating it. t.mu is held.
func (t *Tracker) attach(m *machine, rackName string) {
	r := t.racks[rackName]
	if r == nil {
		r = &rack{name: strings.Clone(rackName), pos: len(t.order)}
		t.racks[r.name] = r
		t.order = append(t.order, r)
	}
	m.pos = int32(len(r.machines))
	r.machines = append(r.machines, m)
	m.rack.Store(r)
}

// detach takes m out of its rack, dropping the rack when it is empty.
// t.mu is held.
func (t *Tracker) detach(m *machine) {
	r := m.rack.Load()
	last := len(r.machines) - 1
	moved := r.machines[last]
	r.machines[m.pos], moved.pos = moved, m.pos
	r.machines[last] = nil
	r.machines = r.machines[:last]
	if len(r.machines) > 0 {
		return
	}
	delete(t.racks, r.name)
	lastRack := t.order[len(t.order)-1]
	t.order[r.pos], lastRack.pos = lastRack, r.pos
	t.order[len(t.order)-1] = nil
	t.order = t.order[:len(t.order)-1]
}

// Known reports whether the machine is registered.
func (t *Tracker) Known(machineName string) bool {
	return t.lookup(machineName) != nil
}

// Heartbeat records that the machine was heard from at now. It reports the
// transition when the machine was not Ready (the first heartbeat after a
// restart is one, from Unknown, so that the caller can compare it with what
// it last wrote). A heartbeat from a machine that is not registered is
// ignored and counted in Stats.Unregistered; use Known to tell.
//
// Heartbeat is the hot path: it takes no lock, writes only the machine's
// state word and, for a Ready machine, does not allocate.
func (t *Tracker) Heartbeat(machineName string, now time.Time) (Transition, bool) {
	m := t.lookup(machineName)
	if m == nil {
		t.unregistered.Add(1)
		return Transition{}, false
	}
	us := micros(now)
	for {
		old := m.word.Load()
		last, from, heard := unpack(old)
		if from == Ready && last >= us {
			return Transition{}, false // a late heartbeat, out of order
		}
		at := us
		if heard {
			at = max(at, last)
		}
		if !m.word.CompareAndSwap(old, pack(at, Ready, true)) {
			continue
		}
		if from == Ready {
			return Transition{}, false
		}
		t.hbChanges.Add(1)
		return Transition{Machine: m.name, Rack: m.rack.Load().name, From: from, To: Ready, At: now, Reason: "heartbeat received"}, true
	}
}

// State is the machine's state and its last heartbeat (zero if it has not
// been heard from since the tracker started). A machine that is not registered is Unknown.
func (t *Tracker) State(machineName string) (State, time.Time) {
	m := t.lookup(machineName)
	if m == nil {
		return Unknown, time.Time{}
	}
	us, s, heard := unpack(m.word.Load())
	if !heard {
		return s, time.Time{}
	}
	return s, time.UnixMicro(us).UTC()
}

// RackState is Unreachable while the rack is partitioned, Ready otherwise,
// and Unknown for a rack with no registered machine.
func (t *Tracker) RackState(rackName string) State {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.racks[rackName]
	switch {
	case r == nil:
		return Unknown
	case r.partitioned:
		return Unreachable
	}
	return Ready
}

// ReportBMC hands the tracker what a machine's BMC said, in answer to Tick
// asking or not. Evidence older than the newest already reported is
// ignored. It reports whether the machine is registered.
func (t *Tracker) ReportBMC(machineName string, ev Evidence) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.lookup(machineName)
	if m == nil {
		return false
	}
	at := micros(ev.At)
	if at < m.evAt {
		return true
	}
	m.evAt, m.ev = at, 0
	if ev.PowerOff {
		m.ev |= evPowerOff
	}
	if ev.BMCUnreachable {
		m.ev |= evUnreachable
	}
	return true
}

// Stats counts the machines by state; it reads every machine, so it is
// for dashboards and tests, not for each request.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Stats{Machines: t.machines, Racks: len(t.order), Unregistered: t.unregistered.Load(),
		Transitions: t.transitions + t.hbChanges.Load()}
	for _, r := range t.order {
		if r.partitioned {
			st.PartitionedRacks++
		}
		for _, m := range r.machines {
			_, s, _ := unpack(m.word.Load())
			st.ByState[s]++
		}
	}
	return st
}
