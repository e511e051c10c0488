// Package storetest starts a real embedded etcd for tests.
package storetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/citadel-cloud/citadel/internal/store"
)

// Start opens a store on a fresh embedded etcd in a temporary directory and
// closes it when the test ends.
func Start(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{
		Dir:    t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
