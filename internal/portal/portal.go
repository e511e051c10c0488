// Package portal serves Citadel's web portal: a browser application,
// embedded in the binary (it works air-gapped, with nothing fetched from
// elsewhere), that signs its user in through the local issuer's
// authorization code flow with PKCE and then does everything through the
// ARM API with the user's token, so that RBAC, locks, Azure Policy and the
// activity log apply to it exactly as they do to az.
//
// The application itself is plain HTML, CSS and JavaScript modules under
// assets/, with no build step.
package portal

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// ClientID is the OAuth client ID the portal signs in as; it becomes the
// appid of the user's tokens.
const ClientID = "citadel-portal"

// contentSecurityPolicy lets the portal load only its own files and talk
// only to its own origin, and keeps it out of other sites' frames.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Handler serves the portal under /portal/.
func Handler() http.Handler {
	root, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.StripPrefix("/portal/", http.FileServerFS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary: revalidate rather than cache.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
