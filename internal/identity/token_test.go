package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/store"
)

func TestClientSecret(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	sp, secret, err := f.iss.CreateServicePrincipal(ctx, "deployer")
	if err != nil {
		t.Fatalf("CreateServicePrincipal: %v", err)
	}
	other, _, err := f.iss.CreateServicePrincipal(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	aud := strings.TrimSuffix(testAudience, "/")
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for j := 0; j < len(kv); j += 2 {
			v.Set(kv[j], kv[j+1])
		}
		return v
	}
	// The body az 2.45 sends (wire trace line 3).
	azBody := "client_id=" + sp.AppID + "&grant_type=client_credentials&client_info=1&client_secret=" + url.QueryEscape(secret) +
		"&claims=%7B%22access_token%22%3A+%7B%22xms_cc%22%3A+%7B%22values%22%3A+%5B%22CP1%22%5D%7D%7D%7D&scope=" +
		url.QueryEscape(testAudience+"/.default")
	azForm, err := url.ParseQuery(azBody)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		form   url.Values
		basic  []string
		status int
		err    string // OAuth error code
	}{
		{"az wire trace", "/adfs/oauth2/token", azForm, nil, 200, ""},
		{"post", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "scope", aud+"/.default"), nil, 200, ""},
		{"basic", "/adfs/oauth2/token", form("grant_type", "client_credentials", "scope", aud+"/.default"), []string{sp.AppID, secret}, 200, ""},
		{"basic with client_id", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "scope", aud+"/.default"), []string{sp.AppID, secret}, 200, ""},
		{"MSAL Go scopes", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "scope", testAudience+"/.default openid offline_access profile"), nil, 200, ""},
		{"upper-case app ID", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", strings.ToUpper(sp.AppID), "client_secret", secret, "scope", aud+"/.default"), nil, 200, ""},
		{"v1 resource", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "resource", testAudience), nil, 200, ""},
		{"no scope", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret), nil, 200, ""},
		{"tenant endpoint", "/" + testTenant + "/oauth2/v2.0/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "scope", aud+"/.default"), nil, 200, ""},
		{"organizations endpoint", "/organizations/oauth2/v2.0/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "scope", aud+"/.default"), nil, 200, ""},
		{"unknown tenant endpoint", "/22222222-2222-3333-4444-555555555555/oauth2/v2.0/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "scope", aud+"/.default"), nil, 400, "invalid_tenant"},
		{"wrong secret", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret+"x", "scope", aud+"/.default"), nil, 401, "invalid_client"},
		{"other's secret", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", other.AppID, "client_secret", secret, "scope", aud+"/.default"), nil, 401, "invalid_client"},
		{"wrong basic secret", "/adfs/oauth2/token", form("grant_type", "client_credentials", "scope", aud+"/.default"), []string{sp.AppID, "nope"}, 401, "invalid_client"},
		{"unknown client", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", "00000000-0000-0000-0000-000000000000", "client_secret", secret, "scope", aud+"/.default"), nil, 401, "invalid_client"},
		{"client not a UUID", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", "../users/x", "client_secret", secret), nil, 401, "invalid_client"},
		{"no credential", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "scope", aud+"/.default"), nil, 401, "invalid_client"},
		{"no client_id", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_secret", secret), nil, 400, "invalid_request"},
		{"basic and post", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_secret", secret), []string{sp.AppID, secret}, 400, "invalid_request"},
		{"basic and other client_id", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", other.AppID), []string{sp.AppID, secret}, 400, "invalid_request"},
		{"secret and assertion", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "client_assertion_type", assertionType, "client_assertion", "x.y.z"), nil, 400, "invalid_request"},
		{"other audience", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "scope", "https://graph.microsoft.com/.default"), nil, 400, "invalid_scope"},
		{"not .default", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "scope", aud+"/user_impersonation"), nil, 400, "invalid_scope"},
		{"other resource", "/adfs/oauth2/token", form("grant_type", "client_credentials", "client_id", sp.AppID, "client_secret", secret, "resource", "https://vault.local/"), nil, 400, "invalid_resource"},
		{"no grant type", "/adfs/oauth2/token", form("client_id", sp.AppID, "client_secret", secret), nil, 400, "invalid_request"},
		{"refresh grant", "/adfs/oauth2/token", form("grant_type", "refresh_token", "refresh_token", "x"), nil, 400, "unsupported_grant_type"},
		{"repeated parameter", "/adfs/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID, other.AppID}, "client_secret": {secret}}, nil, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.postToken(t, tt.path, tt.form, tt.basic)
			if status != tt.status || (tt.err != "" && body["error"] != tt.err) {
				t.Fatalf("POST %s = %d %v, want %d %s", tt.path, status, body, tt.status, tt.err)
			}
			if status != 200 {
				if _, ok := body["error_description"].(string); !ok {
					t.Errorf("error response %v has no error_description", body)
				}
				if bytes.Contains(mustJSON(t, body), []byte(secret)) {
					t.Errorf("error response %v contains the secret", body)
				}
				return
			}
			want := map[string]any{"token_type": "Bearer", "expires_in": 3600.0, "ext_expires_in": 3600.0}
			got := map[string]any{"token_type": body["token_type"], "expires_in": body["expires_in"], "ext_expires_in": body["ext_expires_in"]}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("token response (-want +got):\n%s", d)
			}
			tok := body["access_token"].(string)
			p, err := f.iss.Validate(t.Context(), tok)
			if err != nil {
				t.Fatalf("Validate(issued token) = %v", err)
			}
			wantP := Principal{ObjectID: sp.ObjectID, TenantID: testTenant, AppID: sp.AppID, Name: "deployer", Type: TypeServicePrincipal}
			if d := cmp.Diff(wantP, p); d != "" {
				t.Errorf("Validate() principal (-want +got):\n%s", d)
			}
			c := tokenClaims(t, tok)
			for k, v := range map[string]any{
				"aud": testAudience, "iss": f.srv.URL + "/adfs", "tid": testTenant, "oid": sp.ObjectID, "sub": sp.ObjectID,
				"appid": sp.AppID, "idtyp": "app", "ver": "1.0", "appidacr": "1",
			} {
				if c[k] != v {
					t.Errorf("claim %s = %v, want %v", k, c[k], v)
				}
			}
			if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 3600 || c["nbf"] != c["iat"] {
				t.Errorf("claims iat %v nbf %v exp %v, want exp = iat + 3600 = nbf + 3600", iat, c["nbf"], exp)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tokenClaims decodes a JWT's payload without checking it.
func tokenClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func tokenHeader(t testing.TB, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSecretStorage(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	sp, secret, err := f.iss.CreateServicePrincipal(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 40 || strings.Trim(secret, secretAlphabet) != "" || secret[0] == '-' {
		t.Errorf("secret %q is not 40 URL-safe characters starting alphanumerically", secret)
	}
	id2, secret2, err := f.iss.AddSecret(ctx, sp.AppID, time.Time{})
	if err != nil {
		t.Fatalf("AddSecret: %v", err)
	}
	if _, err := f.iss.CreateUser(ctx, "alice@citadel.local", "Alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	page, err := f.st.List(ctx, "identity/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range page.KVs {
		for _, s := range []string{secret, secret2, "correct horse battery"} {
			if bytes.Contains(kv.Value, []byte(s)) {
				t.Errorf("store key %s holds a plaintext secret", kv.Key)
			}
		}
	}
	it, err := servicePrincipals.Get(ctx, f.st, sp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	phcRE := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if len(it.Value.SecretHashes) != 2 {
		t.Fatalf("stored secrets = %d, want 2", len(it.Value.SecretHashes))
	}
	for _, h := range it.Value.SecretHashes {
		if !phcRE.MatchString(h.Hash) {
			t.Errorf("stored hash %q is not an argon2id PHC string", h.Hash)
		}
	}
	u, err := users.Get(ctx, f.st, "alice@citadel.local")
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(u.Value.PasswordHash) {
		t.Errorf("stored password hash %q is not an argon2id PHC string", u.Value.PasswordHash)
	}
	got, err := f.iss.GetServicePrincipal(ctx, sp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Secrets) != 2 || got.Secrets[1].ID != id2 || got.Secrets[1].Hint != secret2[:3] {
		t.Errorf("GetServicePrincipal().Secrets = %+v", got.Secrets)
	}
	// Both secrets work.
	for _, s := range []string{secret, secret2} {
		f.token(t, f.secretForm(sp.AppID, s))
	}
}

func TestSecretExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	sp, secret, err := f.iss.CreateServicePrincipal(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.iss.AddSecret(ctx, sp.AppID, f.clock.Now().Add(-time.Minute)); err == nil {
		t.Errorf("AddSecret(expired) succeeded")
	}
	if _, _, err := f.iss.AddSecret(ctx, "00000000-0000-0000-0000-000000000000", time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddSecret(unknown app) = %v, want ErrNotFound", err)
	}
	_, short, err := f.iss.AddSecret(ctx, sp.AppID, f.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f.token(t, f.secretForm(sp.AppID, short))
	f.clock.Advance(time.Hour)
	status, body := f.postToken(t, "/adfs/oauth2/token", f.secretForm(sp.AppID, short), nil)
	if status != 401 || body["error"] != "invalid_client" || !strings.Contains(body["error_description"].(string), "expired") {
		t.Errorf("token with expired secret = %d %v, want 401 invalid_client ... expired", status, body)
	}
	f.token(t, f.secretForm(sp.AppID, secret)) // the one without expiry still works
}

func TestPasswordGrant(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	u, err := f.iss.CreateUser(ctx, "Alice@Citadel.Local", "Alice Liddell", "correct horse battery")
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	const azClient = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
	form := func(user, pw, scope string) url.Values {
		return url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}, "client_id": {azClient},
			"client_info": {"1"}, "scope": {scope}}
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		err    string
		idTok  bool
	}{
		{"good", form("alice@citadel.local", "correct horse battery", testAudience+"/.default"), 200, "", false},
		{"openid", form("ALICE@citadel.local", "correct horse battery", testAudience+"/.default openid offline_access profile"), 200, "", true},
		{"wrong password", form("alice@citadel.local", "correct horse battery!", testAudience+"/.default"), 400, "invalid_grant", false},
		{"unknown user", form("bob@citadel.local", "correct horse battery", testAudience+"/.default"), 400, "invalid_grant", false},
		{"bad upn", form("bob", "correct horse battery", testAudience+"/.default"), 400, "invalid_grant", false},
		{"no password", url.Values{"grant_type": {"password"}, "username": {"alice@citadel.local"}}, 400, "invalid_request", false},
		{"wrong scope", form("alice@citadel.local", "correct horse battery", "https://other/.default"), 400, "invalid_scope", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.postToken(t, "/adfs/oauth2/token", tt.form, nil)
			if status != tt.status || (tt.err != "" && body["error"] != tt.err) {
				t.Fatalf("POST = %d %v, want %d %s", status, body, tt.status, tt.err)
			}
			if status != 200 {
				return
			}
			tok := body["access_token"].(string)
			p, err := f.iss.Validate(t.Context(), tok)
			if err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			want := Principal{ObjectID: u.ObjectID, TenantID: testTenant, AppID: azClient, Name: "Alice@Citadel.Local", Type: TypeUser}
			if d := cmp.Diff(want, p); d != "" {
				t.Errorf("Validate() principal (-want +got):\n%s", d)
			}
			c := tokenClaims(t, tok)
			for k, v := range map[string]any{"idtyp": "user", "upn": "Alice@Citadel.Local", "unique_name": "Alice@Citadel.Local", "name": "Alice Liddell", "appid": azClient} {
				if c[k] != v {
					t.Errorf("claim %s = %v, want %v", k, c[k], v)
				}
			}
			idt, ok := body["id_token"].(string)
			if ok != tt.idTok {
				t.Fatalf("id_token present = %v, want %v", ok, tt.idTok)
			}
			if ok {
				ic := tokenClaims(t, idt)
				if ic["aud"] != azClient || ic["preferred_username"] != "Alice@Citadel.Local" || ic["oid"] != u.ObjectID {
					t.Errorf("id_token claims = %v", ic)
				}
				if _, err := f.iss.Validate(t.Context(), idt); err == nil {
					t.Errorf("Validate(id_token) succeeded; an id token is not an access token")
				}
			}
		})
	}
}

func TestCreateUser(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	tests := []struct {
		name, upn, pw string
		ok            bool
	}{
		{"good", "carol@citadel.local", "twelve chars", true},
		{"duplicate in other case", "CAROL@citadel.local", "twelve chars", false},
		{"short password", "dave@citadel.local", "eleven char", false},
		{"no domain", "dave", "twelve chars", false},
		{"slash", "da/ve@citadel.local", "twelve chars", false},
		{"space", "da ve@citadel.local", "twelve chars", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := f.iss.CreateUser(ctx, tt.upn, "", tt.pw)
			if (err == nil) != tt.ok {
				t.Fatalf("CreateUser(%q, %q) = %v, want ok=%v", tt.upn, tt.pw, err, tt.ok)
			}
			if !tt.ok {
				return
			}
			got, err := f.iss.GetUser(ctx, strings.ToUpper(tt.upn))
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			if d := cmp.Diff(u, got); d != "" {
				t.Errorf("GetUser (-create +get):\n%s", d)
			}
		})
	}
	if _, err := f.iss.GetUser(ctx, "nobody@citadel.local"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(missing) = %v, want ErrNotFound", err)
	}
	if _, err := f.iss.CreateUser(ctx, "carol@citadel.local", "", "twelve chars"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateUser(duplicate) = %v, want ErrConflict", err)
	}
	if _, _, err := f.iss.CreateServicePrincipal(ctx, "  "); !isARM(err, http.StatusBadRequest, arm.CodeBadRequest) {
		t.Errorf("CreateServicePrincipal(blank) = %v, want 400 BadRequest", err)
	}
	if _, err := f.iss.GetServicePrincipal(ctx, "not-a-uuid"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetServicePrincipal(not a UUID) = %v, want ErrNotFound", err)
	}
}

func isARM(err error, status int, code string) bool {
	e, ok := errors.AsType[*arm.Error](err)
	return ok && e.Status == status && e.Code == code
}

func TestGroupsClaim(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	var all []string // maxGroupClaims+1 groups
	for j := range maxGroupClaims + 1 {
		g, err := f.iss.CreateGroup(ctx, fmt.Sprintf("g%d", j))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, g.ObjectID)
	}
	tests := []struct {
		name     string
		n        int // the principal is a member of the first n groups
		overflow bool
	}{
		{"none", 0, false},
		{"few", 2, false},
		{"exactly the limit", maxGroupClaims, false},
		{"overflow", maxGroupClaims + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, secret, err := f.iss.CreateServicePrincipal(ctx, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range all[:tt.n] {
				if err := f.iss.AddMember(ctx, g, sp.ObjectID); err != nil {
					t.Fatal(err)
				}
			}
			var want []string
			if !tt.overflow && tt.n > 0 {
				want = slices.Sorted(slices.Values(all[:tt.n]))
			}
			tok := f.token(t, f.secretForm(sp.AppID, secret))
			p, err := f.iss.Validate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, p.Groups, cmpopts.EquateEmpty()); d != "" || p.HasGroupOverflow != tt.overflow {
				t.Errorf("Validate() groups (-want +got):\n%s overflow = %v, want %v", d, p.HasGroupOverflow, tt.overflow)
			}
			if c := tokenClaims(t, tok); (c["hasgroups"] == true) != tt.overflow {
				t.Errorf("claim hasgroups = %v, want %v", c["hasgroups"], tt.overflow)
			}
		})
	}
}

// TestGroupsOf follows nested groups, ignores cycles and stops at
// maxNesting levels.
func TestGroupsOf(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	chain := make([]Group, maxNesting+2) // chain[0] ∋ principal, chain[k+1] ∋ chain[k]
	for k := range chain {
		g, err := f.iss.CreateGroup(ctx, fmt.Sprintf("level-%d", k))
		if err != nil {
			t.Fatal(err)
		}
		chain[k] = g
	}
	const principal = "11111111-2222-3333-4444-555555555555"
	if err := f.iss.AddMember(ctx, chain[0].ObjectID, principal); err != nil {
		t.Fatal(err)
	}
	for k := 1; k < len(chain); k++ {
		if err := f.iss.AddMember(ctx, chain[k].ObjectID, chain[k-1].ObjectID); err != nil {
			t.Fatal(err)
		}
	}
	// A cycle back to the first group changes nothing.
	if err := f.iss.AddMember(ctx, chain[0].ObjectID, chain[len(chain)-1].ObjectID); err != nil {
		t.Fatal(err)
	}
	if err := f.iss.AddMember(ctx, chain[0].ObjectID, chain[0].ObjectID); err == nil {
		t.Error("AddMember(group, itself) = nil, want an error")
	}
	got, err := f.iss.GroupsOf(ctx, principal)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, g := range chain[:maxNesting] {
		want = append(want, g.ObjectID)
	}
	slices.Sort(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GroupsOf(principal) mismatch (-want +got), want the first %d levels:\n%s", maxNesting, d)
	}
}

// testCert makes a certificate for key, valid until notAfter.
func testCert(t testing.TB, key crypto.Signer, notAfter time.Time) (*x509.Certificate, []byte) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "sp-cert"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// assertion makes a client assertion as MSAL does.
func assertion(t testing.TB, method jwt.SigningMethod, key crypto.Signer, cert *x509.Certificate, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	switch method.Alg() {
	case "RS256": // MSAL for AD FS: SHA-1 thumbprint in standard base64
		sum := sha1.Sum(cert.Raw)
		tok.Header["x5t"] = base64.StdEncoding.EncodeToString(sum[:])
	default:
		sum := sha256.Sum256(cert.Raw)
		tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
	}
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClientAssertion(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	sp, _, err := f.iss.CreateServicePrincipal(ctx, "cert-app")
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	strangerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	rsaCert, rsaPEM := testCert(t, rsaKey, now.Add(48*time.Hour))
	ecCert, ecPEM := testCert(t, ecKey, now.Add(48*time.Hour))
	strangerCert, _ := testCert(t, strangerKey, now.Add(48*time.Hour))
	for _, p := range [][]byte{append(rsaPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")...), ecPEM, rsaPEM} {
		if err := f.iss.AddCertificate(ctx, sp.AppID, p); err != nil {
			t.Fatalf("AddCertificate: %v", err)
		}
	}
	got, err := f.iss.GetServicePrincipal(ctx, sp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certificates) != 2 || got.Certificates[0].Thumbprint != thumbprintSHA1(rsaCert.Raw) {
		t.Errorf("certificates = %+v, want the RSA and EC ones once each", got.Certificates)
	}

	tokenURL := f.srv.URL + "/adfs/oauth2/token"
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"aud": tokenURL, "iss": sp.AppID, "sub": sp.AppID, "jti": "1",
			"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name      string
		assertion string
		clientID  string
		status    int
	}{
		{"RS256 x5t", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(nil), nil), sp.AppID, 200},
		{"PS256 x5t#S256", assertion(t, jwt.SigningMethodPS256, rsaKey, rsaCert, claims(nil), nil), sp.AppID, 200},
		{"ES256", assertion(t, jwt.SigningMethodES256, ecKey, ecCert, claims(nil), nil), sp.AppID, 200},
		{"no thumbprint", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(nil), map[string]any{"x5t": nil}), sp.AppID, 200},
		{"base64url thumbprint", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(nil), map[string]any{"x5t": base64.RawURLEncoding.EncodeToString(func() []byte { s := sha1.Sum(rsaCert.Raw); return s[:] }())}), sp.AppID, 200},
		{"no client_id", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(nil), nil), "", 200},
		{"aud with slash", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { c["aud"] = tokenURL + "/" }), nil), sp.AppID, 200},
		{"aud tenant endpoint", assertion(t, jwt.SigningMethodPS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { c["aud"] = f.srv.URL + "/" + testTenant + "/oauth2/v2.0/token" }), nil), sp.AppID, 200},
		{"aud list", assertion(t, jwt.SigningMethodPS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", tokenURL} }), nil), sp.AppID, 200},
		{"wrong aud", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { c["aud"] = "https://login.microsoftonline.com/x/oauth2/v2.0/token" }), nil), sp.AppID, 401},
		{"expired", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), nil), sp.AppID, 401},
		{"no exp", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { delete(c, "exp") }), nil), sp.AppID, 401},
		{"not yet valid", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), nil), sp.AppID, 401},
		{"wrong iss", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { c["iss"] = "someone" }), nil), sp.AppID, 401},
		{"wrong sub", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) { c["sub"] = "someone" }), nil), sp.AppID, 401},
		{"other client_id", assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(nil), nil), "00000000-0000-0000-0000-000000000000", 401},
		{"unregistered cert", assertion(t, jwt.SigningMethodRS256, strangerKey, strangerCert, claims(nil), nil), sp.AppID, 401},
		{"unregistered key, registered x5t", assertion(t, jwt.SigningMethodRS256, strangerKey, rsaCert, claims(nil), nil), sp.AppID, 401},
		{"HS256", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
			s, _ := tok.SignedString(rsaCert.Raw)
			return s
		}(), sp.AppID, 401},
		{"alg none", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), sp.AppID, 401},
		{"garbage", "x.y.z", sp.AppID, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionType},
				"client_assertion": {tt.assertion}, "scope": {testAudience + "/.default"}, "client_info": {"1"}}
			if tt.clientID != "" {
				form.Set("client_id", tt.clientID)
			}
			status, body := f.postToken(t, "/adfs/oauth2/token", form, nil)
			if status != tt.status {
				t.Fatalf("POST = %d %v, want %d", status, body, tt.status)
			}
			if status != 200 {
				if body["error"] != "invalid_client" {
					t.Errorf("error = %v, want invalid_client", body["error"])
				}
				return
			}
			p, err := f.iss.Validate(t.Context(), body["access_token"].(string))
			if err != nil || p.AppID != sp.AppID || p.ObjectID != sp.ObjectID {
				t.Errorf("Validate() = %+v, %v", p, err)
			}
			if c := tokenClaims(t, body["access_token"].(string)); c["appidacr"] != "2" {
				t.Errorf("claim appidacr = %v, want 2", c["appidacr"])
			}
		})
	}
	t.Run("wrong assertion type", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_assertion_type": {"saml"},
			"client_assertion": {tests[0].assertion}}
		if status, body := f.postToken(t, "/adfs/oauth2/token", form, nil); status != 400 || body["error"] != "invalid_request" {
			t.Errorf("POST = %d %v, want 400 invalid_request", status, body)
		}
	})
	t.Run("expired certificate", func(t *testing.T) {
		a := assertion(t, jwt.SigningMethodRS256, rsaKey, rsaCert, claims(func(c jwt.MapClaims) {
			c["exp"] = now.Add(72 * time.Hour).Unix()
		}), nil)
		f.clock.Advance(49 * time.Hour)
		defer f.clock.Advance(-49 * time.Hour)
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_assertion_type": {assertionType}, "client_assertion": {a}}
		if status, body := f.postToken(t, "/adfs/oauth2/token", form, nil); status != 401 {
			t.Errorf("POST with expired certificate = %d %v, want 401", status, body)
		}
	})
}

func TestAddCertificate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	sp, _, err := f.iss.CreateServicePrincipal(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	good, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, smallPEM := testCert(t, small, now.Add(time.Hour))
	_, p384PEM := testCert(t, p384, now.Add(time.Hour))
	_, expiredPEM := testCert(t, good, now.Add(-time.Minute))
	_, goodPEM := testCert(t, good, now.Add(time.Hour))
	tests := []struct {
		name  string
		appID string
		pem   []byte
		ok    bool
	}{
		{"good", sp.AppID, goodPEM, true},
		{"not PEM", sp.AppID, []byte("hello"), false},
		{"key only", sp.AppID, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), false},
		{"RSA 1024", sp.AppID, smallPEM, false},
		{"P-384", sp.AppID, p384PEM, false},
		{"expired", sp.AppID, expiredPEM, false},
		{"unknown app", "00000000-0000-0000-0000-000000000000", goodPEM, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.iss.AddCertificate(ctx, tt.appID, tt.pem); (err == nil) != tt.ok {
				t.Errorf("AddCertificate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
