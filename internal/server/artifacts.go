package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/images"
	"github.com/citadel-cloud/citadel/internal/releases"
)

// artifacts are the files the agent API and /firmware/ serve by their
// sha256: an imported release's artifact, else a VM image. A replica
// holds the files imported on it; one it lacks is copied from another
// replica that has it (through that replica's agent API, as a replica:
// agentauth.ReplicaTLS), verified against the digest and size its
// catalog records, once however many ask for it at a time.
type artifacts struct {
	releases *releases.Catalog
	images   *images.Catalog
	log      *slog.Logger

	// peers are the agent API URLs of the other replicas present, and
	// client reaches them; nil peers (no agent API) copy nothing.
	peers  func() []string
	client *http.Client
	flight singleflight.Group
}

// copyTimeout bounds the copy of one file from another replica: a VM
// image of some GiB over the control plane's network.
const copyTimeout = 30 * time.Minute

// Local opens the file this replica holds.
func (a *artifacts) Local(sha256 string) (*os.File, error) {
	f, err := a.releases.Open(sha256)
	if !errors.Is(err, os.ErrNotExist) { // found, or not a sha256
		return f, err
	}
	if f, err = a.images.Open(sha256); err != nil {
		return nil, fmt.Errorf("neither an update artifact nor a VM image on this replica: %w", err)
	}
	return f, nil
}

// Open opens the file, copying it from another replica first when this
// one lacks it. An error wrapping os.ErrNotExist means no replica has it.
func (a *artifacts) Open(ctx context.Context, sha256 string) (*os.File, error) {
	f, err := a.Local(sha256)
	if !errors.Is(err, os.ErrNotExist) || a.peers == nil {
		return f, err
	}
	// The copy outlives a caller that gives up: the others wait for it.
	done := a.flight.DoChan(sha256, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), copyTimeout)
		defer cancel()
		return nil, a.copyFromPeer(ctx, sha256)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-done:
		if res.Err != nil {
			return nil, res.Err
		}
	}
	return a.Local(sha256)
}

// copyFromPeer copies the file from the first other replica that has it.
func (a *artifacts) copyFromPeer(ctx context.Context, sha256 string) error {
	errs := []error{fmt.Errorf("%s is on no replica: %w", sha256, os.ErrNotExist)}
	for _, peer := range a.peers() {
		err := a.copyFrom(ctx, peer, sha256)
		if err == nil {
			a.log.InfoContext(ctx, "file copied from another replica", "sha256", sha256, "replica", peer)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", peer, err))
	}
	return errors.Join(errs...)
}

func (a *artifacts) copyFrom(ctx context.Context, peer, sha256 string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peer+agentapi.PathReplicaFiles+sha256, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	// Each catalog adopts only a digest its records name, and checks the
	// content against it.
	err = a.releases.Adopt(ctx, sha256, resp.Body)
	if errors.Is(err, os.ErrNotExist) {
		err = a.images.Adopt(ctx, sha256, resp.Body)
	}
	return err
}

// Releases lists the imported releases (for /firmware/).
func (a *artifacts) Releases(ctx context.Context) ([]releases.Release, error) {
	return a.releases.Releases(ctx)
}
