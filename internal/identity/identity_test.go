package identity

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/store/storetest"
)

const (
	testAudience = "https://management.citadel.local/"
	testTenant   = "11111111-2222-3333-4444-555555555555"
)

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is an Issuer on a real etcd behind an HTTPS test server.
type fixture struct {
	st    *store.Store
	iss   *Issuer
	srv   *httptest.Server
	clock *clock
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newFixture(t testing.TB, mod ...func(*Config)) *fixture {
	t.Helper()
	st := storetest.Start(t)
	return newFixtureOn(t, st, newClock(), mod...)
}

// newFixtureOn starts another server (a replica) on st.
func newFixtureOn(t testing.TB, st *store.Store, clk *clock, mod ...func(*Config)) *fixture {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	cfg := Config{
		Store:     st,
		PublicURL: srv.URL + "/",
		Audience:  testAudience,
		TenantID:  testTenant,
		Now:       clk.Now,
		Logger:    testLogger(t),
	}
	for _, m := range mod {
		m(&cfg)
	}
	iss, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	iss.Routes(mux)
	return &fixture{st: st, iss: iss, srv: srv, clock: clk}
}

// get fetches path and decodes the JSON answer.
func (f *fixture) get(t testing.TB, path string) (int, map[string]any) {
	t.Helper()
	resp, err := f.srv.Client().Get(f.srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return decode(t, resp)
}

// postToken posts form to the token endpoint path, with HTTP Basic if
// basic is not nil.
func (f *fixture) postToken(t testing.TB, path string, form url.Values, basic []string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return decode(t, resp)
}

func decode(t testing.TB, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", resp.Request.Method, resp.Request.URL.Path, b, err)
	}
	return resp.StatusCode, m
}

// token asks for a token and fails the test unless one is issued.
func (f *fixture) token(t testing.TB, form url.Values) string {
	t.Helper()
	status, body := f.postToken(t, "/adfs/oauth2/token", form, nil)
	if status != http.StatusOK {
		t.Fatalf("token request = %d %v, want 200", status, body)
	}
	tok, _ := body["access_token"].(string)
	return tok
}

func (f *fixture) secretForm(appID, secret string) url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {appID},
		"client_secret": {secret},
		"scope":         {testAudience + "/.default"},
	}
}

func TestNewConfig(t *testing.T) {
	st := storetest.Start(t)
	good := Config{Store: st, PublicURL: "https://127.0.0.1:8443/", Audience: testAudience, TenantID: testTenant}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"good", func(*Config) {}, true},
		{"no trailing slash", func(c *Config) { c.PublicURL = "https://127.0.0.1:8443" }, true},
		{"no store", func(c *Config) { c.Store = nil }, false},
		{"relative URL", func(c *Config) { c.PublicURL = "/x/" }, false},
		{"URL with path", func(c *Config) { c.PublicURL = "https://h/citadel/" }, false},
		{"ftp URL", func(c *Config) { c.PublicURL = "ftp://h/" }, false},
		{"no audience", func(c *Config) { c.Audience = "" }, false},
		{"no tenant", func(c *Config) { c.TenantID = "" }, false},
		{"tenant with slash", func(c *Config) { c.TenantID = "a/b" }, false},
		{"negative lifetime", func(c *Config) { c.TokenLifetime = -time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			i, err := New(cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New() error = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && (i.lifetime != DefaultTokenLifetime || i.rotation != DefaultKeyRotation || i.Issuer() != "https://127.0.0.1:8443/adfs") {
				t.Errorf("New() defaults = %v, %v, %q", i.lifetime, i.rotation, i.Issuer())
			}
		})
	}
}

func TestMetadataEndpoints(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"?api-version=2015-01-01", "?api-version=2022-09-01", ""} {
		status, body := f.get(t, "/metadata/endpoints"+q)
		base := f.srv.URL + "/"
		want := map[string]any{
			"galleryEndpoint": base + "gallery/",
			"graphEndpoint":   base + "graph/",
			"portalEndpoint":  base + "portal/",
			"authentication": map[string]any{
				"loginEndpoint": base + "adfs",
				"audiences":     []any{testAudience},
			},
		}
		if status != 200 {
			t.Errorf("GET /metadata/endpoints%s = %d", q, status)
		}
		if d := cmp.Diff(want, body); d != "" {
			t.Errorf("GET /metadata/endpoints%s (-want +got):\n%s", q, d)
		}
	}
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t)
	base := f.srv.URL + "/"
	tests := []struct {
		path                     string
		status                   int
		issuer, token, authorize string
		jwks                     string
	}{
		{"/adfs/.well-known/openid-configuration", 200, base + "adfs", base + "adfs/oauth2/token", base + "adfs/oauth2/authorize", base + "adfs/discovery/keys"},
		{"/" + testTenant + "/v2.0/.well-known/openid-configuration", 200, base + testTenant + "/v2.0",
			base + testTenant + "/oauth2/v2.0/token", base + testTenant + "/oauth2/v2.0/authorize", base + testTenant + "/discovery/v2.0/keys"},
		{"/" + strings.ToUpper(testTenant) + "/v2.0/.well-known/openid-configuration", 200, base + testTenant + "/v2.0",
			base + strings.ToUpper(testTenant) + "/oauth2/v2.0/token", base + strings.ToUpper(testTenant) + "/oauth2/v2.0/authorize",
			base + strings.ToUpper(testTenant) + "/discovery/v2.0/keys"},
		{"/organizations/v2.0/.well-known/openid-configuration", 200, base + testTenant + "/v2.0",
			base + "organizations/oauth2/v2.0/token", base + "organizations/oauth2/v2.0/authorize", base + "organizations/discovery/v2.0/keys"},
		{"/common/v2.0/.well-known/openid-configuration", 200, base + testTenant + "/v2.0",
			base + "common/oauth2/v2.0/token", base + "common/oauth2/v2.0/authorize", base + "common/discovery/v2.0/keys"},
		{"/99999999-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration", 400, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := f.get(t, tt.path)
			if status != tt.status {
				t.Fatalf("GET %s = %d %v, want %d", tt.path, status, body, tt.status)
			}
			if status != 200 {
				if body["error"] != "invalid_tenant" {
					t.Errorf("GET %s error = %v, want invalid_tenant", tt.path, body["error"])
				}
				return
			}
			got := map[string]any{"issuer": body["issuer"], "token_endpoint": body["token_endpoint"],
				"authorization_endpoint": body["authorization_endpoint"], "jwks_uri": body["jwks_uri"]}
			want := map[string]any{"issuer": tt.issuer, "token_endpoint": tt.token, "authorization_endpoint": tt.authorize, "jwks_uri": tt.jwks}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("GET %s (-want +got):\n%s", tt.path, d)
			}
			for k, v := range map[string]any{
				"id_token_signing_alg_values_supported": []any{"RS256"},
				"token_endpoint_auth_methods_supported": []any{"client_secret_post", "client_secret_basic", "private_key_jwt"},
				"grant_types_supported":                 []any{"client_credentials", "password", "authorization_code"},
				"code_challenge_methods_supported":      []any{"S256"},
			} {
				if d := cmp.Diff(v, body[k]); d != "" {
					t.Errorf("GET %s %s (-want +got):\n%s", tt.path, k, d)
				}
			}
			for _, k := range []string{"response_types_supported", "subject_types_supported"} {
				if _, ok := body[k].([]any); !ok {
					t.Errorf("GET %s has no %s", tt.path, k)
				}
			}
			// The JWKS it points to answers.
			u, _ := url.Parse(tt.jwks)
			if status, keys := f.get(t, u.Path); status != 200 || len(keys["keys"].([]any)) == 0 {
				t.Errorf("GET %s = %d %v", u.Path, status, keys)
			}
		})
	}
}

func TestRouteMethods(t *testing.T) {
	f := newFixture(t)
	resp, err := f.srv.Client().Get(f.srv.URL + "/adfs/oauth2/token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /adfs/oauth2/token = %d, want 405", resp.StatusCode)
	}
}
