package redfishsim

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"slices"
)

// cdMedia lists the host's CD/DVD virtual media, where real BMCs put them:
// under the system, or else under the managers that manage it. The caller
// holds b.mu.
func (b *BMC) cdMedia() []string {
	sys, _ := b.object(b.system)
	colls := []string{linkOf(sys, "VirtualMedia")}
	if colls[0] == "" {
		colls = nil
		managers, _ := child(sys, "Links")["ManagedBy"].([]any)
		for _, m := range managers {
			mgr, _ := b.object(ref(m))
			colls = append(colls, linkOf(mgr, "VirtualMedia"))
		}
	}
	var out []string
	for _, c := range colls {
		for _, m := range b.members(c) {
			vm, _ := b.object(m)
			types := stringList(vm["MediaTypes"])
			if slices.Contains(types, "CD") || slices.Contains(types, "DVD") {
				out = append(out, m)
			}
		}
	}
	return out
}

// mediaImage is the Image of the first inserted CD/DVD, or "". The caller
// holds b.mu.
func (b *BMC) mediaImage() string {
	for _, m := range b.cdMedia() {
		vm, _ := b.object(m)
		if inserted, _ := vm["Inserted"].(bool); inserted {
			image, _ := vm["Image"].(string)
			return image
		}
	}
	return ""
}

// MediaImage is the image in the host's virtual CD/DVD drive, or "".
func (b *BMC) MediaImage() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mediaImage()
}

// insertMedia answers #VirtualMedia.InsertMedia for the media at p. With
// FetchImages it checks that the image is reachable first, as a BMC that
// fetches the image itself would, and refuses with 400 when it is not.
func (b *BMC) insertMedia(w http.ResponseWriter, r *http.Request, p string, body []byte) error {
	const action = "VirtualMedia.InsertMedia"
	in, err := newParams(action, body)
	if err != nil {
		return err
	}
	b.mu.Lock()
	vm, _ := b.object(p)
	b.mu.Unlock()
	protocols := stringList(child(child(vm, "Actions"), "#"+action)["TransferProtocolType@Redfish.AllowableValues"])
	image := in.str("Image", true, nil)
	inserted := in.boolean("Inserted", true)
	writeProtected := in.boolean("WriteProtected", true)
	in.str("TransferProtocolType", false, protocols)
	in.str("TransferMethod", false, []string{"Stream", "Upload"})
	in.str("UserName", false, nil)
	in.str("Password", false, nil)
	if !inserted {
		in.msgs = append(in.msgs, msg("ActionParameterNotSupported", "Inserted", action))
	}
	if err := in.err(); err != nil {
		return err
	}
	if v, _ := vm["Inserted"].(bool); v {
		return refuse(http.StatusBadRequest, msg("ResourceInUse"))
	}
	if b.opts.FetchImages {
		if err := b.fetchImage(r.Context(), action, image); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	vm, _ = b.object(p)
	if v, _ := vm["Inserted"].(bool); v { // inserted by someone else while the image was fetched
		return refuse(http.StatusBadRequest, msg("ResourceInUse"))
	}
	name := path.Base(image)
	if u, err := url.Parse(image); err == nil && u.Path != "" {
		name = path.Base(u.Path)
	}
	vm["Image"], vm["ImageName"] = image, name
	vm["Inserted"], vm["WriteProtected"], vm["ConnectedVia"] = true, writeProtected, "URI"
	b.put(p, vm)
	b.log.DebugContext(r.Context(), "media inserted", "media", p, "image", image)
	w.Header().Set("ETag", etag(b.res[p]))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// fetchImage checks that image answers 2xx to HEAD, or to GET when the
// server does not allow HEAD.
func (b *BMC) fetchImage(ctx context.Context, action, image string) error {
	u, err := url.Parse(image)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return refuse(http.StatusBadRequest, msg("ActionParameterValueFormatError", jsonText(image), "Image", action))
	}
	status, err := b.request(ctx, http.MethodHead, image)
	if err == nil && (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) {
		status, err = b.request(ctx, http.MethodGet, image)
	}
	switch {
	case err != nil:
		b.log.InfoContext(ctx, "image unreachable", "image", image, "err", err)
		return refuse(http.StatusBadRequest, msg("CouldNotEstablishConnection", image))
	case status < 200 || status > 299:
		b.log.InfoContext(ctx, "image missing", "image", image, "status", status)
		return refuse(http.StatusBadRequest, msg("ResourceMissingAtURI", image))
	}
	return nil
}

// request sends a bodiless request and returns the status; it reads no
// body.
func (b *BMC) request(ctx context.Context, method, target string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// ejectMedia answers #VirtualMedia.EjectMedia for the media at p.
func (b *BMC) ejectMedia(w http.ResponseWriter, r *http.Request, p string, body []byte) error {
	in, err := newParams("VirtualMedia.EjectMedia", body)
	if err != nil {
		return err
	}
	if err := in.err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	vm, _ := b.object(p)
	if inserted, _ := vm["Inserted"].(bool); !inserted {
		return refuse(http.StatusBadRequest, msg("NoOperation"))
	}
	vm["Image"], vm["ImageName"], vm["Inserted"], vm["ConnectedVia"] = nil, nil, false, "NotConnected"
	b.put(p, vm)
	b.log.DebugContext(r.Context(), "media ejected", "media", p)
	w.Header().Set("ETag", etag(b.res[p]))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
