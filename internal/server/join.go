package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

// A join token admits a replica to the embedded etcd cluster, like k3s's:
// "citadel1::<SHA-256 of the HTTPS CA>::<secret>". The hash lets the
// joiner pin the cluster it talks to before it sends the secret; the
// secret, shared by every replica through the store, lets any replica
// admit it.
const joinTokenPrefix = "citadel1::"

// JoinTokenFile is where a replica on embedded etcd keeps the join token,
// under its data dir.
const JoinTokenFile = "join-token"

var joinSecrets = store.NewCollection[joinSecret]("bootstrap/join/")

type joinSecret struct {
	Secret string `json:"secret"`
}

// joinRequest is what a joining replica asks for.
type joinRequest struct {
	Name    string   `json:"name"`
	PeerURL string   `json:"peerURL"`
	Hosts   []string `json:"hosts,omitempty"` // of its client URL, for its certificate
}

// ensureJoinToken writes the cluster's join token into the data dir: the
// store's secret (made by the first replica) and the hash of the HTTPS CA
// in caFile, which every replica shares.
func ensureJoinToken(ctx context.Context, st *store.Store, dataDir, caFile string) (string, error) {
	var secret string
	for {
		it, err := joinSecrets.Get(ctx, st, "token")
		if err == nil {
			secret = it.Value.Secret
			break
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		b := make([]byte, 24)
		rand.Read(b)
		if _, err := st.Txn(ctx, joinSecrets.Create("token", joinSecret{Secret: hex.EncodeToString(b)})); err != nil && !errors.Is(err, store.ErrConflict) {
			return "", err
		}
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return "", fmt.Errorf("join token: %w", err)
	}
	hash, err := store.CAHash(caPEM)
	if err != nil {
		return "", fmt.Errorf("join token: %w", err)
	}
	token := joinTokenPrefix + hash + "::" + secret
	if err := os.WriteFile(filepath.Join(dataDir, JoinTokenFile), []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("join token: %w", err)
	}
	return token, nil
}

// parseJoinToken splits a token into the CA hash it pins and its secret.
func parseJoinToken(token string) (caHash, secret string, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), joinTokenPrefix)
	caHash, secret, ok2 := strings.Cut(rest, "::")
	if !ok || !ok2 || len(caHash) != 64 || secret == "" {
		return "", "", errors.New("--join-token is not a citadel join token (citadel1::<ca-hash>::<secret>)")
	}
	return caHash, secret, nil
}

// serveJoin serves the join API on the ARM listener: the HTTPS CA (public,
// for the joiner to compare with its token's hash) and the join itself,
// authenticated by the join token rather than an ARM token.
func (s *Server) serveJoin(mux *http.ServeMux, caFile, token string, log *slog.Logger) {
	mux.HandleFunc("GET /citadel/cluster/ca", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, caFile)
	})
	mux.HandleFunc("POST /citadel/cluster/join", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		got, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !bearer || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			log.WarnContext(ctx, "join refused: bad token", "remote", r.RemoteAddr)
			http.Error(w, "join token refused", http.StatusUnauthorized)
			return
		}
		var req joinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "bad join request", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		grant, err := s.Store.AddMember(ctx, req.Name, req.PeerURL, req.Hosts)
		if err != nil {
			log.ErrorContext(ctx, "join failed", "member", req.Name, "peer_url", req.PeerURL, "err", err)
			http.Error(w, "join failed: the replica could not add the member (its log says why)", http.StatusConflict)
			return
		}
		log.InfoContext(ctx, "replica joined", "member", req.Name, "peer_url", req.PeerURL, "remote", r.RemoteAddr)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(grant)
	})
}

// joinCluster asks the replica at cfg.Join to admit this one's etcd
// member, pinning its HTTPS CA by the token's hash, and returns the grant
// and the member's settings.
func joinCluster(ctx context.Context, cfg Config, log *slog.Logger) (store.Member, error) {
	m := etcdMember(cfg)
	caHash, _, err := parseJoinToken(cfg.JoinToken)
	if err != nil {
		return m, err
	}
	if m.PeerListen == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return m, fmt.Errorf("join: find a free port: %w", err)
		}
		m.PeerListen = l.Addr().String()
		l.Close()
	}
	peerURL := m.AdvertisePeer
	if peerURL == "" {
		host, port, _ := net.SplitHostPort(m.PeerListen)
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			return m, errors.New("--etcd-advertise-peer is required with a wildcard --etcd-peer-listen")
		}
		peerURL = "https://" + net.JoinHostPort(host, port)
	}
	req := joinRequest{Name: m.Name, PeerURL: peerURL}
	if req.Name == "" {
		host, _ := os.Hostname()
		b := make([]byte, 3)
		rand.Read(b)
		req.Name = strings.ToLower(cmp.Or(host, "citadel")) + "-" + hex.EncodeToString(b)
	}
	if u, err := url.Parse(m.AdvertiseClient); err == nil && u.Hostname() != "" {
		req.Hosts = []string{u.Hostname()}
	}
	base := strings.TrimSuffix(cfg.Join, "/")

	// The CA first, over a connection not yet verified: the token's hash
	// decides whether it is the cluster's.
	insecure := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	caPEM, err := fetch(ctx, insecure, http.MethodGet, base+"/citadel/cluster/ca", "", nil)
	if err != nil {
		return m, fmt.Errorf("join %s: %w", base, err)
	}
	if got, err := store.CAHash(caPEM); err != nil || hashDiffers(got, caHash) {
		if err == nil {
			err = errors.New("its CA is not the one the join token names")
		}
		return m, fmt.Errorf("join %s: %w", base, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	pinned := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	body, err := json.Marshal(req)
	if err != nil {
		return m, err
	}
	resp, err := fetch(ctx, pinned, http.MethodPost, base+"/citadel/cluster/join", strings.TrimSpace(cfg.JoinToken), body)
	if err != nil {
		return m, fmt.Errorf("join %s: %w", base, err)
	}
	var grant store.Grant
	if err := json.Unmarshal(resp, &grant); err != nil {
		return m, fmt.Errorf("join %s: %w", base, err)
	}
	log.InfoContext(ctx, "admitted to the cluster", "member", grant.Name, "peer_url", peerURL, "via", base)
	m.Join = &grant
	return m, nil
}

// hashDiffers reports whether two hex hashes differ, in constant time.
func hashDiffers(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(a)), []byte(strings.ToLower(b))) != 1
}

func fetch(ctx context.Context, c *http.Client, method, u, token string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// etcdMember is the embedded etcd member the flags describe.
func etcdMember(cfg Config) store.Member {
	return store.Member{Name: cfg.EtcdName, PeerListen: cfg.EtcdPeerListen, ClientListen: cfg.EtcdClientListen,
		AdvertisePeer: cfg.EtcdAdvertisePeer, AdvertiseClient: cfg.EtcdAdvertiseClient}
}
