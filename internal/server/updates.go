package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/update"
)

// The air-gapped update endpoints, outside ARM like the backup's: a
// bundle is a file of up to tens of GiB, not an ARM resource.
//
//	PUT  /citadel/updates/trust      body: the vendor's root.json → {"rootVersion": N}
//	POST /citadel/updates/bundles    body: a bundle → 201 the release
//	GET  /citadel/updates/releases   → {"value": [release, ...]}
//
// Installing the trust and importing are for Owners (they decide what
// software the site runs); listing is for whoever may read
// (Citadel.Updates/releases/read, which Reader's */read covers).
const (
	trustAction    = "Citadel.Updates/trust/action"
	importAction   = "Citadel.Updates/import/action"
	releasesAction = "Citadel.Updates/releases/read"

	// MaxBundleSize is the largest bundle the server takes; it spools a
	// bundle to <data-dir>/updates before it verifies it, so it needs
	// that much free space there, and as much again for the artifacts.
	MaxBundleSize = 64 << 30
	maxRootSize   = 1 << 20

	// codeBundleRejected is the ARM error code of a bundle that does not
	// verify; its one detail has the update.Reason as code and the
	// bundle's file at fault as target.
	codeBundleRejected = "UpdateBundleRejected"
)

// serveUpdates registers the update endpoints on mux.
func (s *Server) serveUpdates(mux *http.ServeMux, rbac operatorAuthorizer, log *slog.Logger) {
	mux.HandleFunc("PUT /citadel/updates/trust", s.serveTrust(rbac, log))
	mux.HandleFunc("POST /citadel/updates/bundles", s.serveImport(rbac, log))
	mux.HandleFunc("GET /citadel/updates/releases", serveList(s, releasesAction, "list of releases", s.Releases.Releases, rbac, log))
}

// serveTrust installs the vendor's root.json as the root of trust.
func (s *Server) serveTrust(rbac operatorAuthorizer, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.startCall(w, r, trustAction, "trust", log)
		if c == nil {
			return
		}
		c.description = "install the root of trust of update bundles"
		if err := c.authorize(rbac, true); err != nil {
			c.fail(err)
			return
		}
		root, err := io.ReadAll(io.LimitReader(r.Body, maxRootSize+1))
		switch {
		case err != nil:
			c.fail(arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "The request body could not be read."))
			return
		case len(root) > maxRootSize:
			c.fail(arm.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "A root.json has at most 1 MiB."))
			return
		}
		version, err := s.Releases.AddTrust(r.Context(), root)
		switch {
		case errors.Is(err, releases.ErrBadRoot):
			c.fail(arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "%s", err))
			return
		case errors.Is(err, releases.ErrTrustInstalled):
			c.fail(arm.Errorf(http.StatusConflict, arm.CodeConflict, "%s", err))
			return
		case err != nil:
			c.fail(err)
			return
		}
		c.record(audit.StatusSucceeded, http.StatusOK, map[string]string{"rootVersion": strconv.FormatInt(version, 10)})
		body, _ := json.Marshal(map[string]int64{"rootVersion": version})
		c.reply(http.StatusOK, body)
	}
}

// serveImport spools the bundle in the body to a file, verifies it and
// records its release.
func (s *Server) serveImport(rbac operatorAuthorizer, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		c := s.startCall(w, r, importAction, "import", log)
		if c == nil {
			return
		}
		c.description = "import an update bundle"
		// Before the body is read: a client that sent "Expect:
		// 100-continue" sends none of it when refused.
		if err := c.authorize(rbac, true); err != nil {
			c.fail(err)
			return
		}
		tooLarge := arm.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "A bundle has at most %d GiB.", MaxBundleSize>>30)
		if r.ContentLength > MaxBundleSize {
			c.fail(tooLarge)
			return
		}
		f, err := s.Releases.CreateTemp("bundle-*.tar")
		if err != nil {
			c.fail(err)
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		n, err := io.Copy(f, http.MaxBytesReader(w, r.Body, MaxBundleSize))
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			c.fail(tooLarge)
			return
		}
		if err != nil {
			log.WarnContext(ctx, "bundle upload broken off", "received", n, "err", err)
			c.fail(arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "The bundle could not be read whole (%d bytes received).", n))
			return
		}
		t0 := time.Now()
		rel, err := s.Releases.Import(ctx, f, time.Now())
		if e, ok := errors.AsType[*update.Error](err); ok {
			log.InfoContext(ctx, "update bundle rejected", "reason", e.Reason, "file", e.File, "msg", e.Msg)
			c.props = map[string]string{"reason": string(e.Reason), "file": e.File}
			c.fail(&arm.Error{Status: http.StatusBadRequest, Code: codeBundleRejected, Message: e.Msg,
				Details: []*arm.Error{{Code: string(e.Reason), Message: e.Msg, Target: e.File}}})
			return
		}
		if errors.Is(err, releases.ErrNoTrust) {
			c.fail(arm.Errorf(http.StatusConflict, "RootOfTrustMissing", "%s", err))
			return
		}
		if err != nil {
			c.fail(err)
			return
		}
		// The clusters' availableUpgradeVersions list the new release.
		if err := s.networkCloud.RefreshUpgradeVersions(ctx); err != nil {
			log.WarnContext(ctx, "availableUpgradeVersions not refreshed", "err", err)
		}
		c.record(audit.StatusSucceeded, http.StatusCreated, map[string]string{
			"clusterVersion": rel.ClusterVersion, "artifacts": strconv.Itoa(len(rel.Artifacts)), "bytes": strconv.FormatInt(n, 10)})
		log.InfoContext(ctx, "update bundle imported", "cluster_version", rel.ClusterVersion, "artifacts", len(rel.Artifacts),
			"bytes", n, "took", time.Since(t0))
		body, err := json.Marshal(rel)
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusCreated, body)
	}
}
