package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentcall"
)

// replicas are the agent API URLs of the control plane's replicas that
// the agent knows, and the one it talks to. It starts with the one it was
// given and learns the others from the heartbeats' answers.
type replicas struct {
	mu      sync.Mutex
	known   []string
	current string
}

func newReplicas(server string) *replicas {
	return &replicas{known: []string{server}, current: server}
}

// get is the replica the agent talks to.
func (r *replicas) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// count is how many replicas the agent knows.
func (r *replicas) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.known)
}

// use makes the agent talk to url from now on.
func (r *replicas) use(url string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = url
	if !slices.Contains(r.known, url) {
		r.known = append(r.known, url)
	}
}

// next moves the agent from failed, which did not answer, to the replica
// after it, unless it has moved already.
func (r *replicas) next(failed string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current != failed {
		return
	}
	i := slices.Index(r.known, failed)
	r.current = r.known[(i+1)%len(r.known)]
}

// learn takes the replicas a heartbeat's answer listed.
func (r *replicas) learn(urls []string) {
	if len(urls) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known = slices.Clone(urls)
	if !slices.Contains(r.known, r.current) {
		r.known = append(r.known, r.current) // answered just now
	}
}

// callTimeout bounds one attempt of a call: a replica that froze must not
// keep an agent silent for longer than a heartbeat's interval or so.
const callTimeout = 5 * time.Second

// call makes a call of the agent API on the replica the agent talks to.
// An answer naming the replica that holds the machine's liveness
// (agentapi.Misdirected) moves the agent there, unless that one did not
// answer in this call (the others do not know yet that it failed: the
// agent tries again soon), and a replica that does not answer moves it
// to the next one it knows, within the call: each known replica is
// tried once.
func (a *Agent) call(ctx context.Context, method, path string, in, out any) error {
	var err error
	var silent []string // the replicas that did not answer in this call
	for range a.replicas.count() + 1 {
		server := a.replicas.get()
		attempt, cancel := context.WithTimeout(ctx, callTimeout)
		err = do(attempt, a.client, server, method, path, in, out)
		cancel()
		if ctx.Err() != nil {
			return err
		}
		if owner := misdirectedTo(err); owner != "" && !slices.Contains(silent, owner) {
			a.log.InfoContext(ctx, "agent: moving to the replica that holds this machine's liveness", "from", server, "to", owner)
			a.replicas.use(owner)
			continue
		}
		if !unanswered(err) {
			return err
		}
		silent = append(silent, server)
		a.replicas.next(server)
	}
	return err
}

// misdirectedTo is the replica a 421 answer names, or "".
func misdirectedTo(err error) string {
	e, ok := errors.AsType[*agentcall.StatusError](err)
	if !ok || e.Code != http.StatusMisdirectedRequest {
		return ""
	}
	var m agentapi.Misdirected
	if json.Unmarshal([]byte(e.Body), &m) != nil {
		return ""
	}
	return m.Owner
}

// unanswered reports whether err is a replica not answering: no answer
// at all, or one saying it cannot serve now.
func unanswered(err error) bool {
	switch agentcall.Code(err) {
	case 0:
		return err != nil
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
