package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// Snapshot writes a consistent snapshot of the whole store to w, as etcd
// makes it (with its integrity hash), and returns a revision it holds at
// least. The store keeps serving meanwhile.
func (s *Store) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	rev, err := s.Revision(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	rc, err := s.client.Snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	return rev, nil
}

// Restore makes dir the data directory of an embedded store holding the
// snapshot file: what Open then starts. dir must not hold a store yet.
// (An external cluster is restored with etcdutl, member by member: see
// docs/operations.md.)
func Restore(snapshotFile, dir string) error {
	memberData := filepath.Join(dir, "member-data")
	if _, err := os.Stat(memberData); err == nil {
		return fmt.Errorf("store: restore: %s already holds a store", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	// The peer URL only bootstraps the single member; startEmbedded
	// advertises the one it listens on.
	const peer = "http://127.0.0.1:2380"
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath: snapshotFile, Name: memberName, OutputDataDir: memberData,
		PeerURLs: []string{peer}, InitialCluster: memberName + "=" + peer, InitialClusterToken: "etcd-cluster",
	})
	if err != nil {
		return fmt.Errorf("store: restore %s: %w", snapshotFile, err)
	}
	return nil
}
