package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"

	"github.com/citadel-cloud/citadel/internal/releases"
	"github.com/citadel-cloud/citadel/internal/update"
)

// firmwareFiles is what serveFirmware needs of the release catalog and
// its files (artifacts).
type firmwareFiles interface {
	Releases(ctx context.Context) ([]releases.Release, error)
	Open(ctx context.Context, sha string) (*os.File, error)
}

// serveFirmware serves GET /firmware/{sha256}: the firmware package of an
// imported release, by its digest, for a BMC that drift control asks to
// flash it (UpdateService.SimpleUpdate). Like /images/, it takes no
// credentials, as BMCs fetch from a URL alone; it serves nothing but the
// firmware of imported releases, which was signed and verified on import,
// and answers 404 to anything else: another kind of artifact, a digest no
// release lists, or a package no replica has (one this replica lacks is
// copied from another first).
func serveFirmware(files firmwareFiles, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sha := r.PathValue("sha256")
		a, err := firmwareArtifact(r.Context(), files, sha)
		if err != nil {
			log.WarnContext(r.Context(), "firmware not served", "sha256", sha, "err", err)
			http.Error(w, "the releases cannot be read", http.StatusInternalServerError)
			return
		}
		if a == nil {
			http.NotFound(w, r)
			return
		}
		f, err := files.Open(r.Context(), a.SHA256)
		if errors.Is(err, os.ErrNotExist) {
			log.WarnContext(r.Context(), "firmware on no replica", "sha256", a.SHA256, "name", a.Name, "err", err)
			http.NotFound(w, r)
			return
		}
		if err != nil {
			log.WarnContext(r.Context(), "firmware not served", "sha256", a.SHA256, "err", err)
			http.Error(w, "firmware not readable", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			log.WarnContext(r.Context(), "firmware not served", "sha256", a.SHA256, "err", err)
			http.Error(w, "firmware not readable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"`+a.SHA256+`"`)
		http.ServeContent(w, r, "", st.ModTime(), f)
	}
}

// firmwareArtifact finds the firmware artifact whose sha256 is sha among
// the imported releases; nil when there is none.
func firmwareArtifact(ctx context.Context, files firmwareFiles, sha string) (*releases.ArtifactInfo, error) {
	all, err := files.Releases(ctx)
	if err != nil {
		return nil, err
	}
	for _, rel := range all {
		for _, a := range rel.Artifacts {
			if a.Kind == update.KindFirmware && a.SHA256 == sha {
				return &a, nil
			}
		}
	}
	return nil, nil
}
