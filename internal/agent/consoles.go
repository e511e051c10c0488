package agent

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/citadel-cloud/citadel/internal/agent/host"
	"github.com/citadel-cloud/citadel/internal/agent/vm"
	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentcall"
)

// A VM's console log is read on request: the desired state counts the
// requests for it (agentapi.VM.ConsoleRequests), and the agent answers
// each new count once, uploading the tail of the log the driver keeps
// to the agent API. Nothing connects to the machine. The count answered
// is kept in memory: after a restart the agent answers the last request
// of each VM again, which the control plane ignores.

// consoleAnswers are the console requests the agent answered.
type consoleAnswers struct {
	mu       sync.Mutex     // held while answering: one upload at a time
	answered map[string]int // the request count answered, by VM ID
	retry    atomic.Bool    // an upload failed: the next heartbeat tries again
}

// answerConsoles uploads, for each VM of vms whose console request count
// is above the one answered, the tail of its console log. An upload the
// control plane refuses (the VM moved, its console was disabled) is not
// sent again; one that fails otherwise is, at the next heartbeat.
func (a *Agent) answerConsoles(ctx context.Context, c *http.Client, vms []agentapi.VM) {
	r, ok := a.cfg.Host.(host.VMRunner)
	if !ok {
		return
	}
	a.consoles.mu.Lock()
	defer a.consoles.mu.Unlock()
	if a.consoles.answered == nil {
		a.consoles.answered = map[string]int{}
	}
	listed := make(map[string]bool, len(vms))
	failed := false
	for _, v := range vms {
		listed[v.ID] = true
		if v.ConsoleRequests <= a.consoles.answered[v.ID] {
			continue
		}
		up := consoleUpload(r, v)
		err := agentcall.Do(ctx, c, a.replicas.get(), http.MethodPut, agentapi.PathConsole, up, nil)
		switch code := agentcall.Code(err); {
		case err == nil:
			a.log.InfoContext(ctx, "agent: console log sent", "vm", v.ID, "request", v.ConsoleRequests, "bytes", len(up.Log))
		case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
			a.log.WarnContext(ctx, "agent: console log refused", "vm", v.ID, "request", v.ConsoleRequests, "err", err)
		default:
			if ctx.Err() == nil {
				a.log.WarnContext(ctx, "agent: console log not sent, retrying", "vm", v.ID, "request", v.ConsoleRequests, "err", err)
			}
			failed = true
			continue
		}
		a.consoles.answered[v.ID] = v.ConsoleRequests
	}
	for id := range a.consoles.answered {
		if !listed[id] {
			delete(a.consoles.answered, id)
		}
	}
	a.consoles.retry.Store(failed)
}

// retryConsoles answers again, in the background, the console requests
// whose upload failed: a slow upload must not hold up the heartbeats.
func (a *Agent) retryConsoles(ctx context.Context, c *http.Client) {
	if !a.consoles.retry.CompareAndSwap(true, false) {
		return
	}
	a.vmMu.Lock()
	vms := a.vms
	a.vmMu.Unlock()
	go a.answerConsoles(ctx, c, vms)
}

// consoleUpload is the answer to v's last console request: the last
// ConsoleTailBytes of its log (all of it, up to agentapi.ConsoleMaxBytes,
// when the request does not say). A VM the driver does not have yet has
// an empty log.
func consoleUpload(r host.VMRunner, v agentapi.VM) agentapi.ConsoleLog {
	up := agentapi.ConsoleLog{ID: v.ID, Request: v.ConsoleRequests}
	log, err := r.Console(v.ID)
	if err != nil && !errors.Is(err, vm.ErrNotFound) {
		up.Error = err.Error()
		return up
	}
	tail := v.ConsoleTailBytes
	if tail <= 0 || tail > agentapi.ConsoleMaxBytes {
		tail = agentapi.ConsoleMaxBytes
	}
	if len(log) > tail {
		log, up.Truncated = log[len(log)-tail:], true
	}
	up.Log = log
	return up
}
