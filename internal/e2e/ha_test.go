package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/citadel-cloud/citadel/internal/client"
)

// etcdTLS is a CA and the certificates of an etcd cluster's members and
// of its clients, as files.
type etcdTLS struct {
	dir, ca, cert, key string // the CA, and the certificate and key every member and client uses
}

func newEtcdTLS(t *testing.T) etcdTLS {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcd CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "etcd"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return etcdTLS{dir: dir, ca: write("ca.crt", "CERTIFICATE", caDER), cert: write("etcd.crt", "CERTIFICATE", der), key: write("etcd.key", "PRIVATE KEY", keyDER)}
}

// startEtcdCluster starts three Debian etcd members on loopback, TLS
// between them and from clients, and returns the client endpoints.
func startEtcdCluster(t *testing.T, tl etcdTLS) []string {
	t.Helper()
	bin := requireTool(t, "etcd", "etcd-server")
	const n = 3
	var peers, clients, cluster []string
	for i := range n {
		peers = append(peers, "https://"+freeAddr(t))
		clients = append(clients, "https://"+freeAddr(t))
		cluster = append(cluster, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	for i := range n {
		cmd := exec.Command(bin, "--name", fmt.Sprintf("m%d", i), "--data-dir", t.TempDir(),
			"--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new",
			"--cert-file", tl.cert, "--key-file", tl.key, "--trusted-ca-file", tl.ca, "--client-cert-auth",
			"--peer-cert-file", tl.cert, "--peer-key-file", tl.key, "--peer-trusted-ca-file", tl.ca, "--peer-client-cert-auth",
			"--log-level", "error")
		cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	return clients
}

// kvInput and kvOutput are one operation on a register per key (a
// resource group's tag), for porcupine.
type kvInput struct {
	write      bool
	key, value string
}

type kvOutput struct{ value string }

// kvModel is a register per key: a read returns the last value written.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in := input.(kvInput)
		if in.write {
			return true, in.value
		}
		return output.(kvOutput).value == state.(string), state
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(kvInput)
		if in.write {
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) -> %s", in.key, output.(kvOutput).value)
	},
}

// TestFailover runs three replicas on a three-member etcd cluster (TLS
// between members and from clients) with 1,000 simulated machines'
// agents heartbeating to them, and fails one replica under load through
// all of them, twice: first it is frozen (SIGSTOP) for 20 s and let go,
// then one is killed (SIGKILL). Each time the replica that fails is the
// one holding the liveness of the most cells, and a machine of each cell
// dies with it. The clients retry a failed request on the next replica,
// and none of them sees an error; the history of writes and reads of
// every key is linearizable (porcupine); every long-running operation
// and machine action accepted by the failing replica ends, Succeeded or
// Failed with a reason; no machine whose agent runs has a liveness
// transition written (its resource is not written at all), while those
// whose agents died are NotReady or Failed, judged by whichever replica
// holds their cell; the window in which requests to the live replicas
// failed is measured. A frozen replica holds its connections and its
// leases lapse, so its cells move to the others; when it comes back it
// serves again and takes its cells back without judging the silence it
// slept through.
func TestFailover(t *testing.T) {
	t.Parallel()
	h := startHA(t)
	t.Run("freeze", func(t *testing.T) {
		h.failover(t, "freeze", func(t *testing.T, p *citadelProcess) {
			p.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(20 * time.Second)
			p.cmd.Process.Signal(syscall.SIGCONT)
		})
	})
	t.Run("kill", func(t *testing.T) {
		h.failover(t, "kill", func(t *testing.T, p *citadelProcess) { p.kill(t) })
	})
}

// ha is a highly available control plane and its fleet.
type ha struct {
	replicas []*citadelProcess
	clients  []*client.Client // an admin client per replica
	live     []bool           // the replicas not killed
	sub      string           // "/subscriptions/{id}"
	fleet    *haFleet
}

// startHA starts three replicas on a three-member etcd cluster, and a
// fleet of 1,000 machines in cells of 50 whose agents are spread over
// them.
func startHA(t *testing.T) *ha {
	tl := newEtcdTLS(t)
	endpoints := startEtcdCluster(t, tl)
	bin := buildCitadel(t)
	h := &ha{replicas: make([]*citadelProcess, 3), live: []bool{true, true, true}}
	agentAPIs := make([]string, len(h.replicas))
	for i := range h.replicas {
		agentAddr := freeAddr(t)
		agentAPIs[i] = "https://" + agentAddr
		h.replicas[i] = &citadelProcess{bin: bin, dataDir: t.TempDir(), listen: freeAddr(t), args: []string{
			"--etcd-endpoints", strings.Join(endpoints, ","), "--etcd-ca", tl.ca, "--etcd-cert", tl.cert, "--etcd-key", tl.key,
			"--agent-listen", agentAddr}}
		putClusterImage(t, h.replicas[i].dataDir)
		h.replicas[i].start(t)
	}
	// The CA is the replicas' shared one.
	for i, r := range h.replicas {
		h.clients = append(h.clients, r.client(t))
		if h.clients[i].Creds.CACertFile != h.clients[0].Creds.CACertFile {
			if a, b := mustRead(t, h.clients[i].Creds.CACertFile), mustRead(t, h.clients[0].Creds.CACertFile); a != b {
				t.Fatalf("replica %d has another HTTPS CA than replica 0", i)
			}
		}
	}
	h.sub = "/subscriptions/" + h.clients[0].Creds.SubscriptionID
	h.fleet = startHAFleet(t, bin, h.clients, agentAPIs, 1000, 50)
	return h
}

// failover runs the load, injects fault into the replica that holds the
// most cells, and checks; the replica serves again after a fault that
// is not named "kill". The phase's name keeps its keys apart from other
// phases'.
func (h *ha) failover(t *testing.T, phase string, fault func(t *testing.T, p *citadelProcess)) {
	var live []*client.Client
	for i, c := range h.clients {
		if h.live[i] {
			live = append(live, c)
		}
	}
	owned, err := cellsOwned(live)
	if err != nil {
		t.Fatal(err)
	}
	victim := 0 // of live
	for i := range owned {
		if owned[i] > owned[victim] {
			victim = i
		}
	}
	t.Logf("cells owned by each live replica: %v; the fault hits the one with %d", owned, owned[victim])
	if owned[victim] == 0 {
		t.Fatal("no replica holds a cell")
	}
	victimProcess := h.replicas[slices.Index(h.clients, live[victim])]
	others := slices.Delete(slices.Clone(live), victim, victim+1)
	observer := others[0]

	const keys = 8
	group := func(k int) string {
		return fmt.Sprintf("%s/resourceGroups/ha-%s-%d?api-version=2021-04-01", h.sub, phase, k)
	}
	for k := range keys {
		if r, err := live[k%len(live)].Do(t.Context(), http.MethodPut, group(k), map[string]any{"location": "local"}); err != nil || r.Status/100 != 2 {
			t.Fatalf("create group %d: %v %v", k, r, err)
		}
	}
	before, err := h.fleet.machines(t.Context(), observer)
	if err != nil {
		t.Fatal(err)
	}

	// Long-running operations (resources' and machines' actions) sent to
	// the replica about to fail until it does: the last ones are in
	// flight when it does.
	var lros []string
	acted := map[string]bool{} // the machines acted on
	lroDone := make(chan struct{})
	go func() {
		defer close(lroDone)
		for i := 0; ; i++ {
			method, path, body := http.MethodPut, fmt.Sprintf("%s/resourceGroups/ha-%s-0/providers/Microsoft.ManagedNetworkFabric/ipPrefixes/prefix%d?api-version=2025-07-15", h.sub, phase, i),
				any(map[string]any{"location": "local", "properties": map[string]any{"ipPrefixRules": []any{
					map[string]any{"action": "Permit", "sequenceNumber": 1, "networkPrefix": "10.0.0.0/8"}}}})
			if action := []string{"", "cordon", "restart"}[i%3]; action != "" {
				// restart fails: the fleet's BMCs answer nothing.
				m := h.fleet.fleet.Machines[i%len(h.fleet.fleet.Machines)].ID
				acted[m] = true
				method, path, body = http.MethodPost, m+"/"+action+"?api-version=2026-07-01", map[string]any{}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			r, err := live[victim].Do(ctx, method, path, body)
			cancel()
			if err != nil || r.Status >= 500 {
				return // the replica is gone or frozen
			}
			if op := r.Header.Get("Azure-AsyncOperation"); r.Status/100 == 2 && op != "" {
				lros = append(lros, strings.TrimPrefix(op, strings.TrimSuffix(live[victim].Creds.ARMEndpoint, "/")))
			}
		}
	}()

	// The load: workers write and read the keys through every live
	// replica in turn, retrying a failed attempt on the next replica.
	start := time.Now()
	// Attempts on the failed replica fail until a client stops sending
	// there (a load balancer's health check would); what counts is how
	// long requests to the other replicas fail.
	var (
		mu                      sync.Mutex
		history                 []porcupine.Operation
		firstFailure, lastFail  time.Time
		onDead, onLive, errored int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	attempt := func(c *client.Client, method, path string, body any) (*client.Response, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // a frozen replica answers nothing
		defer cancel()
		r, err := c.Do(ctx, method, path, body)
		if err == nil && r.Status >= 500 {
			err = fmt.Errorf("%d %s", r.Status, r.Body)
		}
		return r, err
	}
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (w + i) % keys
				in := kvInput{write: i%2 == 0, key: fmt.Sprint(k), value: fmt.Sprintf("w%d-%d", w, i)}
				call := time.Since(start).Nanoseconds()
				var out kvOutput
				var err error
				for try := 0; try < 20; try++ {
					replica := (w + i + try) % len(live)
					c := live[replica]
					var r *client.Response
					tryCall := time.Since(start).Nanoseconds()
					if in.write {
						r, err = attempt(c, http.MethodPut, group(k), map[string]any{"location": "local", "tags": map[string]string{"v": in.value}})
						if err == nil && r.Status/100 != 2 {
							err = fmt.Errorf("write: %d %s", r.Status, r.Body)
						}
					} else {
						r, err = attempt(c, http.MethodGet, group(k), nil)
						if err == nil {
							var g struct{ Tags map[string]string }
							err = json.Unmarshal(r.Body, &g)
							out.value = g.Tags["v"]
						}
					}
					if err == nil {
						break
					}
					mu.Lock()
					if in.write && !errors.Is(err, syscall.ECONNREFUSED) {
						// A write that failed other than by a refused
						// connection may still be applied: the replica
						// died after its commit, or a frozen one goes on
						// with it when it thaws. It happens at some point
						// after its call, or never (then it linearizes
						// after everything).
						history = append(history, porcupine.Operation{ClientId: w, Input: in, Call: tryCall, Output: kvOutput{}, Return: math.MaxInt64})
					}
					if replica == victim {
						onDead++
					} else {
						onLive++
						if firstFailure.IsZero() {
							firstFailure = time.Now()
						}
						lastFail = time.Now()
					}
					mu.Unlock()
					time.Sleep(100 * time.Millisecond)
				}
				mu.Lock()
				if err != nil {
					errored++
					t.Errorf("worker %d: %v after 20 attempts", w, err)
				} else {
					history = append(history, porcupine.Operation{ClientId: w, Input: in, Call: call, Output: out, Return: time.Since(start).Nanoseconds()})
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(2 * time.Second)
	// A machine of each cell dies as the fault happens: the replicas that
	// hold the cells afterwards must still judge their machines.
	dead := h.fleet.stopOnePerCell(t)
	killed := time.Now()
	moved := timeToOwn(others, len(h.fleet.fleet.Clusters), killed)
	fault(t, victimProcess)
	faultOver := time.Now()
	comesBack := phase != "kill"
	if !comesBack {
		h.live[slices.Index(h.replicas, victimProcess)] = false
	}
	<-lroDone
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()

	t.Logf("%d operations; %d attempts on the failed replica and %d on live ones failed and were retried", len(history), onDead, onLive)
	if onLive > 0 {
		t.Logf("requests to live replicas failed from %v to %v after the fault began: a window of %v", firstFailure.Sub(killed).Round(time.Millisecond),
			lastFail.Sub(killed).Round(time.Millisecond), lastFail.Sub(firstFailure).Round(time.Millisecond))
	} else {
		t.Log("no request to a live replica failed")
	}
	if errored > 0 {
		t.Errorf("%d operations failed for clients that retry", errored)
	}
	if len(history) < 100 {
		t.Fatalf("only %d operations in the history: the load did not run", len(history))
	}
	if res, info := porcupine.CheckOperationsVerbose(kvModel, history, 0); res != porcupine.Ok {
		// The visualization shows the operations no order explains.
		path := filepath.Join(t.ArtifactDir(), "history.html")
		if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
			t.Log(err)
		}
		t.Errorf("the history of writes and reads is not linearizable (%s)", path)
	}
	if comesBack {
		if r, err := attempt(live[victim], http.MethodGet, group(0), nil); err != nil || r.Status != http.StatusOK {
			t.Errorf("the replica does not serve again after the fault: %v %v", r, err)
		}
	}
	// Every long-running operation the failed replica accepted ends.
	t.Logf("%d long-running operations accepted by the replica before it failed", len(lros))
	deadline := time.Now().Add(time.Minute)
	for _, op := range lros {
		waitEnded(t, observer, op, deadline)
	}

	// The machines' silence would show as NotReady 25 s after their cell
	// changed hands: look after longer than that.
	t.Logf("the other replicas held every cell %v after the fault began", (<-moved).Round(100*time.Millisecond))
	time.Sleep(time.Until(faultOver.Add(40 * time.Second)))
	after, err := h.fleet.machines(t.Context(), observer)
	if err != nil {
		t.Fatal(err)
	}
	h.fleet.check(t, before, after, dead, acted)
	if !comesBack {
		live = others
	}
	if owned, err = cellsOwned(live); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range owned {
		total += n
	}
	t.Logf("cells owned by each live replica after the fault: %v", owned)
	if total != len(h.fleet.fleet.Clusters) {
		t.Errorf("the live replicas own %d cells, want all %d", total, len(h.fleet.fleet.Clusters))
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}
