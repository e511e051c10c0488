package redfishsim

import (
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// maxBody bounds request bodies; Redfish requests are small.
const maxBody = 1 << 20

// ServeHTTP answers one Redfish request. An unreachable BMC drops the
// connection without an answer.
func (b *BMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.unreachable.Load() {
		panic(http.ErrAbortHandler) // net/http closes the connection and logs nothing
	}
	w.Header().Set("OData-Version", "4.0")
	if err := b.serve(w, r); err != nil {
		b.writeError(w, r, err)
	}
}

func (b *BMC) serve(w http.ResponseWriter, r *http.Request) error {
	p := cleanPath(r.URL.Path)
	if p == "/redfish" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(w, p, []string{"GET", "HEAD"})
		}
		writeBody(w, http.StatusOK, "application/json; charset=utf-8", []byte(`{"v1":"/redfish/v1/"}`))
		return nil
	}
	if p != rootPath && !strings.HasPrefix(p, rootPath+"/") {
		return notFound(p)
	}
	var body []byte
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		if r.Method == http.MethodPost && r.Header.Get("Content-Length") == "" {
			return refuse(http.StatusLengthRequired, msg("GeneralError"))
		}
		var err error
		if body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return refuse(http.StatusRequestEntityTooLarge, msg("GeneralError"))
			}
			return refuse(http.StatusBadRequest, msg("MalformedJSON"))
		}
	}
	if !b.public(r.Method, p) {
		if err := b.authenticate(r); err != nil {
			return err
		}
	}
	if hasQueryOptions(r) {
		return refuse(http.StatusNotImplemented, msg("QueryNotSupported"))
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if b.taskMonitor(w, p) {
			return nil
		}
		return b.get(w, p)
	case http.MethodPatch:
		return b.patch(w, r, p, body)
	case http.MethodPost:
		if h := b.posts[p]; h != nil {
			return h(b, w, r, body)
		}
	case http.MethodDelete:
		return b.delete(w, r, p)
	}
	b.mu.Lock()
	allow := b.allow(p)
	b.mu.Unlock()
	return methodNotAllowed(w, p, allow)
}

// public reports whether a request needs no credentials: the service root,
// the OData documents and the session login, as the Redfish specification
// requires.
func (b *BMC) public(method, p string) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return p == rootPath || p == rootPath+"/$metadata" || p == rootPath+"/odata"
	case http.MethodPost:
		return p == b.sessionsPath
	}
	return false
}

// hasQueryOptions reports whether the request asks for $expand, $select,
// $filter, paging or excerpts, none of which the simulator implements.
func hasQueryOptions(r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return false
	}
	for k := range r.URL.Query() {
		if strings.HasPrefix(k, "$") || k == "only" || k == "excerpt" {
			return true
		}
	}
	return false
}

func (b *BMC) get(w http.ResponseWriter, p string) error {
	b.mu.Lock()
	b.settle()
	body, isResource := b.res[p]
	f, isFile := b.files[p]
	allow := b.allow(p)
	b.mu.Unlock()
	switch {
	case isResource: // stored bodies are replaced, never changed, so writing after Unlock is safe
		w.Header().Set("ETag", etag(body))
		writeBody(w, http.StatusOK, "application/json; charset=utf-8", body)
	case isFile:
		writeBody(w, http.StatusOK, f.contentType, f.body)
	default:
		return methodNotAllowed(w, p, allow)
	}
	return nil
}

func (b *BMC) delete(w http.ResponseWriter, r *http.Request, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.res[p]; !ok {
		return notFound(p)
	}
	switch path.Dir(p) {
	case b.sessionsPath:
		b.endSession(p)
	case b.subsPath:
		delete(b.res, p)
		delete(b.subHeaders, p)
		b.removeMember(b.subsPath, p)
		b.log.DebugContext(r.Context(), "subscription deleted", "subscription", p)
	default:
		return methodNotAllowed(w, p, b.allow(p))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// allow lists the methods p accepts, or nil when there is nothing at p.
// The caller holds b.mu.
func (b *BMC) allow(p string) []string {
	_, isResource := b.res[p]
	_, isFile := b.files[p]
	var methods []string
	switch {
	case p == "/redfish" || isFile:
		methods = []string{"GET", "HEAD"}
	case isResource:
		methods = []string{"GET", "HEAD", "PATCH"}
		if d := path.Dir(p); d == b.sessionsPath || d == b.subsPath {
			methods = append(methods, "DELETE")
		}
	}
	if b.posts[p] != nil {
		methods = append(methods, "POST")
	}
	return methods
}

// methodNotAllowed answers 405 with the methods allowed at p, or 404 when
// there is nothing at p.
func methodNotAllowed(w http.ResponseWriter, p string, allow []string) error {
	if len(allow) == 0 {
		return notFound(p)
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	return refuse(http.StatusMethodNotAllowed, msg("GeneralError"))
}

// writeError is the one place an error becomes an HTTP answer: the Redfish
// error envelope for a refusal, 500 for anything else.
func (b *BMC) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := errors.AsType[*apiError](err)
	if !ok {
		b.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &apiError{status: http.StatusInternalServerError, msgs: []message{msg("InternalError")}}
	}
	writeBody(w, e.status, "application/json; charset=utf-8", e.body())
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client went away; nothing to do
}

// writeCreated answers 201 with the new resource and its Location.
func writeCreated(w http.ResponseWriter, p string, body []byte) {
	w.Header().Set("Location", p)
	w.Header().Set("ETag", etag(body))
	writeBody(w, http.StatusCreated, "application/json; charset=utf-8", body)
}
