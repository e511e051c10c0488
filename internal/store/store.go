// Package store is Citadel's state: typed keys over etcd, revisions for
// optimistic concurrency, multi-key transactions, watches and leader
// election. It is the only package that imports etcd. By default it runs an
// embedded etcd member under the data directory, over TLS from an etcd CA
// of its own, which other replicas' members can join (AddMember) to make
// a highly available cluster; with endpoints it talks to an external etcd
// cluster instead.
package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// ErrNotFound is returned by Get for a key that does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned by Txn when a key's revision is not the one an
// operation was guarded by: somebody else wrote it first.
var ErrConflict = errors.New("store: conflict")

// ErrFenced is the error of a write made as the leader of an election
// (with the context Lead gave) after this replica stopped leading it, or
// as a member of a roster (with the context Attend gave) after its
// presence lapsed: another replica may lead, or own what it owned, now.
// It must not be retried.
var ErrFenced = errors.New("store: fenced off")

// Config says where the state lives.
type Config struct {
	// Dir holds the embedded etcd's data. Used when Endpoints is empty.
	Dir string
	// Endpoints of an external etcd cluster; empty means embedded.
	Endpoints []string
	// TLS for the external cluster; nil means plain connections.
	TLS *tls.Config
	// Member is the embedded etcd member's name, addresses and, to join
	// an existing cluster, its grant.
	Member Member
	// Prefix is put before every key, so that several Citadels (or tests)
	// can share one etcd cluster.
	Prefix string
	Logger *slog.Logger
}

// Store is a handle on the state. It is safe for concurrent use.
type Store struct {
	client *clientv3.Client
	etcd   *embed.Etcd // nil for an external cluster
	dir    string      // the embedded etcd's directory
	prefix string
	log    *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// KV is one key with its value and the revision at which it was last written.
type KV struct {
	Key      string // without the store's prefix
	Value    []byte
	Revision int64 // when the key was last written
	Created  int64 // when the key was created
}

// Open starts the embedded etcd (or connects to the external cluster) and
// returns once the store answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Store{prefix: cfg.Prefix, log: log.With("component", "store")}
	if len(cfg.Endpoints) > 0 {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   cfg.Endpoints,
			TLS:         cfg.TLS,
			DialTimeout: 5 * time.Second,
			Context:     context.WithoutCancel(ctx),
			Logger:      zap.NewNop(), // its retries are noise; failures reach us as errors
		})
		if err != nil {
			return nil, fmt.Errorf("store: connect %v: %w", cfg.Endpoints, err)
		}
		s.client = c
	} else {
		e, err := startEmbedded(cfg.Dir, cfg.Member)
		if err != nil {
			return nil, err
		}
		// The replica reaches its own member in process: no round trip
		// through TLS on loopback for every store call. Other members
		// and tools (citadel store) reach it over TLS.
		s.etcd, s.dir = e, cfg.Dir
		s.client = v3client.New(e.Server)
		if err := s.advertisePeer(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	// One round trip proves the store answers before anyone relies on it.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.client.Get(ctx, s.prefix+"\x00ping"); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: first read: %w", err)
	}
	return s, nil
}

// startEmbedded starts this replica's etcd member over TLS, and records
// its client endpoint in its member file for the tools.
func startEmbedded(dir string, m Member) (*embed.Etcd, error) {
	if dir == "" {
		return nil, errors.New("store: no data directory for embedded etcd")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	mf, peerListen, clientListen, existing, err := memberConfig(dir, m)
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "member-data")
	cfg.Name = mf.Name
	// etcd logs at error level when it is closed normally; its real
	// failures reach us as errors from the client.
	cfg.LogLevel = "fatal"
	peer, _ := url.Parse(mf.PeerURL)
	client, _ := url.Parse(mf.ClientURL)
	cfg.ListenPeerUrls = []url.URL{peerListen}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.ListenClientUrls = []url.URL{clientListen}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ClientTLSInfo = memberTLS(dir)
	cfg.PeerTLSInfo = memberTLS(dir)
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	if existing {
		cfg.InitialCluster = m.Join.InitialCluster
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	// Keep an hour of history so that watchers can resume; compaction
	// bounds the store's growth.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	cfg.QuotaBackendBytes = quotaBytes
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: start embedded etcd in %s: %w", dir, err)
	}
	// The client connects to the listener's own address (loopback for a
	// wildcard): an advertised name may not resolve to this machine.
	addr := e.Clients[0].Addr().(*net.TCPAddr)
	if addr.IP.IsUnspecified() {
		addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: addr.Port}
	}
	endpoint := "https://" + addr.String()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("store: embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("store: embedded etcd not ready after 60s (a member of a cluster waits for quorum)")
	}
	mf.ClientURL = endpoint
	if err := writeMemberFile(dir, mf); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// quotaBytes is how much the embedded etcd may hold: past it etcd raises
// its NOSPACE alarm and refuses writes until space is freed.
const quotaBytes = 8 << 30

// Usage is how much space the store takes, as etcd last measured it (at
// its last commit; on a fresh store InUse can exceed Size).
type Usage struct {
	Size  int64 // the database file
	InUse int64 // the part that holds data; the rest is pages compaction freed, reused before the file grows
	Quota int64 // past which etcd refuses writes; 0 when not known (an external cluster's own setting)
}

// Usage reports the store's size: the embedded member's, or that of the
// external cluster's member this client reaches first.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	if s.etcd != nil {
		b := s.etcd.Server.Backend()
		return Usage{Size: b.Size(), InUse: b.SizeInUse(), Quota: quotaBytes}, nil
	}
	endpoints := s.client.Endpoints()
	if len(endpoints) == 0 {
		return Usage{}, errors.New("store: no etcd endpoint")
	}
	st, err := s.client.Status(ctx, endpoints[0])
	if err != nil {
		return Usage{}, fmt.Errorf("store: status of %s: %w", endpoints[0], err)
	}
	return Usage{Size: st.DbSize, InUse: st.DbSizeInUse}, nil
}

// ClientURL is the address of the embedded etcd's client listener, for
// tools that talk to it as an ordinary etcd client would (benchmarks,
// etcdctl) with ClientTLS; empty for an external cluster.
func (s *Store) ClientURL() string {
	if s.etcd == nil || len(s.etcd.Clients) == 0 {
		return ""
	}
	return "https://" + s.etcd.Clients[0].Addr().String()
}

// Close releases the client and stops the embedded etcd. Calling it
// again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.client.Close()
		if s.etcd != nil {
			s.etcd.Close()
		}
	})
	return s.closeErr
}

// Get reads one key.
func (s *Store) Get(ctx context.Context, key string) (KV, error) {
	resp, err := s.client.Get(ctx, s.prefix+key)
	if err != nil {
		return KV{}, fmt.Errorf("store: get %q: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, ErrNotFound
	}
	kv := resp.Kvs[0]
	return KV{Key: key, Value: kv.Value, Revision: kv.ModRevision, Created: kv.CreateRevision}, nil
}

// Page is one page of a List.
type Page struct {
	KVs []KV
	// More says that keys beyond the last one returned remain.
	More bool
}

// List reads keys under prefix in key order, starting after the key
// `after` (empty: from the start), at most limit of them (0: all).
func (s *Store) List(ctx context.Context, prefix, after string, limit int) (Page, error) {
	start := s.prefix + prefix
	if after != "" && after >= prefix { // an after outside the prefix must not widen the range
		start = s.prefix + after + "\x00"
	}
	end := clientv3.GetPrefixRangeEnd(s.prefix + prefix)
	if start == "" {
		start = "\x00" // the whole keyspace: etcd takes no empty key
	}
	opts := []clientv3.OpOption{clientv3.WithRange(end)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.client.Get(ctx, start, opts...)
	if err != nil {
		return Page{}, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	page := Page{KVs: make([]KV, len(resp.Kvs)), More: resp.More}
	for i, kv := range resp.Kvs {
		page.KVs[i] = KV{Key: string(kv.Key[len(s.prefix):]), Value: kv.Value, Revision: kv.ModRevision, Created: kv.CreateRevision}
	}
	return page, nil
}

// Op is one write in a transaction, with the condition that guards it.
type Op struct {
	key    string
	value  []byte
	delete bool
	prefix bool  // delete every key under key
	check  bool  // a condition only, no write
	rev    int64 // condition on the key's revision; see guard
	guard  guard
}

type guard int

const (
	always       guard = iota
	absent             // the key must not exist
	atRevision         // the key must exist at rev
	notChangedBy       // rev 0: must not exist; otherwise must be at rev
)

// Put writes key unconditionally.
func Put(key string, value []byte) Op { return Op{key: key, value: value} }

// Create writes key only if it does not exist yet.
func Create(key string, value []byte) Op { return Op{key: key, value: value, guard: absent} }

// Update writes key only if it is still at revision rev; rev 0 means the
// key must not exist (so a read of a missing key followed by Update is a
// compare-and-swap too).
func Update(key string, value []byte, rev int64) Op {
	return Op{key: key, value: value, rev: rev, guard: notChangedBy}
}

// Delete removes key unconditionally.
func Delete(key string) Op { return Op{key: key, delete: true} }

// DeleteAt removes key only if it is still at revision rev.
func DeleteAt(key string, rev int64) Op {
	return Op{key: key, delete: true, rev: rev, guard: atRevision}
}

// DeletePrefix removes every key under prefix.
func DeletePrefix(prefix string) Op { return Op{key: prefix, delete: true, prefix: true} }

// Txn commits ops atomically: all or none. It returns ErrConflict when any
// guard fails, and the revision of the commit otherwise.
func (s *Store) Txn(ctx context.Context, ops ...Op) (int64, error) {
	var cmps []clientv3.Cmp
	var writes []clientv3.Op
	for _, op := range ops {
		k := s.prefix + op.key
		switch op.guard {
		case absent:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		case atRevision, notChangedBy:
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", op.rev))
		}
		switch {
		case op.check:
		case op.delete && op.prefix:
			writes = append(writes, clientv3.OpDelete(k, clientv3.WithPrefix()))
		case op.delete:
			writes = append(writes, clientv3.OpDelete(k))
		default:
			writes = append(writes, clientv3.OpPut(k, string(op.value)))
		}
	}
	f, fenced := ctx.Value(fenceKey{}).(fence)
	if fenced {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev))
	}
	resp, err := s.client.Txn(ctx).If(cmps...).Then(writes...).Commit()
	if err != nil {
		return 0, fmt.Errorf("store: txn: %w", err)
	}
	if !resp.Succeeded {
		if fenced && !s.leads(ctx, f) {
			return 0, fmt.Errorf("%w: %s", ErrFenced, f.holder)
		}
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

// Revision returns the store's current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, s.prefix+"\x00rev")
	if err != nil {
		return 0, fmt.Errorf("store: revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// Unchanged writes nothing but makes the transaction fail unless key is
// still at revision rev: a read that the transaction depends on.
func Unchanged(key string, rev int64) Op {
	return Op{key: key, rev: rev, guard: atRevision, check: true}
}

// LastCreated returns the latest revision at which a key now under prefix
// was created after revision after and (when upTo > 0) no later than upTo,
// or 0 when none was. It reads etcd's index only, not the values.
func (s *Store) LastCreated(ctx context.Context, prefix string, after, upTo int64) (int64, error) {
	resp, err := s.createdKeys(ctx, prefix, after, upTo,
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil || len(resp.Kvs) == 0 {
		return 0, err
	}
	return resp.Kvs[0].CreateRevision, nil
}

// Created reads the keys under prefix created after revision after and
// (when upTo > 0) no later than upTo, at most limit of them (0: all), in
// key order. Keys rewritten since do not count as new.
func (s *Store) Created(ctx context.Context, prefix string, after, upTo int64, limit int) ([]KV, error) {
	var opts []clientv3.OpOption
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.createdKeys(ctx, prefix, after, upTo, opts...)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		keys[i] = string(kv.Key[len(s.prefix):])
	}
	values, err := s.GetMany(ctx, keys, resp.Header.Revision)
	if err != nil {
		return nil, err
	}
	out := make([]KV, 0, len(keys))
	for _, k := range keys {
		if kv, ok := values[k]; ok {
			out = append(out, kv)
		}
	}
	return out, nil
}

// createdKeys ranges over the keys under prefix created after revision
// after and (when upTo > 0) no later than upTo, without their values: etcd
// filters by creation only after reading the whole range, so a range that
// reads values reads every value under prefix.
func (s *Store) createdKeys(ctx context.Context, prefix string, after, upTo int64, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	opts = append(opts, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithMinCreateRev(after+1))
	if upTo > 0 {
		opts = append(opts, clientv3.WithMaxCreateRev(upTo))
	}
	resp, err := s.client.Get(ctx, s.prefix+prefix, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: keys created under %q: %w", prefix, err)
	}
	return resp, nil
}

// GetMany reads keys, as many per transaction as etcd takes, all at
// revision rev (0: the revision the first transaction reads at). Keys that
// do not exist are not in the map.
func (s *Store) GetMany(ctx context.Context, keys []string, rev int64) (map[string]KV, error) {
	out := make(map[string]KV, len(keys))
	for chunk := range slices.Chunk(keys, MaxTxnOps) {
		var opts []clientv3.OpOption
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		gets := make([]clientv3.Op, len(chunk))
		for i, k := range chunk {
			gets[i] = clientv3.OpGet(s.prefix+k, opts...)
		}
		resp, err := s.client.Txn(ctx).Then(gets...).Commit()
		if err != nil {
			return nil, fmt.Errorf("store: get %d keys: %w", len(keys), err)
		}
		rev = resp.Header.Revision
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				k := string(kv.Key[len(s.prefix):])
				out[k] = KV{Key: k, Value: kv.Value, Revision: kv.ModRevision, Created: kv.CreateRevision}
			}
		}
	}
	return out, nil
}

// MaxTxnOps is etcd's default limit on the operations of one transaction:
// etcd refuses a transaction with more.
const MaxTxnOps = 128

// memberName is the embedded etcd's member name.
const memberName = "citadel"
