// Package fleet is the control plane's side of the agent path
// (ARCHITECTURE.md): the agent API that machines' agents join and report
// to over mTLS, the in-memory liveness of the machines of the cells this
// replica owns (cells.go), and the writes of
// what changes (inventory, observed state, liveness transitions) to the
// bareMetalMachine and rack resources, of the VMs' statuses the agents
// report to the virtualMachines (vms.go), and of the console logs they
// send on request to the VMs' consoles (consoles.go). Heartbeats
// themselves are never written.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/liveness"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// BMCs answers the liveness tracker's questions about a machine's power,
// from its BMC (the NetworkCloud provider).
type BMCs interface {
	// PowerState is the machine's power as its BMC reports it ("On",
	// "Off"); an error means the BMC cannot be reached.
	PowerState(ctx context.Context, machine arm.ID) (string, error)
}

// Artifacts opens the files of imported releases and VM images by their
// sha256.
type Artifacts interface {
	// Open opens the file, copying it from another replica when this one
	// lacks it; an error wrapping os.ErrNotExist means no replica has it.
	Open(ctx context.Context, sha256 string) (*os.File, error)
	// Local opens the file this replica holds, for another replica.
	Local(sha256 string) (*os.File, error)
}

// Config configures the agent API.
type Config struct {
	Auth      *agentauth.Authority
	Resources *resource.Service
	BMCs      BMCs
	// Heartbeat is the interval agents are asked to keep (default 10 s).
	Heartbeat time.Duration
	Liveness  liveness.Config
	// Artifacts, if set, serves the files of imported releases to the
	// agents that update their machines.
	Artifacts Artifacts
	// Devices, if set, serves the fabric's network devices: their
	// zero-touch bootstrap and reports, every DeviceReport (default 5 s).
	Devices      Devices
	DeviceReport time.Duration
	// Roster, if set, spreads the machines' liveness over the replicas
	// serving the agent API, by cell (cells.go): this replica is present
	// in it as ReplicaID, publishing URL, its agent API's URL, to which
	// the others send the agents of the cells it owns. Without a roster
	// this replica holds every machine's liveness.
	Roster    *store.Store
	ReplicaID string
	URL       string
	// Metrics, if set, receives the agent API's metrics.
	Metrics prometheus.Registerer
	Now     func() time.Time
	Logger  *slog.Logger
}

// Server is the agent API of one replica.
type Server struct {
	cfg     Config
	log     *slog.Logger
	tracker *liveness.Tracker

	mu       sync.Mutex
	observed map[string]agentapi.Observed            // last written, by machine ID
	vms      map[string]map[string]agentapi.VMStatus // last written (or found written), by machine ID and VM ID

	heartbeats prometheus.Histogram // how long handling one takes

	// machines mirrors what the bareMetalMachines ask of their machines,
	// and their cells, once Run has started, so that heartbeats learn of
	// a new desired state without a read.
	machines atomic.Pointer[resource.Projection[machineProps]]
	// cells says which replica owns each cell: nil until this replica is
	// present in the roster.
	cells atomic.Pointer[ownership]
}

// HeartbeatHistogram is the name of the histogram of heartbeat handling
// times.
const HeartbeatHistogram = "citadel_agent_heartbeat_duration_seconds"

// New returns the agent API; Run keeps liveness current.
func New(cfg Config) *Server {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	if cfg.Liveness.NotReadyAfter == 0 {
		// A machine dies after its last heartbeat, and Run ticks every
		// second: 2.5 intervals of silence make it NotReady within
		// 30 s of its death, as the control plane promises.
		cfg.Liveness.NotReadyAfter = cfg.Heartbeat * 5 / 2
	}
	if cfg.DeviceReport <= 0 {
		cfg.DeviceReport = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "fleet"), tracker: liveness.New(cfg.Liveness),
		observed: map[string]agentapi.Observed{}, vms: map[string]map[string]agentapi.VMStatus{},
		heartbeats: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    HeartbeatHistogram,
			Help:    "Time the agent API takes to handle a heartbeat, from the request to the answer.",
			Buckets: prometheus.ExponentialBucketsRange(20e-6, 1, 40),
		})}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(s.heartbeats, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "citadel_fleet_cells_owned",
			Help: "Cells (clusters) whose machines' liveness this replica holds.",
		}, func() float64 { return float64(s.cellsOwned()) }))
		for _, st := range []liveness.State{liveness.Unknown, liveness.Ready, liveness.NotReady, liveness.Unreachable, liveness.Failed} {
			cfg.Metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "citadel_fleet_machines",
				Help:        "Machines whose liveness this replica holds, by state.",
				ConstLabels: prometheus.Labels{"state": st.String()},
			}, func() float64 { return float64(s.tracker.Stats().ByState[st]) }))
		}
	}
	return s
}

// Handler serves the agent API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathJoin, s.join)
	mux.HandleFunc("POST "+agentapi.PathRenew, s.authenticated(s.renew))
	heartbeat := s.authenticated(s.heartbeat)
	mux.HandleFunc("POST "+agentapi.PathHeartbeat, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now() // the whole handling, the certificate's check included
		heartbeat(w, r)
		s.heartbeats.Observe(time.Since(start).Seconds())
	})
	mux.HandleFunc("PUT "+agentapi.PathInventory, s.authenticated(s.inventory))
	mux.HandleFunc("GET "+agentapi.PathDesired, s.authenticated(s.desired))
	mux.HandleFunc("GET "+agentapi.PathArtifacts+"{sha256}", s.authenticated(s.artifact))
	mux.HandleFunc("GET "+agentapi.PathReplicaFiles+"{sha256}", s.replicaFile)
	mux.HandleFunc("PUT "+agentapi.PathConsole, s.authenticated(s.consoleLog))
	if s.cfg.Devices != nil {
		mux.HandleFunc("POST "+agentapi.PathZTP, s.ztp)
		mux.HandleFunc("GET "+agentapi.PathDeviceConfig, s.device(s.deviceConfig))
		mux.HandleFunc("PUT "+agentapi.PathDeviceState, s.device(s.deviceState))
	}
	return mux
}

// peer is the machine a request comes from: its ID as its certificate
// names it (the stored resource's), parsed and as it is.
type peer struct {
	id      arm.ID
	name    string
	cluster string
}

func (s *Server) authenticated(h func(http.ResponseWriter, *http.Request, peer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		machine, cluster, err := s.cfg.Auth.Peer(r)
		if err != nil {
			fail(w, http.StatusForbidden, err)
			return
		}
		id, err := arm.ParseID(machine)
		if err != nil {
			fail(w, http.StatusForbidden, err)
			return
		}
		h(w, r, peer{id: id, name: machine, cluster: cluster})
	}
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	var req agentapi.JoinRequest
	if err := decode(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	id, err := arm.ParseID(req.Machine)
	if err != nil || !strings.EqualFold(id.Type(), "Microsoft.NetworkCloud/bareMetalMachines") {
		fail(w, http.StatusBadRequest, fmt.Errorf("machine %q is not the ID of a bareMetalMachine", req.Machine))
		return
	}
	m, err := s.cfg.Resources.Lookup(r.Context(), id)
	if err != nil {
		fail(w, http.StatusForbidden, agentauth.ErrBadToken) // say nothing of which machines exist
		return
	}
	inCluster := func(_ context.Context, cluster, _ string) bool {
		return strings.EqualFold(cluster, str(m.Properties, "clusterId"))
	}
	certPEM, err := s.cfg.Auth.Join(r.Context(), req.Token, m.ID, []byte(req.CSR), inCluster)
	switch {
	case errors.Is(err, agentauth.ErrBadToken):
		fail(w, http.StatusForbidden, err)
		return
	case errors.Is(err, agentauth.ErrBadCSR):
		fail(w, http.StatusBadRequest, err)
		return
	case err != nil:
		fail(w, http.StatusInternalServerError, err)
		return
	}
	s.log.InfoContext(r.Context(), "agent joined", "machine", m.ID)
	s.reply(w, agentapi.Certificate{Certificate: string(certPEM), CACertificate: string(s.cfg.Auth.CACertPEM()),
		HeartbeatSeconds: int(s.cfg.Heartbeat / time.Second)})
}

func (s *Server) renew(w http.ResponseWriter, r *http.Request, _ peer) {
	var req agentapi.RenewRequest
	if err := decode(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	certPEM, err := s.cfg.Auth.Renew(r.TLS.PeerCertificates[0], []byte(req.CSR))
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	s.reply(w, agentapi.Certificate{Certificate: string(certPEM), CACertificate: string(s.cfg.Auth.CACertPEM()),
		HeartbeatSeconds: int(s.cfg.Heartbeat / time.Second)})
}

// heartbeat records that the machine is alive, in memory, and writes its
// observed state and its VMs' statuses only when they changed.
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, p peer) {
	var hb agentapi.Heartbeat
	if err := decode(r, &hb); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	cells := s.cells.Load()
	if !s.mine(w, cells, p.cluster) {
		return
	}
	key := p.name
	if !s.tracker.Known(key) {
		if err := s.register(r.Context(), p.id); err != nil {
			fail(w, http.StatusNotFound, err)
			return
		}
	}
	// What the agent observed is written before the machine shows Ready,
	// so that a Ready machine's resource says what it reported.
	s.mu.Lock()
	changed := !sameObserved(s.observed[key], hb.Observed)
	s.mu.Unlock()
	if changed {
		if err := s.writeObserved(r.Context(), p.id, hb.Observed); err != nil {
			fail(w, http.StatusInternalServerError, err)
			return
		}
		s.mu.Lock()
		s.observed[key] = hb.Observed
		s.mu.Unlock()
	}
	s.writeVMs(r.Context(), p, hb.VMs)
	if tr, changed := s.tracker.Heartbeat(key, s.cfg.Now()); changed {
		s.record(cells.ctx, tr) // back from silence: rare, and worth the write
	}
	reply := agentapi.HeartbeatReply{HeartbeatSeconds: int(s.cfg.Heartbeat / time.Second), Replicas: cells.urls}
	if d, ok := s.mirrored(p.id); ok {
		reply.DesiredRevision = d.Revision
	}
	s.reply(w, reply)
}

// machineProps are the properties of a machine that say where it is (its
// cell and rack) and what its agent should do: the release it runs is the
// one an update targets, or else the one it was provisioned with.
type machineProps struct {
	ClusterID    string `json:"clusterId"`
	RackID       string `json:"rackId"`
	AgentVersion string `json:"agentVersion"` // empty until its agent first reported

	OSImage               string             `json:"osImage"`
	CordonStatus          string             `json:"cordonStatus"`
	MachineClusterVersion string             `json:"machineClusterVersion"`
	UpdateTarget          *machine.Target    `json:"updateTarget"`
	HostNetworks          []agentapi.Network `json:"hostNetworks"`
	// VirtualMachines are the VMs placed on the machine, as the
	// NetworkCloud provider writes them: a sensitive property (their
	// user data), which responses leave out but the store, and so the
	// projection, holds.
	VirtualMachines []agentapi.VM `json:"virtualMachines"`
}

// desired is what props, written at revision, ask of the machine. Any
// write to the machine makes the agent look again.
func (d machineProps) desired(revision int64) agentapi.Desired {
	out := agentapi.Desired{Revision: revision, OSImage: d.OSImage, Cordoned: d.CordonStatus == "Cordoned",
		ClusterVersion: d.MachineClusterVersion, Networks: d.HostNetworks, VMs: d.VirtualMachines}
	if t := d.UpdateTarget; t != nil {
		out.ClusterVersion, out.Artifacts = t.ClusterVersion, t.Artifacts
	}
	return out
}

// artifact serves a release's file or a VM image to an agent.
func (s *Server) artifact(w http.ResponseWriter, r *http.Request, _ peer) {
	if s.cfg.Artifacts == nil {
		fail(w, http.StatusNotFound, errors.New("this control plane holds no release artifacts"))
		return
	}
	serveFile(w, r, func() (*os.File, error) { return s.cfg.Artifacts.Open(r.Context(), r.PathValue("sha256")) })
}

// replicaFile serves a file this replica holds to another replica.
func (s *Server) replicaFile(w http.ResponseWriter, r *http.Request) {
	if _, err := s.cfg.Auth.Replica(r); err != nil {
		fail(w, http.StatusForbidden, err)
		return
	}
	if s.cfg.Artifacts == nil {
		fail(w, http.StatusNotFound, errors.New("this control plane holds no release artifacts"))
		return
	}
	serveFile(w, r, func() (*os.File, error) { return s.cfg.Artifacts.Local(r.PathValue("sha256")) })
}

// serveFile serves the file open opens: 404, saying why, when it cannot
// (none has that digest, or it could not be copied from another replica:
// the agent asks again later).
func serveFile(w http.ResponseWriter, r *http.Request, open func() (*os.File, error)) {
	f, err := open()
	if err != nil {
		fail(w, http.StatusNotFound, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// mirrored is the machine's desired state as the mirror has it, once
// there is one.
func (s *Server) mirrored(id arm.ID) (agentapi.Desired, bool) {
	if mirror := s.machines.Load(); mirror != nil {
		if props, rev, ok := mirror.Get(id); ok {
			return props.desired(rev), true
		}
	}
	return agentapi.Desired{}, false
}

// register makes a machine known to the tracker, with its rack.
func (s *Server) register(ctx context.Context, id arm.ID) error {
	m, err := s.cfg.Resources.Lookup(ctx, id)
	if err != nil {
		return err
	}
	s.tracker.Register(m.ID, str(m.Properties, "rackId"))
	return nil
}

func (s *Server) writeObserved(ctx context.Context, id arm.ID, o agentapi.Observed) error {
	return s.update(ctx, id, func(props map[string]any) {
		props["agentVersion"] = o.AgentVersion
		v4, v6 := "", ""
		for _, a := range o.Addresses {
			ip, _, err := net.ParseCIDR(a)
			switch {
			case err != nil:
			case ip.To4() != nil && v4 == "":
				v4 = a
			case ip.To4() == nil && v6 == "":
				v6 = a
			}
		}
		props["oamIpv4Address"], props["oamIpv6Address"] = v4, v6
	})
}

func (s *Server) inventory(w http.ResponseWriter, r *http.Request, p peer) {
	var inv agentapi.Inventory
	if err := decode(r, &inv); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if err := s.update(r.Context(), p.id, func(props map[string]any) {
		var v any
		b, _ := json.Marshal(inv)
		json.Unmarshal(b, &v)
		props["agentInventory"] = v
	}); err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// desired answers GET desired?after=N: the state the control plane wants
// the machine in, as soon as its revision is above N (a long poll of at
// most desiredWait; the agent asks again when it ends).
func (s *Server) desired(w http.ResponseWriter, r *http.Request, p peer) {
	var after int64
	fmt.Sscan(r.URL.Query().Get("after"), &after)
	if mirror := s.machines.Load(); mirror != nil {
		ctx, cancel := context.WithTimeout(r.Context(), desiredWait)
		defer cancel()
		// Woken by the change itself, not by polling; at desiredWait the
		// agent gets the state as it is.
		mirror.Until(ctx, p.id, func(_ machineProps, rev int64) bool { return rev == 0 || rev > after })
		if r.Context().Err() != nil {
			return
		}
	}
	d, ok := s.mirrored(p.id)
	if !ok {
		// The mirror starts with Run; a machine not in it is gone.
		fail(w, http.StatusNotFound, fmt.Errorf("no desired state for %s yet", p.id))
		return
	}
	s.reply(w, d)
}

// desiredWait is how long a GET of the desired state waits for a change.
const desiredWait = 30 * time.Second

// update changes some properties of an existing machine, and writes
// nothing when they already had those values (a replica that takes over
// a cell hears again what its machines' resources say).
func (s *Server) update(ctx context.Context, id arm.ID, change func(props map[string]any)) error {
	_, err := s.cfg.Resources.Upsert(ctx, id, func(r *resource.Resource, created bool) error {
		if created {
			return resource.ErrUnchanged // removed meanwhile
		}
		before := maps.Clone(r.Properties)
		change(r.Properties)
		if maps.EqualFunc(before, r.Properties, func(a, b any) bool { return reflect.DeepEqual(a, b) }) {
			return resource.ErrUnchanged
		}
		return nil
	})
	return err
}

func sameObserved(a, b agentapi.Observed) bool {
	return a.AgentVersion == b.AgentVersion && a.OSImage == b.OSImage && strings.Join(a.Addresses, ",") == strings.Join(b.Addresses, ",")
}

func str(props map[string]any, name string) string {
	s, _ := props[name].(string)
	return s
}

func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (s *Server) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// Run mirrors the machines, takes this replica's share of the cells, and
// applies the liveness rules every second until ctx ends: it writes each
// transition to its machine or rack and asks the BMCs of silent machines
// about their power, a few at a time.
func (s *Server) Run(ctx context.Context) {
	for {
		mirror, err := resource.MirrorProjection[machineProps](ctx, s.cfg.Resources, "Microsoft.NetworkCloud/bareMetalMachines")
		if err == nil {
			s.machines.Store(mirror)
			break
		}
		s.log.WarnContext(ctx, "fleet: the machines could not be mirrored; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	if s.cfg.Roster != nil {
		go s.cfg.Roster.Attend(ctx, rosterName, s.cfg.ReplicaID, s.cfg.URL, rosterTTL, s.rebalance)
	} else {
		s.rebalance(ctx, []store.Attendee{{ID: s.cfg.ReplicaID, Value: s.cfg.URL}})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	asking := make(chan struct{}, 16)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cells := s.cells.Load()
		if cells == nil {
			continue // not present yet: no machine is tracked
		}
		changes, ask := s.tracker.Tick(s.cfg.Now())
		for _, tr := range changes {
			s.record(cells.ctx, tr)
		}
		for _, m := range ask {
			select {
			case asking <- struct{}{}:
				go func() {
					defer func() { <-asking }()
					s.askBMC(ctx, m)
				}()
			default: // busy: Tick asks again later
			}
		}
	}
}

// askBMC reports a silent machine's power, from its BMC, to the tracker.
func (s *Server) askBMC(ctx context.Context, machine string) {
	id, err := arm.ParseID(machine)
	if err != nil || s.cfg.BMCs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	power, err := s.cfg.BMCs.PowerState(ctx, id)
	s.tracker.ReportBMC(machine, liveness.Evidence{At: s.cfg.Now(), PowerOff: err == nil && power == "Off", BMCUnreachable: err != nil})
}

// record writes a transition to the resource it is about: livenessState
// and its reason, and a machine's readyState.
func (s *Server) record(ctx context.Context, tr liveness.Transition) {
	target := tr.Machine
	if target == "" {
		target = tr.Rack
	}
	s.log.InfoContext(ctx, "liveness", "resource", target, "from", tr.From.String(), "to", tr.To.String(), "reason", tr.Reason)
	id, err := arm.ParseID(target)
	if err != nil {
		return
	}
	err = s.update(ctx, id, func(props map[string]any) {
		props["livenessState"], props["livenessMessage"] = tr.To.String(), tr.Reason
		if tr.Machine != "" {
			props["readyState"] = machine.ReadyState(str(props, "detailedStatus"), str(props, "powerState"), str(props, "cordonStatus"), tr.To.String())
		}
	})
	if err != nil {
		s.log.WarnContext(ctx, "liveness transition not recorded", "resource", target, "err", err)
	}
}

// Tracker is the in-memory liveness of the machines, for tests and
// benchmarks to read.
func (s *Server) Tracker() *liveness.Tracker { return s.tracker }
