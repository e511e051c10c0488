// Package identity is Citadel's local identity provider: an ADFS-style
// OAuth2/OIDC token issuer that works disconnected, its signing keys, service
// principals and local users, token validation for every ARM request, and the
// certificate authority behind the server's HTTPS.
//
// The issuer speaks what the az CLI (MSAL for Python) and the Azure SDK for
// Go (azidentity, MSAL for Go) send: the cloud metadata document, the AD FS
// discovery document and token endpoint under /adfs, and the Entra-style
// /{tenant}/v2.0 discovery document that MSAL for Go reads for a GUID tenant.
// Signing keys live in the store so that every server replica issues and
// validates the same tokens.
//
// The server (cmd/citadel) and the front door import this package; it
// imports store and arm.
package identity

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

// Defaults for Config.
const (
	DefaultTokenLifetime = time.Hour
	DefaultKeyRotation   = 24 * time.Hour
)

// Config configures an Issuer.
type Config struct {
	Store *store.Store
	// PublicURL is where clients reach the server, ending in "/", e.g.
	// "https://127.0.0.1:8443/". Endpoints and the issuer are derived from it.
	PublicURL string
	// Audience is the ARM resource tokens are issued for, e.g.
	// "https://management.citadel.local/". Tokens carry it exactly as given.
	Audience string
	// TenantID is the one tenant this control plane is (a GUID).
	TenantID string
	// TokenLifetime of access tokens; 0 means DefaultTokenLifetime.
	TokenLifetime time.Duration
	// KeyRotation is the age at which the signing key is replaced; 0 means
	// DefaultKeyRotation.
	KeyRotation time.Duration
	// Now is the clock for token times and key ages; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Issuer issues and validates Citadel's access tokens and manages the
// principals they are issued to. It is safe for concurrent use.
type Issuer struct {
	store     *store.Store
	publicURL string // ends in "/"
	audience  string
	audTrim   string // audience without trailing "/"
	tenantID  string
	lifetime  time.Duration
	rotation  time.Duration
	now       func() time.Time
	log       *slog.Logger

	issuer       string // publicURL + "adfs": the iss of every token
	tenantIssuer string // publicURL + tenantID + "/v2.0": published for MSAL Go
	adfsToken    string // the AD FS token endpoint
	assertionAud map[string]bool

	keys           atomic.Pointer[keySet]
	keysMu         sync.Mutex    // serialises loading, rotating and pruning keys
	lastReload     time.Time     // wall time of the last unknown-kid reload; under keysMu
	reloadInterval time.Duration // keyReloadInterval; shorter in tests

	validated tokenCache
}

// New checks cfg and returns an Issuer. It does not touch the store: keys
// are loaded (and the first one made) when first needed.
func New(cfg Config) (*Issuer, error) {
	if cfg.Store == nil {
		return nil, errors.New("identity: new issuer: no store")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		// MSAL looks for https://{host}/adfs/..., so the issuer sits at the root.
		return nil, fmt.Errorf("identity: new issuer: public URL %q is not an absolute http(s) URL without a path", cfg.PublicURL)
	}
	if cfg.Audience == "" {
		return nil, errors.New("identity: new issuer: no audience")
	}
	if cfg.TenantID == "" || strings.ContainsAny(cfg.TenantID, "/?#% ") {
		return nil, fmt.Errorf("identity: new issuer: bad tenant ID %q", cfg.TenantID)
	}
	if cfg.TokenLifetime < 0 || cfg.KeyRotation < 0 {
		return nil, errors.New("identity: new issuer: negative token lifetime or key rotation")
	}
	pub := cfg.PublicURL
	if !strings.HasSuffix(pub, "/") {
		pub += "/"
	}
	i := &Issuer{
		store:     cfg.Store,
		publicURL: pub,
		audience:  cfg.Audience,
		audTrim:   strings.TrimRight(cfg.Audience, "/"),
		tenantID:  cfg.TenantID,
		lifetime:  cmp.Or(cfg.TokenLifetime, DefaultTokenLifetime),
		rotation:  cmp.Or(cfg.KeyRotation, DefaultKeyRotation),
		now:       cfg.Now,
		log:       cfg.Logger,

		reloadInterval: keyReloadInterval,
	}
	if i.now == nil {
		i.now = time.Now
	}
	if i.log == nil {
		i.log = slog.Default()
	}
	i.log = i.log.With("component", "identity")
	i.issuer = pub + "adfs"
	i.tenantIssuer = pub + cfg.TenantID + "/v2.0"
	i.adfsToken = pub + "adfs/oauth2/token"
	// A client assertion is addressed to the token endpoint the client
	// discovered: the AD FS one, or a tenant one (MSAL for Go with a GUID
	// tenant). Compared lower-cased and without a trailing "/".
	i.assertionAud = map[string]bool{strings.ToLower(i.adfsToken): true}
	for _, t := range []string{cfg.TenantID, "organizations", "common", "adfs"} {
		i.assertionAud[strings.ToLower(i.tenantTokenEndpoint(t))] = true
	}
	return i, nil
}

// Issuer returns the iss of the tokens this Issuer signs.
func (i *Issuer) Issuer() string { return i.issuer }

// Audience returns the audience tokens are issued for.
func (i *Issuer) Audience() string { return i.audience }

// TenantID returns the tenant tokens are issued in.
func (i *Issuer) TenantID() string { return i.tenantID }

func (i *Issuer) tenantTokenEndpoint(tenant string) string {
	return i.publicURL + tenant + "/oauth2/v2.0/token"
}

// Routes registers the issuer's endpoints on mux: cloud metadata, AD FS
// discovery, JWKS and token endpoint, and the tenant (v2.0) discovery and
// token endpoints that MSAL for Go uses for a GUID tenant.
func (i *Issuer) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /metadata/endpoints", i.serveMetadata)
	mux.HandleFunc("GET /adfs/.well-known/openid-configuration", i.serveADFSConfig)
	mux.HandleFunc("GET /adfs/discovery/keys", i.serveJWKS)
	mux.HandleFunc("POST /adfs/oauth2/token", i.serveToken)
	mux.HandleFunc("GET /adfs/oauth2/authorize", i.serveAuthorize)
	mux.HandleFunc("POST /adfs/oauth2/authorize", i.serveAuthorize)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", i.serveTenantConfig)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", i.serveTenantJWKS)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", i.serveTenantToken)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", i.serveTenantAuthorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/authorize", i.serveTenantAuthorize)
}

// knownTenant reports whether tenant names this control plane's tenant in a
// URL path: its ID or one of the aliases clients use.
func (i *Issuer) knownTenant(tenant string) bool {
	if strings.EqualFold(tenant, i.tenantID) {
		return true
	}
	switch strings.ToLower(tenant) {
	case "organizations", "common", "adfs":
		return true
	}
	return false
}

// serveMetadata answers az cloud register (msrestazure reads
// authentication.loginEndpoint and audiences[0]). Any api-version.
func (i *Issuer) serveMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"galleryEndpoint": i.publicURL + "gallery/",
		"graphEndpoint":   i.publicURL + "graph/",
		"portalEndpoint":  i.publicURL + "portal/",
		"authentication": map[string]any{
			"loginEndpoint": i.publicURL + "adfs",
			"audiences":     []string{i.audience},
		},
	})
}

// oidcConfig is an OpenID Provider Metadata document. MSAL needs
// authorization_endpoint and token_endpoint, and MSAL for Go also an issuer
// on the authority's scheme and host.
type oidcConfig struct {
	Issuer                 string   `json:"issuer"`
	AuthorizationEndpoint  string   `json:"authorization_endpoint"`
	TokenEndpoint          string   `json:"token_endpoint"`
	JWKSURI                string   `json:"jwks_uri"`
	ResponseTypes          []string `json:"response_types_supported"`
	SubjectTypes           []string `json:"subject_types_supported"`
	SigningAlgs            []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMeths []string `json:"token_endpoint_auth_methods_supported"`
	GrantTypes             []string `json:"grant_types_supported"`
	ScopesSupported        []string `json:"scopes_supported"`
	CodeChallengeMethods   []string `json:"code_challenge_methods_supported"`
}

func (i *Issuer) oidcConfig(issuer, base string) oidcConfig {
	return oidcConfig{
		Issuer:                 issuer,
		AuthorizationEndpoint:  base + "/authorize",
		TokenEndpoint:          base + "/token",
		ResponseTypes:          []string{"code", "id_token", "code id_token", "token id_token", "token"},
		SubjectTypes:           []string{"pairwise"},
		SigningAlgs:            []string{"RS256"},
		TokenEndpointAuthMeths: []string{"client_secret_post", "client_secret_basic", "private_key_jwt"},
		GrantTypes:             []string{"client_credentials", "password", "authorization_code"},
		CodeChallengeMethods:   []string{"S256"},
		ScopesSupported:        []string{"openid", "profile", "offline_access"},
	}
}

func (i *Issuer) serveADFSConfig(w http.ResponseWriter, r *http.Request) {
	c := i.oidcConfig(i.issuer, i.publicURL+"adfs/oauth2")
	c.JWKSURI = i.publicURL + "adfs/discovery/keys"
	writeJSON(w, http.StatusOK, c)
}

// serveTenantConfig is the Entra-style discovery document MSAL for Go reads
// for an authority https://host/{tenant} when instance discovery is off
// (MSAL resolvers.go). MSAL checks only that the issuer has the authority's
// scheme and host (authority.go ValidateIssuerMatchesAuthority); the
// assertion audience it signs for is token_endpoint. The issuer follows
// Entra's v2.0 form; tokens themselves always carry the AD FS issuer, as v1
// tokens from Entra carry sts.windows.net whatever endpoint issued them.
func (i *Issuer) serveTenantConfig(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !i.knownTenant(tenant) {
		writeOAuthError(w, &oauthError{status: http.StatusBadRequest, Code: "invalid_tenant",
			Description: fmt.Sprintf("Tenant '%s' not found. This control plane's tenant is '%s'.", tenant, i.tenantID)})
		return
	}
	c := i.oidcConfig(i.tenantIssuer, i.publicURL+tenant+"/oauth2/v2.0")
	c.JWKSURI = i.publicURL + tenant + "/discovery/v2.0/keys"
	writeJSON(w, http.StatusOK, c)
}

func (i *Issuer) serveTenantJWKS(w http.ResponseWriter, r *http.Request) {
	if !i.knownTenant(r.PathValue("tenant")) {
		http.NotFound(w, r)
		return
	}
	i.serveJWKS(w, r)
}

func (i *Issuer) serveTenantAuthorize(w http.ResponseWriter, r *http.Request) {
	if !i.knownTenant(r.PathValue("tenant")) {
		writeSignInError(w, fmt.Sprintf("Tenant '%s' not found. This control plane's tenant is '%s'.", r.PathValue("tenant"), i.tenantID))
		return
	}
	i.serveAuthorize(w, r)
}

func (i *Issuer) serveTenantToken(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !i.knownTenant(tenant) {
		writeOAuthError(w, &oauthError{status: http.StatusBadRequest, Code: "invalid_tenant",
			Description: fmt.Sprintf("Tenant '%s' not found. This control plane's tenant is '%s'.", tenant, i.tenantID)})
		return
	}
	i.serveToken(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain data is written here; a failure is a programming error.
		panic(fmt.Sprintf("identity: encode %T: %v", v, err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
