package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/images"
)

// The VM image catalog's endpoints, outside ARM like the updates': an
// image is a file of up to tens of GiB, not an ARM resource.
//
//	POST   /citadel/images?name=N&osType=Linux&bootMethod=UEFI   body: the image → 201 the image
//	GET    /citadel/images                                       → {"value": [image, ...]}
//	DELETE /citadel/images/{name}                                → 204 (the name escaped with url.PathEscape)
//
// Importing and deleting are for Owners (they decide what software the
// site's VMs boot); listing is for whoever may read
// (Citadel.Images/images/read, which Reader's */read covers).
const (
	imageImportAction = "Citadel.Images/import/action"
	imageDeleteAction = "Citadel.Images/images/delete"
	imagesReadAction  = "Citadel.Images/images/read"

	// MaxImageSize is the largest image the server takes; it streams an
	// image to <data-dir>/vmimages, so it needs that much free space
	// there.
	MaxImageSize = 64 << 30
)

// serveImages registers the image endpoints on mux.
func (s *Server) serveImages(mux *http.ServeMux, rbac operatorAuthorizer, log *slog.Logger) {
	mux.HandleFunc("POST /citadel/images", s.serveImageImport(rbac, log))
	mux.HandleFunc("GET /citadel/images", serveList(s, imagesReadAction, "list of images", s.Images.List, rbac, log))
	mux.HandleFunc("DELETE /citadel/images/{name...}", s.serveImageDelete(rbac, log))
}

// imageError is the ARM error of the image catalog's error about name.
func imageError(name string, err error) error {
	if e, ok := errors.AsType[*images.FieldError](err); ok {
		if e.Value == "" {
			return arm.FieldError(e.Field, "The %s %s.", e.Field, e.Reason)
		}
		return arm.FieldError(e.Field, "The %s %q %s.", e.Field, e.Value, e.Reason)
	}
	if errors.Is(err, images.ErrNotFound) {
		return arm.Errorf(http.StatusNotFound, "ImageNotFound", "No image is called %q.", name)
	}
	return err
}

// serveImageImport streams the image in the body into the catalog.
func (s *Server) serveImageImport(rbac operatorAuthorizer, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		c := s.startCall(w, r, imageImportAction, "image import", log)
		if c == nil {
			return
		}
		q := r.URL.Query()
		name, osType, bootMethod := q.Get("name"), q.Get("osType"), q.Get("bootMethod")
		c.description = "import the VM image " + name
		c.props = map[string]string{"name": name, "osType": osType, "bootMethod": bootMethod}
		// Before the body is read: a client that sent "Expect:
		// 100-continue" sends none of it when refused.
		if err := c.authorize(rbac, true); err != nil {
			c.fail(err)
			return
		}
		tooLarge := arm.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "An image has at most %d GiB.", MaxImageSize>>30)
		if r.ContentLength > MaxImageSize {
			c.fail(tooLarge)
			return
		}
		body := &bodyReader{r: http.MaxBytesReader(w, r.Body, MaxImageSize)}
		t0 := time.Now()
		img, err := s.Images.Import(ctx, name, osType, bootMethod, body)
		if _, ok := errors.AsType[*http.MaxBytesError](body.err); ok {
			c.fail(tooLarge)
			return
		}
		if body.err != nil {
			log.WarnContext(ctx, "image upload broken off", "name", name, "received", body.n, "err", body.err)
			c.fail(arm.Errorf(http.StatusBadRequest, arm.CodeInvalidRequestContent, "The image could not be read whole (%d bytes received).", body.n))
			return
		}
		if err != nil {
			c.fail(imageError(name, err))
			return
		}
		c.props["osType"], c.props["bootMethod"] = img.OSType, img.BootMethod
		c.record(audit.StatusSucceeded, http.StatusCreated, map[string]string{
			"sha256": img.SHA256, "format": img.Format, "bytes": strconv.FormatInt(img.Size, 10)})
		log.InfoContext(ctx, "vm image imported", "name", img.Name, "sha256", img.SHA256, "format", img.Format,
			"bytes", img.Size, "took", time.Since(t0))
		b, err := json.Marshal(img)
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusCreated, b)
	}
}

// bodyReader counts what it reads and keeps its reader's error, to tell
// an upload broken off from the catalog's own failures.
type bodyReader struct {
	r   io.Reader
	n   int64
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	k, err := b.r.Read(p)
	b.n += int64(k)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return k, err
}

// serveImageDelete removes an image from the catalog.
func (s *Server) serveImageDelete(rbac operatorAuthorizer, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.startCall(w, r, imageDeleteAction, "image delete", log)
		if c == nil {
			return
		}
		name := r.PathValue("name")
		c.description = "delete the VM image " + name
		c.props = map[string]string{"name": name}
		if err := c.authorize(rbac, true); err != nil {
			c.fail(err)
			return
		}
		if err := s.Images.Delete(r.Context(), name); err != nil {
			c.fail(imageError(name, err))
			return
		}
		c.record(audit.StatusSucceeded, http.StatusNoContent, nil)
		log.InfoContext(r.Context(), "vm image deleted", "name", name)
		w.WriteHeader(http.StatusNoContent)
	}
}
