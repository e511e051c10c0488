package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/store"
)

// The machines' liveness is spread over the replicas by cell (cluster):
// the replica that owns a cell holds its machines' heartbeats, judges
// their silences and writes their transitions. Each replica serving the
// agent API is present in a roster in the store under a lease; a cell's
// owner is the present replica that rendezvous hashing picks, so every
// replica computes the same owners from the same roster, and when a
// replica leaves (dies, or freezes past its lease) only its cells move,
// spread over the others. An agent that heartbeats to another replica is
// sent to the owner (agentapi.Misdirected).

// rosterName is the roster of the replicas serving the agent API.
const rosterName = "agent-api"

// rosterTTL is the lease of a replica's presence: a dead replica's cells
// move to the others within about that long, well inside the silence
// (NotReadyAfter, 25 s by default) that would make their machines
// NotReady.
const rosterTTL = 5 * time.Second

// ownership is which replica owns each cell, under one roster view.
type ownership struct {
	// ctx is the presence's (store.Attend): cancelled when it lapses, and
	// its writes are fenced by it.
	ctx     context.Context
	self    string           // this replica's ID in the roster
	members []store.Attendee // the replicas present, each with its agent API URL
	urls    []string         // their agent API URLs, as heartbeats' answers list them

	mu     sync.Mutex
	owners map[string]store.Attendee // by cell, as computed
}

func newOwnership(ctx context.Context, self string, members []store.Attendee) *ownership {
	o := &ownership{ctx: ctx, self: self, members: members, owners: map[string]store.Attendee{}}
	for _, m := range members {
		o.urls = append(o.urls, m.Value)
	}
	return o
}

// owner is the replica that holds the cell's liveness.
func (o *ownership) owner(cell string) store.Attendee {
	o.mu.Lock()
	defer o.mu.Unlock()
	m, ok := o.owners[cell]
	if !ok {
		m = rendezvous(cell, o.members)
		o.owners[cell] = m
	}
	return m
}

// owns reports whether this replica holds the cell's liveness, as long as
// its presence lasts.
func (o *ownership) owns(cell string) bool {
	return o.ctx.Err() == nil && o.owner(cell).ID == o.self
}

// Peers are the agent API URLs of the other replicas present.
func (s *Server) Peers() []string {
	cells := s.cells.Load()
	if cells == nil {
		return nil
	}
	var out []string
	for _, m := range cells.members {
		if m.ID != cells.self {
			out = append(out, m.Value)
		}
	}
	return out
}

// rendezvous picks the member with the highest hash of (member, cell)
// (highest random weight): the same members give the same pick, and a
// member's leaving moves only the cells it had.
func rendezvous(cell string, members []store.Attendee) store.Attendee {
	var best store.Attendee
	var bestWeight uint64
	for i, m := range members {
		h := sha256.Sum256([]byte(m.ID + "\x00" + cell))
		if w := binary.BigEndian.Uint64(h[:8]); i == 0 || w > bestWeight {
			best, bestWeight = m, w
		}
	}
	return best
}

// cellOf is the cell of a machine: its cluster's ID, which ARM compares
// without case.
func cellOf(clusterID string) string { return strings.ToLower(clusterID) }

// mine reports whether this replica holds the liveness of the cell; when
// it does not it answers the agent: 421 with the cell's owner, or 503
// while this replica is not present in the roster.
func (s *Server) mine(w http.ResponseWriter, cells *ownership, cluster string) bool {
	if cells != nil && cells.owns(cellOf(cluster)) {
		return true
	}
	if cells == nil || cells.ctx.Err() != nil {
		fail(w, http.StatusServiceUnavailable, errors.New("this replica is joining the roster of the agent API; try another"))
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMisdirectedRequest)
	owner := cells.owner(cellOf(cluster)).Value
	json.NewEncoder(w).Encode(agentapi.Misdirected{Error: "another replica holds the liveness of this machine's cell", Owner: owner})
	return false
}

// rebalance takes a new roster view: the machines of the cells this
// replica gained are tracked afresh (a silence it did not see counts
// from now), and those of the cells it lost are forgotten. A presence
// that lapsed owns nothing, so when it comes back its cells are tracked
// afresh too.
func (s *Server) rebalance(ctx context.Context, members []store.Attendee) {
	now := newOwnership(ctx, s.cfg.ReplicaID, members)
	old := s.cells.Swap(now)
	machines, _ := s.machines.Load().All()
	gained, lost := 0, 0
	for _, m := range machines {
		cell := cellOf(m.Properties.ClusterID)
		had := old != nil && old.owns(cell)
		switch has := now.owns(cell); {
		case has && !had && m.Properties.AgentVersion != "":
			s.tracker.Forget(m.ID)
			s.tracker.Register(m.ID, m.Properties.RackID)
			gained++
		case !has && s.tracker.Forget(m.ID):
			lost++
		}
	}
	s.log.InfoContext(ctx, "fleet: cells rebalanced", "replicas", len(members), "cells_owned", s.cellsOwned(),
		"machines_gained", gained, "machines_given_up", lost)
}

// cellsOwned counts the cells, of the machines mirrored, that this
// replica owns.
func (s *Server) cellsOwned() int {
	cells, mirror := s.cells.Load(), s.machines.Load()
	if cells == nil || mirror == nil {
		return 0
	}
	machines, _ := mirror.All()
	owned := map[string]bool{}
	for _, m := range machines {
		cell := cellOf(m.Properties.ClusterID)
		if _, seen := owned[cell]; !seen {
			owned[cell] = cells.owns(cell)
		}
	}
	n := 0
	for _, mine := range owned {
		if mine {
			n++
		}
	}
	return n
}
