package scheduler

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// NoFitError says why no machine could take a VM. Each machine is counted
// once, under the first filter it fails, so the counts add up to Total.
type NoFitError struct {
	Total   int      // machines in the snapshot
	Reasons []Reason // in the order of the filters
}

// Reason is how many machines a filter turned away, and why.
type Reason struct {
	Count int
	Text  string // "lacking 64 GiB free memory"
}

// Error reads like "0/48 machines: 12 excluded by rack anti-affinity,
// 16 cordoned, 20 lacking 64 GiB free memory".
func (e *NoFitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d machines", e.Total)
	for k, r := range e.Reasons {
		sep := ", "
		if k == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%d %s", sep, r.Count, r.Text)
	}
	return b.String()
}

// The filters, in the order a machine goes through them.
const (
	byHint = iota
	byNotReady
	byCordoned
	byFeature
	byGPUs
	byNetwork
	byAppliance
	byCores
	byMemory
	fitting
)

// A failure is the first filter a machine fails, and for a filter that
// checks a list (hints, features, networks) the index of the item.
type failure struct{ filter, item int }

func (s *Snapshot) explain(req Request, q *query) *NoFitError {
	counts := map[failure]int{}
	for i := range s.machines {
		counts[s.failure(int32(i), q)]++
	}
	e := &NoFitError{Total: len(s.machines)}
	for _, f := range slices.SortedFunc(maps.Keys(counts), func(a, b failure) int {
		return cmp.Or(cmp.Compare(a.filter, b.filter), cmp.Compare(a.item, b.item))
	}) {
		text := s.text(f, req, q)
		if k := slices.IndexFunc(e.Reasons, func(r Reason) bool { return r.Text == text }); k >= 0 {
			e.Reasons[k].Count += counts[f]
		} else {
			e.Reasons = append(e.Reasons, Reason{Count: counts[f], Text: text})
		}
	}
	return e
}

// failure is the first filter machine i fails, or fitting. It is the slow,
// plain twin of fits; the tests keep them in step.
func (s *Snapshot) failure(i int32, q *query) failure {
	for _, h := range q.hard {
		if s.holds(h.to, i) == h.anti {
			return failure{byHint, h.hint}
		}
	}
	m := &s.machines[i]
	if !m.ready {
		return failure{byNotReady, 0}
	}
	if m.cordoned {
		return failure{byCordoned, 0}
	}
	for k, b := range q.feat {
		if !s.features.has(i, b) {
			return failure{byFeature, k}
		}
	}
	if m.gpus < q.gpus {
		return failure{byGPUs, 0}
	}
	for k, b := range q.net {
		if !s.networks.has(i, b) {
			return failure{byNetwork, k}
		}
	}
	for _, b := range q.appl {
		if !s.appliances.has(i, b) {
			return failure{byAppliance, 0}
		}
	}
	if m.cores-m.usedCores < q.cores {
		return failure{byCores, 0}
	}
	if m.mem-m.usedMem < q.mem {
		return failure{byMemory, 0}
	}
	return failure{fitting, 0}
}

func (s *Snapshot) text(f failure, req Request, q *query) string {
	switch f.filter {
	case byHint:
		h := req.Hints[f.item]
		scope := "machine"
		if c := q.hard[slices.IndexFunc(q.hard, func(c constraint) bool { return c.hint == f.item })]; c.to.rack >= 0 ||
			c.to.machine < 0 && strings.EqualFold(string(h.Scope), string(RackScope)) {
			scope = "rack"
		}
		kind := "affinity"
		if strings.EqualFold(string(h.Type), string(AntiAffinity)) {
			kind = "anti-affinity"
		}
		return "excluded by " + scope + " " + kind
	case byNotReady:
		return "not ready"
	case byCordoned:
		return "cordoned"
	case byFeature:
		return "lacking feature " + req.Features[f.item]
	case byGPUs:
		return "lacking " + plural(q.gpus, "free GPU")
	case byNetwork:
		return "lacking network " + name(req.Networks[f.item])
	case byAppliance:
		return "unable to reach storage appliance " + name(req.Appliance)
	case byCores:
		return "lacking " + plural(q.cores, "free core")
	case byMemory:
		if q.mem%1024 == 0 {
			return fmt.Sprintf("lacking %d GiB free memory", q.mem/1024)
		}
		return fmt.Sprintf("lacking %d MiB free memory", q.mem)
	}
	return "fitting" // never: a machine that fits ends the search
}

func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// name is the last segment of an ARM ID: short enough for a one-line error.
func name(id string) string {
	id = strings.TrimRight(id, "/")
	return id[strings.LastIndexByte(id, '/')+1:]
}
