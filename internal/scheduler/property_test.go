package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// reference is the scheduler written the obvious way: every machine, every
// time, straight from the Machine values. The property tests hold the
// Snapshot to it.
type reference struct{ ms []Machine }

func (f *reference) locate(id string) (machine int, rack string, ok bool) {
	for k, m := range f.ms {
		if strings.EqualFold(m.ID, id) {
			return k, m.Rack, true
		}
	}
	for k, m := range f.ms {
		if slices.ContainsFunc(m.VMs, func(vm string) bool { return strings.EqualFold(vm, id) }) {
			return k, m.Rack, true
		}
	}
	for _, m := range f.ms {
		if strings.EqualFold(m.Rack, id) {
			return -1, m.Rack, true
		}
	}
	return -1, "", false
}

// targets says which machines are the hint's target.
func (f *reference) targets(h Hint) []bool {
	in := make([]bool, len(f.ms))
	machine, rack, ok := f.locate(h.Target)
	for k := range f.ms {
		switch {
		case !ok:
		case machine < 0 || strings.EqualFold(string(h.Scope), "rack"):
			in[k] = strings.EqualFold(f.ms[k].Rack, rack)
		default:
			in[k] = k == machine
		}
	}
	return in
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, w) }) {
			return false
		}
	}
	return true
}

// fits reports whether machine k passes the filters; in[h][k] is whether
// it is hint h's target.
func (f *reference) fits(k int, req Request, in [][]bool) bool {
	m := f.ms[k]
	for h, hint := range req.Hints {
		if strings.EqualFold(string(hint.Execution), "hard") && in[h][k] == strings.EqualFold(string(hint.Type), "antiaffinity") {
			return false
		}
	}
	appl := []string{}
	if req.Appliance != "" {
		appl = []string{req.Appliance}
	}
	return m.Ready && !m.Cordoned && m.Cores-m.UsedCores >= req.Cores && m.MemoryMiB-m.UsedMemoryMiB >= req.MemoryMiB &&
		m.GPUs >= req.GPUs && hasAll(m.Features, req.Features) && hasAll(m.Networks, req.Networks) && hasAll(m.Appliances, appl)
}

type refScore struct {
	soft, vms int
	load      float64
	id        string
}

func (f *reference) score(k int, req Request, in [][]bool, rackVMs map[string]int) refScore {
	m := f.ms[k]
	s := refScore{id: strings.ToLower(m.ID), vms: rackVMs[strings.ToLower(m.Rack)]}
	for h, hint := range req.Hints {
		if strings.EqualFold(string(hint.Execution), "soft") && in[h][k] != strings.EqualFold(string(hint.Type), "antiaffinity") {
			s.soft++
		}
	}
	cores, mem := 1.0, 1.0
	if m.Cores > 0 {
		cores = float64(m.UsedCores) / float64(m.Cores)
	}
	if m.MemoryMiB > 0 {
		mem = float64(m.UsedMemoryMiB) / float64(m.MemoryMiB)
	}
	s.load = max(cores, mem)
	return s
}

func (a refScore) beats(b refScore) bool {
	switch {
	case a.soft != b.soft:
		return a.soft > b.soft
	case a.vms != b.vms:
		return a.vms < b.vms
	case a.load != b.load:
		return a.load < b.load
	}
	return a.id < b.id
}

// targetsOf is the targets of each hint of req.
func (f *reference) targetsOf(req Request) [][]bool {
	var in [][]bool
	for _, h := range req.Hints {
		in = append(in, f.targets(h))
	}
	return in
}

// place returns the index of the best machine, or -1.
func (f *reference) place(req Request) int {
	in := f.targetsOf(req)
	rackVMs := map[string]int{}
	for _, m := range f.ms {
		rackVMs[strings.ToLower(m.Rack)] += len(m.VMs)
	}
	best, score := -1, refScore{}
	for k := range f.ms {
		if !f.fits(k, req, in) {
			continue
		}
		if s := f.score(k, req, in, rackVMs); best < 0 || s.beats(score) {
			best, score = k, s
		}
	}
	return best
}

func (f *reference) commit(k int, req Request) {
	m := &f.ms[k]
	m.UsedCores += req.Cores
	m.UsedMemoryMiB += req.MemoryMiB
	m.GPUs -= req.GPUs
	m.VMs = append(slices.Clip(m.VMs), req.VM)
}

// randomCase spells an ID in a random mix of cases.
func randomCase(r *rand.Rand, s string) string {
	switch r.IntN(3) {
	case 0:
		return strings.ToUpper(s)
	case 1:
		return strings.ToLower(s)
	}
	return s
}

// pick picks up to most of from.
func pick[T any](r *rand.Rand, from []T, most int) []T {
	var out []T
	for _, k := range r.Perm(len(from))[:r.IntN(min(most, len(from))+1)] {
		out = append(out, from[k])
	}
	return out
}

// some picks each of from with probability p.
func some[T any](r *rand.Rand, from []T, p float64) []T {
	var out []T
	for _, x := range from {
		if r.Float64() < p {
			out = append(out, x)
		}
	}
	return out
}

var (
	features   = []string{"avx512f", "amx_tile", "sha_ni", "gpu"}
	appliances = []string{applID("sa1"), applID("sa2")}
)

// randomFleet has 1 to 6 racks of 1 to 8 machines, some of them busy (but
// not overbooked), not ready or cordoned, and some VMs already placed.
func randomFleet(r *rand.Rand) (ms []Machine, vms int) {
	for rk := range 1 + r.IntN(6) {
		nets := some(r, []string{netID("a"), netID("b"), netID("c")}, 0.8)
		for k := range 1 + r.IntN(8) {
			m := Machine{
				ID:   machineID(fmt.Sprintf("m%d-%d", rk, k)),
				Rack: rackID(fmt.Sprintf("R%d", rk)),
				// Mostly usable, so that placements happen.
				Ready: r.IntN(10) > 0, Cordoned: r.IntN(10) == 0,
				Cores: 4 * r.IntN(17), MemoryMiB: 1024 * r.IntN(65),
				Features: some(r, features, 0.7), Networks: nets, Appliances: some(r, appliances, 0.7),
			}
			if slices.Contains(m.Features, "gpu") {
				m.GPUs = r.IntN(3)
			}
			for range r.IntN(3) {
				c, mem := r.IntN(m.Cores/2+1), r.IntN(m.MemoryMiB/2+1)
				m.UsedCores, m.UsedMemoryMiB = m.UsedCores+c, m.UsedMemoryMiB+mem
				m.VMs = append(m.VMs, vmID(fmt.Sprintf("old%d", vms)))
				vms++
			}
			ms = append(ms, m)
		}
	}
	return ms, vms
}

// randomRequest asks for a small VM with a few requirements and hints to
// machines, racks and VMs of the fleet, and to some that do not exist.
func randomRequest(r *rand.Rand, f *reference, n int) Request {
	req := Request{
		VM: vmID(fmt.Sprintf("new%d", n)), Cores: r.IntN(9), MemoryMiB: 512 * r.IntN(17),
		Features: pick(r, features, 1), Networks: pick(r, []string{netID("a"), netID("b"), netID("c")}, 2),
	}
	if slices.Contains(req.Features, "gpu") {
		req.GPUs = r.IntN(2)
	}
	if r.IntN(3) == 0 {
		req.Appliance = appliances[r.IntN(2)]
	}
	for range r.IntN(4) {
		m := f.ms[r.IntN(len(f.ms))]
		var target string
		switch r.IntN(5) {
		case 0:
			target = m.ID
		case 1:
			target = m.Rack
		case 2:
			if len(m.VMs) == 0 {
				continue
			}
			target = m.VMs[r.IntN(len(m.VMs))]
		case 3:
			target = vmID(fmt.Sprintf("new%d", n-1)) // the last VM, if it was placed
		case 4:
			target = []string{machineID("gone"), rackID("gone"), vmID("gone")}[r.IntN(3)]
		}
		req.Hints = append(req.Hints, Hint{
			Type:      []HintType{Affinity, AntiAffinity}[r.IntN(2)],
			Execution: []Execution{Hard, Soft}[r.IntN(2)],
			Scope:     []Scope{MachineScope, RackScope}[r.IntN(2)],
			Target:    randomCase(r, target),
		})
	}
	return req
}

// TestPlaceProperties places random VMs with random hints on random fleets
// and checks each answer against the reference: the same machine, or no
// fit for the same reasons. Along the way it checks the properties the
// reference makes obvious: a placement passes every filter, so it never
// goes against a Hard hint, and the committed VMs never overbook.
func TestPlaceProperties(t *testing.T) {
	var placed, noFit, hard int
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 0))
		ms, _ := randomFleet(r)
		s := snapshot(t, ms)
		f := &reference{ms: slices.Clone(ms)}
		for n := range 60 {
			req := randomRequest(r, f, n)
			if slices.ContainsFunc(req.Hints, func(h Hint) bool { return h.Execution == Hard }) {
				hard++
			}
			got, err := s.Place(req)
			want := f.place(req)
			if e, ok := errors.AsType[*NoFitError](err); ok {
				if want >= 0 {
					t.Fatalf("seed %d: Place(%+v) = %v, want %s", seed, req, err, f.ms[want].ID)
				}
				total := 0
				for _, reason := range e.Reasons {
					total += reason.Count
				}
				if total != len(ms) || e.Total != len(ms) || strings.Contains(err.Error(), "fitting") {
					t.Fatalf("seed %d: Place(%+v) = %v: counts %d of %d machines, want %d", seed, req, err, total, e.Total, len(ms))
				}
				noFit++
				continue
			}
			if k := slices.IndexFunc(f.ms, func(m Machine) bool { return m.ID == got }); err == nil && (k < 0 || !f.fits(k, req, f.targetsOf(req))) {
				t.Fatalf("seed %d: Place(%+v) = %q, which does not pass the filters (a Hard hint, capacity, ...)", seed, req, got)
			}
			if err != nil || want < 0 || got != f.ms[want].ID {
				wantID := "no fit"
				if want >= 0 {
					wantID = f.ms[want].ID
				}
				t.Fatalf("seed %d: Place(%+v) = %q, %v; want %s", seed, req, got, err, wantID)
			}
			if err := s.Commit(got, req); err != nil {
				t.Fatalf("seed %d: Commit(%s, %+v) = %v", seed, got, req, err)
			}
			f.commit(want, req)
			placed++
		}
		for _, m := range f.ms {
			if m.UsedCores > m.Cores || m.UsedMemoryMiB > m.MemoryMiB || m.GPUs < 0 {
				t.Errorf("seed %d: machine %s overbooked: %d/%d cores, %d/%d MiB, %d GPUs", seed, m.ID, m.UsedCores, m.Cores, m.UsedMemoryMiB, m.MemoryMiB, m.GPUs)
			}
		}
	}
	t.Logf("placed %d VMs, %d did not fit; %d requests had Hard hints", placed, noFit, hard)
	if placed < noFit {
		t.Errorf("placed %d VMs and %d did not fit: the random fleets are too full to test much", placed, noFit)
	}
}

// TestPlaceSpreads places N VMs on an idle fleet of R racks of various
// sizes, with room to spare: no rack gets more than ceil(N/R).
func TestPlaceSpreads(t *testing.T) {
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 1))
		racks := 1 + r.IntN(10)
		var ms []Machine
		for rk := range racks {
			for k := range 1 + r.IntN(5) {
				m := idle(fmt.Sprintf("m%d-%d", rk, k), fmt.Sprintf("r%d", rk))
				m.Cores, m.MemoryMiB = 400, 200<<10
				ms = append(ms, m)
			}
		}
		s := snapshot(t, ms)
		n := 1 + r.IntN(200)
		perRack := map[string]int{}
		for k := range n {
			req := Request{VM: vmID(fmt.Sprint(k)), Cores: 1 + r.IntN(2), MemoryMiB: 1024}
			id, err := s.Place(req)
			if err == nil {
				err = s.Commit(id, req)
			}
			if err != nil {
				t.Fatalf("seed %d: VM %d: %v", seed, k, err)
			}
			perRack[ms[slices.IndexFunc(ms, func(m Machine) bool { return m.ID == id })].Rack]++
		}
		most := (n + racks - 1) / racks
		for rack, got := range perRack {
			if got > most {
				t.Errorf("seed %d: %d VMs on %d racks put %d on %s, want at most %d", seed, n, racks, got, rack, most)
			}
		}
	}
}
