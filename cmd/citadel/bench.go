package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/store"
)

const benchUsage = `usage: citadel bench api|fleet [flags]

api    start a server with embedded etcd, drive concurrent ARM GETs and PUTs
       for a fixed time, measure raw etcd Put/Get from as many clients in the
       same run, and print JSON with p50/p99, throughput and their ratios.
fleet  start a server and --nodes simulated agents in a second process;
       measure registration, heartbeat handling, etcd writes per heartbeat,
       how fast a killed machine is NotReady and memory per machine (JSON).
`

func runBench(ctx context.Context, args []string, out io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "fleet":
		return runBenchFleet(ctx, args[1:], out)
	case len(args) > 0 && args[0] == "fleet-agents": // the agents' process of bench fleet
		return runFleetAgents(ctx, args[1:])
	case len(args) == 0 || args[0] != "api":
		fmt.Fprint(os.Stderr, benchUsage)
		return errors.New("unknown or missing benchmark")
	}
	fs := flag.NewFlagSet("citadel bench api", flag.ContinueOnError)
	var o apiOptions
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each phase runs")
	fs.IntVar(&o.resources, "resources", 256, "resources created for the GET phase")
	phases := fs.String("phases", "get,put,put-sync,etcd-get,etcd-put,etcd-get-inprocess,etcd-put-inprocess", "the phases to run, comma-separated")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the phases (not the setup) to this file")
	fs.IntVar(&o.assignments, "policy-assignments", 0, "Azure Policy assignments in force on every write (audit and deny definitions at the subscription)")
	fs.BoolVar(&o.withoutLog, "without-activity-log", false, "serve ARM requests without recording them in the activity log: the baseline for the log's cost")
	logCost := fs.Int("activity-log-cost", 0, "run N rounds, each a server without the activity log then one with it, and print each round's ratios and their medians")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	o.phases = strings.Split(*phases, ",")
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if *logCost > 0 {
		if o.cpuProfile != "" || o.withoutLog {
			return errors.New("--activity-log-cost runs both configurations itself, without a CPU profile")
		}
		report, err := activityLogCost(ctx, o, *logCost)
		if err != nil {
			return err
		}
		return enc.Encode(report)
	}
	report, err := benchAPI(ctx, o)
	if err != nil {
		return err
	}
	return enc.Encode(report)
}

// apiOptions are the flags of bench api that shape one run.
type apiOptions struct {
	clients, resources, assignments int
	duration                        time.Duration
	phases                          []string
	cpuProfile                      string
	withoutLog                      bool
}

// benchAPI runs the phases of bench api on a server of its own.
func benchAPI(ctx context.Context, o apiOptions) (benchReport, error) {
	env, err := startAPIEnv(ctx, o)
	if err != nil {
		return benchReport{}, err
	}
	defer env.stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return benchReport{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return benchReport{}, err
		}
		defer pprof.StopCPUProfile()
	}
	report := benchReport{Clients: o.clients, PhaseSeconds: o.duration.Seconds()}
	for _, ph := range benchPhases {
		if !slices.Contains(o.phases, ph.flag) {
			continue
		}
		progress("%s: %d clients for %s", ph.name, o.clients, o.duration)
		res, err := drive(ctx, o.clients, o.duration, env.op(ph.flag, o)).summary()
		if err != nil {
			return benchReport{}, fmt.Errorf("%s: %w", ph.name, err)
		}
		*ph.of(&report) = res
		progress("%s: %.0f/s, p50 %.2f ms, p99 %.2f ms", ph.name, res.Throughput, res.P50Ms, res.P99Ms)
		if err := settle(ctx, env.srv); err != nil {
			return benchReport{}, err
		}
	}
	if report.EtcdPut.Throughput > 0 {
		report.PutThroughputVsEtcd = report.Put.Throughput / report.EtcdPut.Throughput
		report.PutSyncVsEtcd = report.PutSync.Throughput / report.EtcdPut.Throughput
	}
	if report.EtcdGet.Throughput > 0 {
		report.GetThroughputVsEtcd = report.Get.Throughput / report.EtcdGet.Throughput
	}
	return report, nil
}

func progress(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...) }

// apiEnv is a server of bench api, set up and with its clients.
type apiEnv struct {
	srv         *server.Server
	b           *apiBench
	etcdClients []*store.Store
	stop        func() // closes the clients and stops the server
}

// startAPIEnv starts a server (without the activity log if o says so),
// connects o.clients ARM clients and as many etcd clients, and creates
// the resources of the GET phase and the policy assignments o asks for.
func startAPIEnv(ctx context.Context, o apiOptions) (_ *apiEnv, err error) {
	progress("starting a server with embedded etcd")
	srv, creds, stop, err := startBenchServer(ctx, func(c *server.Config) { c.BenchmarkWithoutActivityLog = o.withoutLog })
	if err != nil {
		return nil, err
	}
	env := &apiEnv{srv: srv}
	env.stop = func() {
		for _, c := range env.etcdClients {
			c.Close()
		}
		stop()
	}
	defer func() {
		if err != nil {
			env.stop()
		}
	}()
	// Each benchmark client is its own client, with its own connection,
	// as separate users would be.
	env.b = &apiBench{group: "/subscriptions/" + creds.SubscriptionID + "/resourceGroups/bench"}
	for range o.clients {
		c, err := client.New(creds)
		if err != nil {
			return nil, err
		}
		// Tokens come first: each costs a deliberately slow secret hash
		// that is not what the benchmark measures.
		if _, err := c.Token(ctx); err != nil {
			return nil, err
		}
		env.b.clients = append(env.b.clients, c)
	}
	progress("creating %d resources", o.resources)
	if err := env.b.setup(ctx, o.resources); err != nil {
		return nil, err
	}
	if o.assignments > 0 {
		progress("assigning %d policies", o.assignments)
		if err := env.b.assignPolicies(ctx, "/subscriptions/"+creds.SubscriptionID, o.assignments); err != nil {
			return nil, err
		}
	}
	// The etcd baseline is what etcd's own clients get: one clientv3
	// connection per benchmark client over loopback gRPC, to the same
	// embedded etcd, just as each ARM client has its own HTTPS connection.
	for range o.clients {
		c, err := store.Open(ctx, store.Config{Endpoints: []string{srv.Store.ClientURL()}, TLS: srv.Store.ClientTLS(),
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			return nil, err
		}
		env.etcdClients = append(env.etcdClients, c)
	}
	return env, nil
}

// benchPhase is one phase of bench api and where its result goes in the
// report; costName, its name in an --activity-log-cost report, is set
// for the ARM phases, which the activity log is on the path of.
type benchPhase struct {
	flag, name, costName string
	of                   func(r *benchReport) *phaseResult
}

// benchPhases are bench api's phases, in the order they run.
var benchPhases = []benchPhase{
	{"get", "ARM GET", "armGet", func(r *benchReport) *phaseResult { return &r.Get }},
	{"put", "ARM PUT", "armPut", func(r *benchReport) *phaseResult { return &r.Put }},
	{"put-sync", "ARM PUT synchronous", "armPutSync", func(r *benchReport) *phaseResult { return &r.PutSync }},
	{"etcd-get", "etcd Get", "", func(r *benchReport) *phaseResult { return &r.EtcdGet }},
	{"etcd-put", "etcd Put", "", func(r *benchReport) *phaseResult { return &r.EtcdPut }},
	// The same through the server's own in-process connection, which no
	// client outside the server has: for comparison only.
	{"etcd-get-inprocess", "etcd Get in-process", "", func(r *benchReport) *phaseResult { return &r.EtcdGetInProcess }},
	{"etcd-put-inprocess", "etcd Put in-process", "", func(r *benchReport) *phaseResult { return &r.EtcdPutInProcess }},
}

// op is the request the clients of phase flag repeat on env.
func (env *apiEnv) op(flag string, o apiOptions) func(ctx context.Context, client, i int) error {
	b, srv := env.b, env.srv
	notFoundIsNil := func(err error) error {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	switch flag {
	case "get":
		return func(ctx context.Context, cl, _ int) error { return b.get(ctx, cl, rand.IntN(o.resources)) }
	case "put":
		return func(ctx context.Context, cl, i int) error { return b.put(ctx, cl, i) }
	case "put-sync":
		return func(ctx context.Context, cl, i int) error { return b.putGroup(ctx, cl, i) }
	case "etcd-get":
		return func(ctx context.Context, cl, _ int) error {
			_, err := env.etcdClients[cl].Get(ctx, fmt.Sprintf("bench/%d", rand.IntN(o.resources)))
			return notFoundIsNil(err)
		}
	case "etcd-put":
		return func(ctx context.Context, cl, i int) error {
			_, err := env.etcdClients[cl].Txn(ctx, store.Put(fmt.Sprintf("bench/%d/%d", cl, i%64), benchValue))
			return err
		}
	case "etcd-get-inprocess":
		return func(ctx context.Context, _, _ int) error {
			_, err := srv.Store.Get(ctx, fmt.Sprintf("bench/%d", rand.IntN(o.resources)))
			return notFoundIsNil(err)
		}
	case "etcd-put-inprocess":
		return func(ctx context.Context, cl, i int) error {
			_, err := srv.Store.Txn(ctx, store.Put(fmt.Sprintf("bench/%d/%d", cl, i%64), benchValue))
			return err
		}
	}
	panic("bench api: no phase " + flag)
}

// benchValue is about the size of an ipPrefix record.
var benchValue = make([]byte, 900)

type phaseResult struct {
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Throughput float64 `json:"throughputPerSecond"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	MaxMs      float64 `json:"maxMs"`
	FirstError string  `json:"firstError,omitempty"`
}

type benchReport struct {
	Clients             int         `json:"clients"`
	PhaseSeconds        float64     `json:"phaseSeconds"`
	Get                 phaseResult `json:"armGet"`
	Put                 phaseResult `json:"armPut"`
	PutSync             phaseResult `json:"armPutSync"`
	EtcdGet             phaseResult `json:"etcdGet"`
	EtcdPut             phaseResult `json:"etcdPut"`
	EtcdGetInProcess    phaseResult `json:"etcdGetInProcess"`
	EtcdPutInProcess    phaseResult `json:"etcdPutInProcess"`
	PutThroughputVsEtcd float64     `json:"armPutThroughputVsEtcdPut"`
	PutSyncVsEtcd       float64     `json:"armPutSyncThroughputVsEtcdPut"`
	GetThroughputVsEtcd float64     `json:"armGetThroughputVsEtcdGet"`
}

// samples are what clients saw while they repeated a request.
type samples struct {
	latencies []time.Duration // of the requests that succeeded
	errs      int
	firstErr  error
	elapsed   time.Duration
}

// drive runs op from n clients until d has passed.
func drive(ctx context.Context, n int, d time.Duration, op func(ctx context.Context, client, i int) error) samples {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		all samples
		wg  sync.WaitGroup
	)
	start := time.Now()
	for cl := range n {
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			var last error
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				err := op(ctx, cl, i)
				if ctx.Err() != nil {
					break // the phase ended mid-request: not a sample
				}
				if err != nil {
					bad++
					last = err
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all.latencies = append(all.latencies, mine...)
			all.errs += bad
			if last != nil && all.firstErr == nil {
				all.firstErr = last
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	all.elapsed = time.Since(start)
	return all
}

// add pools s and more, as if driven one after the other.
func (s samples) add(more samples) samples {
	s.latencies = append(s.latencies, more.latencies...)
	s.errs += more.errs
	s.firstErr = cmp.Or(s.firstErr, more.firstErr)
	s.elapsed += more.elapsed
	return s
}

// summary summarises the latencies. More than 1% of errors fails the
// phase.
func (s samples) summary() (phaseResult, error) {
	latencies := slices.Sorted(slices.Values(s.latencies))
	if len(latencies) == 0 {
		return phaseResult{}, fmt.Errorf("no request succeeded: %v", s.firstErr)
	}
	if s.errs*100 > len(latencies) {
		return phaseResult{}, fmt.Errorf("%d of %d requests failed, first: %v", s.errs, s.errs+len(latencies), s.firstErr)
	}
	ms := func(q float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(q*float64(len(latencies))))].Microseconds()) / 1000
	}
	first := ""
	if s.firstErr != nil {
		first = s.firstErr.Error()
	}
	return phaseResult{
		Requests: len(latencies), Errors: s.errs, FirstError: first,
		Throughput: float64(len(latencies)) / s.elapsed.Seconds(),
		P50Ms:      ms(0.50), P99Ms: ms(0.99), MaxMs: ms(1),
	}, nil
}

// apiBench drives ipPrefixes, the one typed resource so far: a PUT is a
// real long-running create or update whose operation the controller
// completes while the benchmark runs.
type apiBench struct {
	clients []*client.Client
	group   string
}

func (b *apiBench) id(name string) string {
	return b.group + "/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/" + name + "?api-version=2025-07-15"
}

func prefixBody(seq int) map[string]any {
	return map[string]any{"location": "local", "properties": map[string]any{"ipPrefixRules": []any{
		map[string]any{"action": "Permit", "sequenceNumber": seq, "networkPrefix": "10.0.0.0/8", "condition": "Range", "subnetMaskLength": "16-24"},
	}}}
}

func (b *apiBench) setup(ctx context.Context, n int) error {
	r, err := b.clients[0].Do(ctx, http.MethodPut, b.group+"?api-version=2021-04-01", map[string]any{"location": "local"})
	if err != nil {
		return err
	}
	if err := r.Expect(200, 201); err != nil {
		return err
	}
	for i := range n {
		r, err := b.clients[0].Do(ctx, http.MethodPut, b.id(fmt.Sprintf("get-%d", i)), prefixBody(1))
		if err != nil {
			return err
		}
		if err := r.Expect(200, 201); err != nil {
			return err
		}
	}
	return nil
}

// benchPolicies are the definitions bench api assigns in turn: each reads
// the written resource, none refuses what the benchmark writes.
var benchPolicies = map[string]string{
	"bench-audit-env": `{"if":{"allOf":[{"field":"type","equals":"Microsoft.ManagedNetworkFabric/ipPrefixes"},{"field":"tags['env']","exists":"false"}]},"then":{"effect":"audit"}}`,
	"bench-deny-sequence": `{"if":{"allOf":[{"field":"type","equals":"Microsoft.ManagedNetworkFabric/ipPrefixes"},` +
		`{"count":{"field":"Microsoft.ManagedNetworkFabric/ipPrefixes/ipPrefixRules[*]","where":{"field":"Microsoft.ManagedNetworkFabric/ipPrefixes/ipPrefixRules[*].sequenceNumber","greater":4000000000}},"greater":0}]},"then":{"effect":"deny"}}`,
	"bench-location": `{"if":{"allOf":[{"field":"location","exists":true},{"not":{"field":"location","in":["local","global"]}}]},"then":{"effect":"deny"}}`,
}

// assignPolicies creates the bench definitions at scope and n assignments
// of them in turn.
func (b *apiBench) assignPolicies(ctx context.Context, scope string, n int) error {
	var names []string
	for name, rule := range benchPolicies {
		path := scope + "/providers/Microsoft.Authorization/policyDefinitions/" + name + "?api-version=2021-06-01"
		r, err := b.clients[0].Do(ctx, http.MethodPut, path, map[string]any{"properties": map[string]any{"mode": "All", "policyRule": json.RawMessage(rule)}})
		if err != nil {
			return err
		}
		if err := r.Expect(200, 201); err != nil {
			return err
		}
		names = append(names, name)
	}
	slices.Sort(names)
	for i := range n {
		def := scope + "/providers/Microsoft.Authorization/policyDefinitions/" + names[i%len(names)]
		path := fmt.Sprintf("%s/providers/Microsoft.Authorization/policyAssignments/bench-%d?api-version=2021-06-01", scope, i)
		r, err := b.clients[0].Do(ctx, http.MethodPut, path, map[string]any{"properties": map[string]any{"policyDefinitionId": def}})
		if err != nil {
			return err
		}
		if err := r.Expect(200, 201); err != nil {
			return err
		}
	}
	return nil
}

func (b *apiBench) get(ctx context.Context, client, i int) error {
	r, err := b.clients[client].Do(ctx, http.MethodGet, b.id(fmt.Sprintf("get-%d", i)), nil)
	if err != nil {
		return err
	}
	return r.Expect(200)
}

// putGroup replaces the tags of one of 8 resource groups per client: a
// synchronous PUT, one transaction, as most of ARM's writes are.
func (b *apiBench) putGroup(ctx context.Context, client, i int) error {
	path := fmt.Sprintf("%s-%d-%d?api-version=2021-04-01", b.group, client, i%8)
	r, err := b.clients[client].Do(ctx, http.MethodPut, path, map[string]any{"location": "local", "tags": map[string]string{"n": fmt.Sprint(i)}})
	if err != nil {
		return err
	}
	return r.Expect(200, 201)
}

// put creates or replaces one of 64 resources per client, so that both
// creates and updates are measured.
func (b *apiBench) put(ctx context.Context, client, i int) error {
	r, err := b.clients[client].Do(ctx, http.MethodPut, b.id(fmt.Sprintf("put-%d-%d", client, i%64)), prefixBody(i+1))
	if err != nil {
		return err
	}
	return r.Expect(200, 201)
}

// settle waits until the work a phase left behind is done (operations in
// flight, activity-log events not yet chained), so that it is charged to
// that phase and not to the next.
func settle(ctx context.Context, srv *server.Server) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		n, err := srv.Resources.ActiveOperations(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return srv.Audit.Flush(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("settle: %d operations still in flight: %w", n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startBenchServer starts a server on loopback ports with its data in a
// temporary directory, changed by change if not nil; stop stops it and
// removes the directory.
func startBenchServer(ctx context.Context, change func(*server.Config)) (srv *server.Server, creds client.Credentials, stop func(), err error) {
	dir, err := os.MkdirTemp("", "citadel-bench-")
	if err != nil {
		return nil, creds, nil, err
	}
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.AgentListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if change != nil {
		change(&cfg)
	}
	if srv, err = server.Start(ctx, cfg); err != nil {
		os.RemoveAll(dir)
		return nil, creds, nil, err
	}
	stop = func() { srv.Close(); os.RemoveAll(dir) }
	if creds, err = client.LoadCredentials(srv.CredentialsFile); err != nil {
		stop()
		return nil, creds, nil, err
	}
	return srv, creds, stop, nil
}
