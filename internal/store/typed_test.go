package store_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

type machine struct {
	Name  string            `json:"name"`
	CPUs  int               `json:"cpus"`
	Tags  map[string]string `json:"tags,omitempty"`
	Power bool              `json:"power"`
}

func TestCollection(t *testing.T) {
	s := storetest.Start(t)
	ctx := t.Context()
	vms := store.NewCollection[machine]("vms/")

	if got, want := vms.Prefix(), "vms/"; got != want {
		t.Errorf("Prefix() = %q, want %q", got, want)
	}
	if got, want := vms.Key("a/b"), "vms/a/b"; got != want {
		t.Errorf("Key(a/b) = %q, want %q", got, want)
	}

	t.Run("round trip", func(t *testing.T) {
		if it, err := vms.Get(ctx, s, "rt"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(rt) = %v, %v, want ErrNotFound", it, err)
		}
		v1 := machine{Name: "rt", CPUs: 2, Tags: map[string]string{"env": "test"}}
		rev1, err := s.Txn(ctx, vms.Create("rt", v1))
		if err != nil {
			t.Fatalf("Txn(Create(rt)) = %v", err)
		}
		got, err := vms.Get(ctx, s, "rt")
		if err != nil {
			t.Fatalf("Get(rt) = %v", err)
		}
		if diff := cmp.Diff(store.Item[machine]{Name: "rt", Value: v1, Revision: rev1}, got); diff != "" {
			t.Errorf("Get(rt) after Create mismatch (-want +got):\n%s", diff)
		}
		if _, err := s.Txn(ctx, vms.Create("rt", v1)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Txn(Create(rt)) again = %v, want ErrConflict", err)
		}

		v2 := v1
		v2.CPUs, v2.Power = 4, true
		rev2, err := s.Txn(ctx, vms.Update("rt", v2, got.Revision))
		if err != nil {
			t.Fatalf("Txn(Update(rt, %d)) = %v", got.Revision, err)
		}
		if rev2 <= rev1 {
			t.Errorf("Txn(Update(rt)) = revision %d, want more than %d", rev2, rev1)
		}
		if _, err := s.Txn(ctx, vms.Update("rt", v1, rev1)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Txn(Update(rt, stale %d)) = %v, want ErrConflict", rev1, err)
		}
		got, err = vms.Get(ctx, s, "rt")
		if err != nil {
			t.Fatalf("Get(rt) = %v", err)
		}
		if diff := cmp.Diff(store.Item[machine]{Name: "rt", Value: v2, Revision: rev2}, got); diff != "" {
			t.Errorf("Get(rt) after Update mismatch (-want +got):\n%s", diff)
		}

		if _, err := s.Txn(ctx, vms.DeleteAt("rt", rev1)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Txn(DeleteAt(rt, stale %d)) = %v, want ErrConflict", rev1, err)
		}
		if _, err := s.Txn(ctx, vms.DeleteAt("rt", rev2)); err != nil {
			t.Errorf("Txn(DeleteAt(rt, %d)) = %v", rev2, err)
		}
		if it, err := vms.Get(ctx, s, "rt"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(rt) after DeleteAt = %v, %v, want ErrNotFound", it, err)
		}
		if _, err := s.Txn(ctx, vms.Update("rt", v1, 0)); err != nil {
			t.Errorf("Txn(Update(rt, 0)) of a deleted name = %v", err)
		}
		if _, err := s.Txn(ctx, vms.Put("rt", v2)); err != nil {
			t.Errorf("Txn(Put(rt)) = %v", err)
		}
		if _, err := s.Txn(ctx, vms.Delete("rt")); err != nil {
			t.Errorf("Txn(Delete(rt)) = %v", err)
		}
		if it, err := vms.Get(ctx, s, "rt"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(rt) after Delete = %v, %v, want ErrNotFound", it, err)
		}
	})

	t.Run("list", func(t *testing.T) {
		col := store.NewCollection[machine]("list/")
		revs := map[string]int64{}
		for _, name := range []string{"b", "a", "c/1", "c/2", "d"} {
			rev, err := s.Txn(ctx, col.Create(name, machine{Name: name}))
			if err != nil {
				t.Fatalf("Txn(Create(%s)) = %v", name, err)
			}
			revs[name] = rev
		}
		// Neighbours that are not in the collection.
		put(t, s, "list", `{"name":"outside"}`, "list0", `{"name":"outside"}`, "lis/a", `{"name":"outside"}`)

		item := func(name string) store.Item[machine] {
			return store.Item[machine]{Name: name, Value: machine{Name: name}, Revision: revs[name]}
		}
		tests := []struct {
			namePrefix, after string
			limit             int
			want              []store.Item[machine]
			more              bool
		}{
			{want: []store.Item[machine]{item("a"), item("b"), item("c/1"), item("c/2"), item("d")}},
			{limit: 2, want: []store.Item[machine]{item("a"), item("b")}, more: true},
			{after: "b", limit: 2, want: []store.Item[machine]{item("c/1"), item("c/2")}, more: true},
			{after: "c/2", limit: 2, want: []store.Item[machine]{item("d")}},
			{namePrefix: "c/", want: []store.Item[machine]{item("c/1"), item("c/2")}},
			{namePrefix: "c/", after: "a", want: []store.Item[machine]{item("c/1"), item("c/2")}},
			{namePrefix: "c/", after: "c/1", want: []store.Item[machine]{item("c/2")}},
			{namePrefix: "c/", after: "d", want: []store.Item[machine]{}},
			{namePrefix: "x", want: []store.Item[machine]{}},
		}
		for _, tt := range tests {
			got, more, err := col.List(ctx, s, tt.namePrefix, tt.after, tt.limit)
			if err != nil {
				t.Errorf("List(%q, %q, %d) = %v", tt.namePrefix, tt.after, tt.limit, err)
				continue
			}
			if diff := cmp.Diff(tt.want, got); diff != "" || more != tt.more {
				t.Errorf("List(%q, %q, %d) more = %v, want %v; items mismatch (-want +got):\n%s", tt.namePrefix, tt.after, tt.limit, more, tt.more, diff)
			}
		}
	})

	t.Run("list with a bad document", func(t *testing.T) {
		col := store.NewCollection[machine]("bad/")
		put(t, s, "bad/good", `{"name":"good"}`, "bad/bad", `{"name":`)
		if got, _, err := col.List(ctx, s, "", "", 0); err == nil {
			t.Errorf("List() = %v, nil, want a decode error", got)
		}
		if got, err := col.Get(ctx, s, "bad"); err == nil {
			t.Errorf("Get(bad) = %v, nil, want a decode error", got)
		}
	})

	t.Run("decode", func(t *testing.T) {
		tests := []struct {
			kv      store.KV
			want    store.Item[machine]
			wantErr bool
		}{
			{
				kv:   store.KV{Key: "vms/x", Value: []byte(`{"name":"x","cpus":3}`), Revision: 7},
				want: store.Item[machine]{Name: "x", Value: machine{Name: "x", CPUs: 3}, Revision: 7},
			},
			{
				kv:   store.KV{Key: "vms/a/b", Value: []byte(`{"name":"ab"}`), Revision: 9},
				want: store.Item[machine]{Name: "a/b", Value: machine{Name: "ab"}, Revision: 9},
			},
			{kv: store.KV{Key: "vms/x", Value: []byte(`not json`), Revision: 7}, wantErr: true},
			{kv: store.KV{Key: "vms/x", Value: nil, Revision: 7}, wantErr: true}, // a deletion
		}
		for _, tt := range tests {
			got, err := vms.Decode(tt.kv)
			if (err != nil) != tt.wantErr {
				t.Errorf("Decode(%v) = %v, %v, want error %v", tt.kv, got, err, tt.wantErr)
				continue
			}
			if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
				t.Errorf("Decode(%v) mismatch (-want +got):\n%s", tt.kv, diff)
			}
		}
	})
}
