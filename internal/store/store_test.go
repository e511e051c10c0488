package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

// put writes key/value pairs, a transaction at a time, and returns the
// revision of the last commit.
func put(t testing.TB, s *store.Store, kv ...string) int64 {
	t.Helper()
	var rev int64
	for len(kv) > 0 {
		n := min(len(kv), 2*100) // etcd allows 128 operations per transaction
		var ops []store.Op
		for i := 0; i < n; i += 2 {
			ops = append(ops, store.Put(kv[i], []byte(kv[i+1])))
		}
		r, err := s.Txn(t.Context(), ops...)
		if err != nil {
			t.Fatalf("Txn(put %d keys) = %v", n/2, err)
		}
		rev = r
		kv = kv[n:]
	}
	return rev
}

// contents reads every key under prefix as key → value.
func contents(t testing.TB, s *store.Store, prefix string) map[string]string {
	t.Helper()
	page, err := s.List(t.Context(), prefix, "", 0)
	if err != nil {
		t.Fatalf("List(%q) = %v", prefix, err)
	}
	m := map[string]string{}
	for _, kv := range page.KVs {
		m[kv.Key] = string(kv.Value)
	}
	return m
}

func keys(kvs []store.KV) []string {
	ks := []string{}
	for _, kv := range kvs {
		ks = append(ks, kv.Key)
	}
	return ks
}

func TestOpenWithoutDirOrEndpoints(t *testing.T) {
	s, err := store.Open(t.Context(), store.Config{})
	if err == nil {
		s.Close()
		t.Fatalf("Open(Config{}) = nil error, want an error for the missing data directory")
	}
}

func TestGetList(t *testing.T) {
	s := storetest.Start(t)
	ctx := t.Context()

	t.Run("get", func(t *testing.T) {
		if kv, err := s.Get(ctx, "get/missing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(missing) = %v, %v, want ErrNotFound", kv, err)
		}
		rev := put(t, s, "get/k", "v")
		kv, err := s.Get(ctx, "get/k")
		if err != nil {
			t.Fatalf("Get(get/k) = %v", err)
		}
		want := store.KV{Key: "get/k", Value: []byte("v"), Revision: rev}
		if diff := cmp.Diff(want, kv, ignoreCreated); diff != "" {
			t.Errorf("Get(get/k) mismatch (-want +got):\n%s", diff)
		}
		// A key is not a prefix: Get does not find keys below it.
		if kv, err := s.Get(ctx, "get/"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(get/) = %v, %v, want ErrNotFound", kv, err)
		}
	})

	// Keys around the prefix "l/a/": "l/a." sorts just before it ('.' <
	// '/'), "l/a0" just after its range end ('/'+1 == '0').
	put(t, s,
		"l/a", "x", "l/a.", "x", "l/a0", "x", "l/a/", "x",
		"l/a/1", "1", "l/a/10", "10", "l/a/2", "2", "l/a/2/x", "2x",
		"l/b/1", "b1", "l/b0", "x",
	)
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
		more          bool
	}{
		{prefix: "l/a/", want: []string{"l/a/", "l/a/1", "l/a/10", "l/a/2", "l/a/2/x"}},
		{prefix: "l/a/", limit: 2, want: []string{"l/a/", "l/a/1"}, more: true},
		{prefix: "l/a/", limit: 5, want: []string{"l/a/", "l/a/1", "l/a/10", "l/a/2", "l/a/2/x"}},
		{prefix: "l/a/", after: "l/a/1", want: []string{"l/a/10", "l/a/2", "l/a/2/x"}},
		{prefix: "l/a/", after: "l/a/1", limit: 1, want: []string{"l/a/10"}, more: true},
		{prefix: "l/a/", after: "l/a/2", want: []string{"l/a/2/x"}},
		{prefix: "l/a/", after: "l/a/2/x", want: []string{}},
		// An after that is not itself a key still works.
		{prefix: "l/a/", after: "l/a/15", want: []string{"l/a/2", "l/a/2/x"}},
		// "after the key l/a/" excludes the key l/a/ itself.
		{prefix: "l/a/", after: "l/a/", want: []string{"l/a/1", "l/a/10", "l/a/2", "l/a/2/x"}},
		// An after before the prefix must not widen the range.
		{prefix: "l/a/", after: "l/a", want: []string{"l/a/", "l/a/1", "l/a/10", "l/a/2", "l/a/2/x"}},
		{prefix: "l/a/", after: "l/a.", want: []string{"l/a/", "l/a/1", "l/a/10", "l/a/2", "l/a/2/x"}},
		{prefix: "l/b/", after: "l/a/1", want: []string{"l/b/1"}},
		{prefix: "l/b/", after: "0", limit: 1, want: []string{"l/b/1"}},
		// An after beyond the prefix's range yields nothing.
		{prefix: "l/a/", after: "l/a0", want: []string{}},
		{prefix: "l/a/", after: "l/b/", want: []string{}},
		{prefix: "l/a/", after: "z", want: []string{}},
		{prefix: "l/c/", want: []string{}},
		{prefix: "l/b", want: []string{"l/b/1", "l/b0"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s after %q limit %d", tt.prefix, tt.after, tt.limit), func(t *testing.T) {
			page, err := s.List(ctx, tt.prefix, tt.after, tt.limit)
			if err != nil {
				t.Fatalf("List(%q, %q, %d) = %v", tt.prefix, tt.after, tt.limit, err)
			}
			if got := keys(page.KVs); !cmp.Equal(got, tt.want) || page.More != tt.more {
				t.Errorf("List(%q, %q, %d) = %q, More %v, want %q, More %v", tt.prefix, tt.after, tt.limit, got, page.More, tt.want, tt.more)
			}
		})
	}

	t.Run("empty prefix lists the whole store", func(t *testing.T) {
		page, err := s.List(ctx, "", "", 0)
		if err != nil {
			t.Fatalf("List(\"\", \"\", 0) = %v, want every key", err)
		}
		got := keys(page.KVs)
		if !slices.IsSorted(got) {
			t.Errorf("List(\"\", \"\", 0) = %q, want key order", got)
		}
		for _, k := range []string{"get/k", "l/a", "l/a/2/x", "l/b0"} {
			if !slices.Contains(got, k) {
				t.Errorf("List(\"\", \"\", 0) = %q, want it to contain %q", got, k)
			}
		}
		// With an after, the empty prefix works.
		page, err = s.List(ctx, "", "l/b/1", 0)
		if err != nil || !cmp.Equal(keys(page.KVs), []string{"l/b0"}) {
			t.Errorf("List(\"\", \"l/b/1\", 0) = %q, %v, want [\"l/b0\"]", keys(page.KVs), err)
		}
	})

	t.Run("values and revisions", func(t *testing.T) {
		rev := put(t, s, "v/k", "new")
		page, err := s.List(ctx, "v/", "", 0)
		if err != nil {
			t.Fatalf("List(v/) = %v", err)
		}
		want := []store.KV{{Key: "v/k", Value: []byte("new"), Revision: rev}}
		if diff := cmp.Diff(want, page.KVs, ignoreCreated); diff != "" {
			t.Errorf("List(v/) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("paging", func(t *testing.T) {
		const n = 2500
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf("p/%05d", i), fmt.Sprint(i))
		}
		// Neighbours of the prefix that paging must never reach.
		kv = append(kv, "p.", "x", "p0", "x", "p", "x")
		put(t, s, kv...)

		seen := map[string]int{}
		var mores []bool
		after := ""
		for range 10 {
			page, err := s.List(ctx, "p/", after, 1000)
			if err != nil {
				t.Fatalf("List(p/, %q, 1000) = %v", after, err)
			}
			mores = append(mores, page.More)
			for _, kv := range page.KVs {
				seen[kv.Key]++
				after = kv.Key
			}
			if !page.More {
				break
			}
		}
		if want := []bool{true, true, false}; !cmp.Equal(mores, want) {
			t.Errorf("List(p/) pages' More = %v, want %v", mores, want)
		}
		if len(seen) != n {
			t.Errorf("paging saw %d distinct keys, want %d", len(seen), n)
		}
		for i := range n {
			if k := fmt.Sprintf("p/%05d", i); seen[k] != 1 {
				t.Errorf("paging saw %s %d times, want once", k, seen[k])
			}
		}
		for _, k := range []string{"p.", "p0", "p"} {
			if seen[k] != 0 {
				t.Errorf("paging saw %q outside the prefix", k)
			}
		}
	})
}

func TestTxn(t *testing.T) {
	s := storetest.Start(t)
	ctx := t.Context()

	// Each case gets a fresh key prefix p. setup's transactions run in
	// order; ops gets their revisions.
	tests := []struct {
		name    string
		setup   func(p string) [][]store.Op
		ops     func(p string, revs []int64) []store.Op
		wantErr error
		want    map[string]string // keys under p (without p) afterwards
	}{
		{
			name: "put creates",
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Put(p+"k", []byte("v"))}
			},
			want: map[string]string{"k": "v"},
		},
		{
			name: "put overwrites",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("old"))}}
			},
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Put(p+"k", []byte("new"))}
			},
			want: map[string]string{"k": "new"},
		},
		{
			name: "create absent",
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Create(p+"k", []byte("v"))}
			},
			want: map[string]string{"k": "v"},
		},
		{
			name: "create after delete",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("old"))}, {store.Delete(p + "k")}}
			},
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Create(p+"k", []byte("v"))}
			},
			want: map[string]string{"k": "v"},
		},
		{
			name: "create existing conflicts and writes nothing",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("old")), store.Put(p+"d", []byte("keep"))}}
			},
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{
					store.Put(p+"other", []byte("x")),
					store.Create(p+"k", []byte("new")),
					store.Delete(p + "d"),
				}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{"k": "old", "d": "keep"},
		},
		{
			name: "update at current revision",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("v1"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Update(p+"k", []byte("v2"), revs[0])}
			},
			want: map[string]string{"k": "v2"},
		},
		{
			name: "update at stale revision conflicts",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("v1"))}, {store.Put(p+"k", []byte("v2"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Update(p+"k", []byte("v3"), revs[0]), store.Put(p+"other", []byte("x"))}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{"k": "v2"},
		},
		{
			name: "update at revision of another key conflicts",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("v1"))}, {store.Put(p+"j", []byte("j"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Update(p+"k", []byte("v2"), revs[1])}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{"k": "v1", "j": "j"},
		},
		{
			name: "update at 0 of absent key",
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Update(p+"k", []byte("v"), 0)}
			},
			want: map[string]string{"k": "v"},
		},
		{
			name: "update at 0 of deleted key",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("old"))}, {store.Delete(p + "k")}}
			},
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Update(p+"k", []byte("v"), 0)}
			},
			want: map[string]string{"k": "v"},
		},
		{
			name: "update at 0 of present key conflicts",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("old"))}}
			},
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Update(p+"k", []byte("v"), 0)}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{"k": "old"},
		},
		{
			name: "update at a revision of deleted key conflicts",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("old"))}, {store.Delete(p + "k")}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Update(p+"k", []byte("v"), revs[0])}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{},
		},
		{
			name: "delete",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("v")), store.Put(p+"j", []byte("j"))}}
			},
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Delete(p + "k")}
			},
			want: map[string]string{"j": "j"},
		},
		{
			name: "delete absent",
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Delete(p + "k")}
			},
			want: map[string]string{},
		},
		{
			name: "delete at current revision",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("v"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.DeleteAt(p+"k", revs[0])}
			},
			want: map[string]string{},
		},
		{
			name: "delete at wrong revision conflicts",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("v1"))}, {store.Put(p+"k", []byte("v2"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.DeleteAt(p+"k", revs[0]), store.Put(p+"other", []byte("x"))}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{"k": "v2"},
		},
		{
			name: "unchanged holds",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"g", []byte("g"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Unchanged(p+"g", revs[0]), store.Put(p+"w", []byte("w"))}
			},
			want: map[string]string{"g": "g", "w": "w"},
		},
		{
			name: "unchanged of absent key at 0 holds",
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.Unchanged(p+"g", 0), store.Put(p+"w", []byte("w"))}
			},
			want: map[string]string{"w": "w"},
		},
		{
			name: "unchanged fails when the key changed",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"g", []byte("g1"))}, {store.Put(p+"g", []byte("g2"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Unchanged(p+"g", revs[0]), store.Put(p+"w", []byte("w")), store.Delete(p + "g")}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{"g": "g2"},
		},
		{
			name: "unchanged fails when the key was deleted",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"g", []byte("g1"))}, {store.Delete(p + "g")}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Unchanged(p+"g", revs[0]), store.Put(p+"w", []byte("w"))}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{},
		},
		{
			name: "unchanged fails when the key was recreated",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"g", []byte("g1"))}, {store.Delete(p + "g")}, {store.Put(p+"g", []byte("g1"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Unchanged(p+"g", revs[0]), store.Put(p+"w", []byte("w"))}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{"g": "g1"},
		},
		{
			name: "unchanged and update of one key",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"k", []byte("v1"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Unchanged(p+"k", revs[0]), store.Update(p+"k", []byte("v2"), revs[0])}
			},
			want: map[string]string{"k": "v2"},
		},
		{
			name: "unchanged alone writes nothing",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"g", []byte("g"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{store.Unchanged(p+"g", revs[0])}
			},
			want: map[string]string{"g": "g"},
		},
		{
			name: "delete prefix removes exactly the prefix",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{
					store.Put(p+"d/", []byte("x")), store.Put(p+"d/1", []byte("x")), store.Put(p+"d/2/3", []byte("x")),
					store.Put(p+"d", []byte("keep")), store.Put(p+"d.", []byte("keep")), store.Put(p+"d0", []byte("keep")),
					store.Put(p+"e/1", []byte("keep")),
				}}
			},
			ops: func(p string, _ []int64) []store.Op {
				return []store.Op{store.DeletePrefix(p + "d/")}
			},
			want: map[string]string{"d": "keep", "d.": "keep", "d0": "keep", "e/1": "keep"},
		},
		{
			name: "several guards all hold",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"a", []byte("a1"))}, {store.Put(p+"b", []byte("b1"))}, {store.Put(p+"c", []byte("c1"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{
					store.Update(p+"a", []byte("a2"), revs[0]),
					store.DeleteAt(p+"b", revs[1]),
					store.Unchanged(p+"c", revs[2]),
					store.Create(p+"d", []byte("d1")),
					store.Put(p+"e", []byte("e1")),
				}
			},
			want: map[string]string{"a": "a2", "c": "c1", "d": "d1", "e": "e1"},
		},
		{
			name: "one failing guard of several applies nothing",
			setup: func(p string) [][]store.Op {
				return [][]store.Op{{store.Put(p+"a", []byte("a1"))}, {store.Put(p+"b", []byte("b1"))}, {store.Put(p+"c", []byte("c1"))}}
			},
			ops: func(p string, revs []int64) []store.Op {
				return []store.Op{
					store.Update(p+"a", []byte("a2"), revs[0]),
					store.DeleteAt(p+"b", revs[1]),
					store.Unchanged(p+"c", revs[0]), // wrong
					store.Create(p+"d", []byte("d1")),
				}
			},
			wantErr: store.ErrConflict,
			want:    map[string]string{"a": "a1", "b": "b1", "c": "c1"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fmt.Sprintf("txn/%02d/", i)
			var revs []int64
			if tt.setup != nil {
				for _, ops := range tt.setup(p) {
					rev, err := s.Txn(ctx, ops...)
					if err != nil {
						t.Fatalf("setup: Txn = %v", err)
					}
					revs = append(revs, rev)
				}
			}
			before, err := s.Revision(ctx)
			if err != nil {
				t.Fatalf("Revision() = %v", err)
			}
			ops := tt.ops(p, revs)
			rev, err := s.Txn(ctx, ops...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Txn(%v) = %d, %v, want %v", ops, rev, err, tt.wantErr)
			}
			if err == nil && rev < before {
				t.Errorf("Txn(%v) = %d, want at least the revision before it, %d", ops, rev, before)
			}
			got := map[string]string{}
			for k, v := range contents(t, s, p) {
				got[k[len(p):]] = v
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("after Txn(%v) = %d, %v: keys mismatch (-want +got):\n%s", ops, rev, err, diff)
			}
			if tt.wantErr != nil {
				if after, err := s.Revision(ctx); err != nil || after != before {
					t.Errorf("Revision() after failed Txn = %d, %v, want %d (unchanged)", after, err, before)
				}
			}
		})
	}

	t.Run("revisions increase", func(t *testing.T) {
		var last int64
		for i := range 5 {
			rev, err := s.Txn(ctx, store.Put("rev/k", []byte(fmt.Sprint(i))))
			if err != nil {
				t.Fatalf("Txn(put rev/k) = %v", err)
			}
			if rev <= last {
				t.Errorf("Txn #%d = revision %d, want more than %d", i, rev, last)
			}
			last = rev
			if cur, err := s.Revision(ctx); err != nil || cur != rev {
				t.Errorf("Revision() = %d, %v, want %d", cur, err, rev)
			}
			if kv, err := s.Get(ctx, "rev/k"); err != nil || kv.Revision != rev {
				t.Errorf("Get(rev/k) = %v, %v, want revision %d", kv, err, rev)
			}
		}
	})

	t.Run("conflict returns no revision", func(t *testing.T) {
		put(t, s, "c/k", "v")
		if rev, err := s.Txn(ctx, store.Create("c/k", []byte("v"))); !errors.Is(err, store.ErrConflict) || rev != 0 {
			t.Errorf("Txn(create existing) = %d, %v, want 0, ErrConflict", rev, err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Txn(ctx, store.Put("cancelled/k", []byte("v")))
		if err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("Txn(cancelled ctx) = %v, want a context error", err)
		}
	})
}

func BenchmarkTxnPut(b *testing.B) {
	s := storetest.Start(b)
	ctx := b.Context()
	value := []byte(`{"name":"vm","cpus":4,"memory":8192}`)
	for b.Loop() {
		if _, err := s.Txn(ctx, store.Put("bench/k", value)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTxnUpdate(b *testing.B) {
	s := storetest.Start(b)
	ctx := b.Context()
	value := []byte(`{"name":"vm","cpus":4,"memory":8192}`)
	var rev int64
	for b.Loop() {
		r, err := s.Txn(ctx, store.Update("bench/k", value, rev))
		if err != nil {
			b.Fatal(err)
		}
		rev = r
	}
}

func BenchmarkGet(b *testing.B) {
	s := storetest.Start(b)
	ctx := b.Context()
	if _, err := s.Txn(ctx, store.Put("bench/k", []byte(`{"name":"vm"}`))); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "bench/k"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// ignoreCreated leaves KV.Created out of comparisons; TestCreated checks it.
var ignoreCreated = cmpopts.IgnoreFields(store.KV{}, "Created")

func TestCreated(t *testing.T) {
	s := storetest.Start(t)
	ctx := t.Context()
	first, err := s.Txn(ctx, store.Put("c/a", []byte("1")))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Txn(ctx, store.Put("c/b", []byte("1")))
	if err != nil {
		t.Fatal(err)
	}
	rewritten, err := s.Txn(ctx, store.Put("c/a", []byte("2"))) // a rewrite is not a creation
	if err != nil {
		t.Fatal(err)
	}
	kv, err := s.Get(ctx, "c/a")
	if err != nil || kv.Created != first || kv.Revision != rewritten {
		t.Fatalf("Get(c/a) = %+v, %v; want created at %d, last written at %d", kv, err, first, rewritten)
	}
	for _, tt := range []struct {
		after, upTo int64
		want        []string
	}{
		{0, 0, []string{"c/a", "c/b"}},
		{first, 0, []string{"c/b"}},
		{second, 0, nil},
		{0, first, []string{"c/a"}},
	} {
		got, err := s.Created(ctx, "c/", tt.after, tt.upTo, 0)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, kv := range got {
			keys = append(keys, kv.Key)
			if want := map[string]string{"c/a": "2", "c/b": "1"}[kv.Key]; string(kv.Value) != want || kv.Created == 0 || kv.Revision == 0 {
				t.Errorf("Created(c/, %d, %d): %s = %q (created %d, written %d), want %q as it is now", tt.after, tt.upTo, kv.Key, kv.Value, kv.Created, kv.Revision, want)
			}
		}
		if diff := cmp.Diff(tt.want, keys); diff != "" {
			t.Errorf("Created(c/, %d, %d) mismatch (-want +got):\n%s", tt.after, tt.upTo, diff)
		}
	}
	var ops []store.Op
	for i := range 300 { // more than one transaction of reads
		ops = append(ops, store.Put(fmt.Sprintf("many/%03d", i), []byte(fmt.Sprint(i))))
	}
	for chunk := range slices.Chunk(ops, 100) {
		if _, err := s.Txn(ctx, chunk...); err != nil {
			t.Fatal(err)
		}
	}
	many, err := s.Created(ctx, "many/", 0, 0, 0)
	if err != nil || len(many) != len(ops) {
		t.Fatalf("Created(many/) = %d keys, %v, want %d", len(many), err, len(ops))
	}
	for i, kv := range many {
		if kv.Key != fmt.Sprintf("many/%03d", i) || string(kv.Value) != fmt.Sprint(i) {
			t.Fatalf("Created(many/)[%d] = %s=%q, want many/%03d=%d", i, kv.Key, kv.Value, i, i)
		}
	}
	for _, tt := range []struct {
		after, upTo, want int64
	}{
		{0, rewritten, second},
		{0, second, second},
		{0, first, first},
		{first, rewritten, second},
		{second, rewritten, 0},
		{0, first - 1, 0},
	} {
		if got, err := s.LastCreated(ctx, "c/", tt.after, tt.upTo); err != nil || got != tt.want {
			t.Errorf("LastCreated(c/, %d, %d) = %d, %v, want %d", tt.after, tt.upTo, got, err, tt.want)
		}
	}
}

func TestGetMany(t *testing.T) {
	s := storetest.Start(t)
	ctx := t.Context()
	var keys []string
	for i := range 200 { // more than one transaction of reads
		keys = append(keys, fmt.Sprintf("gm/%03d", i))
	}
	var ops []store.Op
	for _, k := range keys[:150] {
		ops = append(ops, store.Put(k, []byte("v1")))
	}
	rev := int64(0)
	for chunk := range slices.Chunk(ops, 100) {
		r, err := s.Txn(ctx, chunk...)
		if err != nil {
			t.Fatal(err)
		}
		rev = r
	}
	if _, err := s.Txn(ctx, store.Put(keys[0], []byte("v2"))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rev  int64
		want string
	}{{0, "v2"}, {rev, "v1"}} {
		got, err := s.GetMany(ctx, keys, tt.rev)
		if err != nil || len(got) != 150 {
			t.Fatalf("GetMany(%d keys, rev %d) = %d keys, %v; want the 150 that exist", len(keys), tt.rev, len(got), err)
		}
		if kv := got[keys[0]]; string(kv.Value) != tt.want || kv.Key != keys[0] {
			t.Errorf("GetMany(rev %d)[%s] = %+v, want %q", tt.rev, keys[0], kv, tt.want)
		}
		if _, ok := got[keys[199]]; ok {
			t.Errorf("GetMany(rev %d) has %s, which does not exist", tt.rev, keys[199])
		}
	}
}

func TestUsage(t *testing.T) {
	s := storetest.Start(t)
	ctx := t.Context()
	before, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 64<<10)
	for i := range 64 {
		if _, err := s.Txn(ctx, store.Put(fmt.Sprintf("usage/%d", i), value)); err != nil {
			t.Fatal(err)
		}
	}
	after, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// etcd writes to its file when its backend commits (every 100 ms).
	grown := func() bool { return after.InUse >= before.InUse+4<<20 && after.Size >= 4<<20 }
	for deadline := time.Now().Add(5 * time.Second); !grown() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if after, err = s.Usage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !grown() || after.Quota != 8<<30 {
		t.Errorf("Usage after writing 4 MiB = %+v (before %+v), want 4 MiB more in use, a file of at least that, quota 8 GiB", after, before)
	}
}
