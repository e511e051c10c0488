package store

import (
	"context"
	"encoding/json"
	"fmt"

	gojson "github.com/goccy/go-json"
)

// Collection is a family of keys under one prefix whose values are JSON
// documents of type T: the typed face of the store.
type Collection[T any] struct {
	prefix string
}

// NewCollection names the collection under prefix (which should end in "/").
func NewCollection[T any](prefix string) Collection[T] {
	return Collection[T]{prefix: prefix}
}

// Key is the store key of the document called name.
func (c Collection[T]) Key(name string) string { return c.prefix + name }

// Prefix is the collection's key prefix.
func (c Collection[T]) Prefix() string { return c.prefix }

// Item is a decoded document with its revision.
type Item[T any] struct {
	Name     string // the key without the collection's prefix
	Value    T
	Revision int64
}

// Get reads and decodes the document called name.
func (c Collection[T]) Get(ctx context.Context, s *Store, name string) (Item[T], error) {
	kv, err := s.Get(ctx, c.Key(name))
	if err != nil {
		return Item[T]{}, err
	}
	return c.decode(kv)
}

func (c Collection[T]) decode(kv KV) (Item[T], error) {
	it := Item[T]{Name: kv.Key[len(c.prefix):], Revision: kv.Revision}
	if err := decodeJSON(kv.Value, &it.Value); err != nil {
		return Item[T]{}, fmt.Errorf("store: decode %q: %w", kv.Key, err)
	}
	return it, nil
}

// List decodes the documents whose names start with namePrefix, after the
// name `after`, at most limit (0: all).
func (c Collection[T]) List(ctx context.Context, s *Store, namePrefix, after string, limit int) ([]Item[T], bool, error) {
	if after != "" {
		after = c.prefix + after
	}
	page, err := s.List(ctx, c.prefix+namePrefix, after, limit)
	if err != nil {
		return nil, false, err
	}
	items := make([]Item[T], 0, len(page.KVs))
	for _, kv := range page.KVs {
		it, err := c.decode(kv)
		if err != nil {
			return nil, false, err
		}
		items = append(items, it)
	}
	return items, page.More, nil
}

// Decode turns a watched or listed KV of this collection into an Item.
func (c Collection[T]) Decode(kv KV) (Item[T], error) { return c.decode(kv) }

// Put writes v unconditionally.
func (c Collection[T]) Put(name string, v T) Op { return Put(c.Key(name), mustJSON(v)) }

// Create writes v if name does not exist yet.
func (c Collection[T]) Create(name string, v T) Op { return Create(c.Key(name), mustJSON(v)) }

// Update writes v if name is still at rev (0: still absent).
func (c Collection[T]) Update(name string, v T, rev int64) Op {
	return Update(c.Key(name), mustJSON(v), rev)
}

// Delete removes name unconditionally.
func (c Collection[T]) Delete(name string) Op { return Delete(c.Key(name)) }

// DeleteAt removes name if it is still at rev.
func (c Collection[T]) DeleteAt(name string, rev int64) Op { return DeleteAt(c.Key(name), rev) }

// decodeJSON decodes a stored document, which mustJSON wrote. It uses
// goccy/go-json, which reads such documents into the same values as
// encoding/json (FuzzDecodeJSON holds it to that) in about a third of the
// time: decoding records is the largest single cost of reading them.
func decodeJSON(b []byte, v any) error { return gojson.Unmarshal(b, v) }

// mustJSON encodes documents that are plain data; a failure is a
// programming error (a channel or func in a stored type).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: encode %T: %v", v, err))
	}
	return b
}
