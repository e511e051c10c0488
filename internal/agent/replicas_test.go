package agent

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentcall"
)

// TestCallFindsTheOwner: an agent sent elsewhere (421) follows to the
// replica named, one that does not answer is passed over for the next
// one known, and an answer that is a refusal is not retried.
func TestCallFindsTheOwner(t *testing.T) {
	calls := map[string]int{}
	replica := func(name string, h http.HandlerFunc) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls[name]++
			h(w, r)
		}))
		t.Cleanup(s.Close)
		return s
	}
	owner := replica("owner", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(agentapi.HeartbeatReply{DesiredRevision: 7})
	})
	other := replica("other", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMisdirectedRequest)
		json.NewEncoder(w).Encode(agentapi.Misdirected{Error: "elsewhere", Owner: owner.URL})
	})
	joining := replica("joining", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "joining", http.StatusServiceUnavailable)
	})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	a := &Agent{client: http.DefaultClient, log: slog.New(slog.DiscardHandler), replicas: newReplicas(dead.URL)}
	a.replicas.learn([]string{dead.URL, joining.URL, other.URL})
	var reply agentapi.HeartbeatReply
	if err := a.call(t.Context(), http.MethodPost, agentapi.PathHeartbeat, struct{}{}, &reply); err != nil {
		t.Fatal(err)
	}
	if reply.DesiredRevision != 7 || a.replicas.get() != owner.URL {
		t.Errorf("answered %+v by %s, want the owner %s", reply, a.replicas.get(), owner.URL)
	}
	if calls["joining"] != 1 || calls["other"] != 1 || calls["owner"] != 1 {
		t.Errorf("calls %v, want one to each replica that answers", calls)
	}
	if a.replicas.count() != 4 {
		t.Errorf("the agent knows %d replicas, want 4", a.replicas.count())
	}

	// A refusal is the answer, wherever it comes from.
	refusing := replica("refusing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "revoked", http.StatusForbidden)
	})
	a.replicas.use(refusing.URL)
	err := a.call(t.Context(), http.MethodPost, agentapi.PathHeartbeat, struct{}{}, nil)
	if agentcall.Code(err) != http.StatusForbidden || calls["refusing"] != 1 || a.replicas.get() != refusing.URL {
		t.Errorf("a refusal: %v after %d calls, now at %s", err, calls["refusing"], a.replicas.get())
	}
}

// TestCallSkipsASilentOwner: a replica that names as the owner one that
// just did not answer (it has not noticed that one failed) keeps the
// agent where it is, to try again soon, rather than back to the silent
// one.
func TestCallSkipsASilentOwner(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	calls := 0
	behind := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusMisdirectedRequest)
		json.NewEncoder(w).Encode(agentapi.Misdirected{Owner: dead.URL})
	}))
	defer behind.Close()
	a := &Agent{client: http.DefaultClient, log: slog.New(slog.DiscardHandler), replicas: newReplicas(dead.URL)}
	a.replicas.learn([]string{dead.URL, behind.URL})
	err := a.call(t.Context(), http.MethodPost, agentapi.PathHeartbeat, struct{}{}, nil)
	if agentcall.Code(err) != http.StatusMisdirectedRequest || calls != 1 || a.replicas.get() != behind.URL {
		t.Errorf("call = %v after %d calls to the replica behind, now at %s; want the 421, one call, and to stay there", err, calls, a.replicas.get())
	}
}

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		failures int
		interval time.Duration
		want     time.Duration
	}{
		{1, 10 * time.Second, time.Second},
		{2, 10 * time.Second, 2 * time.Second},
		{4, 10 * time.Second, 8 * time.Second},
		{5, 10 * time.Second, 10 * time.Second},
		{1000, 10 * time.Second, 10 * time.Second},
		{1, 500 * time.Millisecond, 500 * time.Millisecond},
	} {
		if got := retryAfter(c.failures, c.interval); got != c.want {
			t.Errorf("retryAfter(%d, %v) = %v, want %v", c.failures, c.interval, got, c.want)
		}
	}
}
