package identity

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/arm"
)

// signRaw signs header and claims with key, as a forger (or another issuer)
// would.
func signRaw(t testing.TB, key *rsa.PrivateKey, header, claims any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// mint signs claims with the issuer's active key, after mod changes them.
func (f *fixture) mint(t testing.TB, mod func(*claims)) string {
	t.Helper()
	c := f.iss.baseClaims("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", nil)
	c.IDType = "app"
	c.AppID = "ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee"
	if mod != nil {
		mod(c)
	}
	tok, _, err := f.iss.signJWT(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestValidate(t *testing.T) {
	f := newFixture(t)
	good := f.mint(t, nil)
	kid := tokenHeader(t, good)["kid"].(string)
	ks := f.iss.keys.Load()
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var goodClaims map[string]any
	json.Unmarshal(payload, &goodClaims)
	withClaim := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range goodClaims {
			m[k] = v
		}
		m[k] = v
		return m
	}
	now := f.clock.Now()
	const (
		invalid = "The access token is invalid."
	)
	tests := []struct {
		name    string
		token   string
		code    string // "" = valid
		message string // prefix of the error message
	}{
		{"good", good, "", ""},
		{"empty", "", arm.CodeAuthenticationFailed, "Authentication failed. The 'Authorization' header is missing."},
		{"garbage", "garbage", arm.CodeInvalidAuthenticationToken, invalid},
		{"four parts", good + ".x", arm.CodeInvalidAuthenticationToken, invalid},
		{"forged payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, withClaim("oid", "attacker"))) + "." + parts[2], arm.CodeInvalidAuthenticationToken, invalid},
		{"forged signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 256)), arm.CodeInvalidAuthenticationToken, invalid},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:40], arm.CodeInvalidAuthenticationToken, invalid},
		{"padded signature", good + "==", arm.CodeInvalidAuthenticationToken, invalid},
		{"other key, known kid", signRaw(t, stranger, map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}, goodClaims), arm.CodeInvalidAuthenticationToken, invalid},
		{"unknown kid", signRaw(t, stranger, map[string]any{"alg": "RS256", "kid": "stranger", "typ": "JWT"}, goodClaims), arm.CodeInvalidAuthenticationToken, invalid},
		{"no kid", signRaw(t, stranger, map[string]any{"alg": "RS256", "typ": "JWT"}, goodClaims), arm.CodeInvalidAuthenticationToken, invalid},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+kid+`"}`)) + "." + parts[1] + ".", arm.CodeInvalidAuthenticationToken, invalid},
		{"alg PS256", signRaw(t, ks.active().priv, map[string]any{"alg": "PS256", "kid": kid}, goodClaims), arm.CodeInvalidAuthenticationToken, invalid},
		{"wrong audience", f.mint(t, func(c *claims) { c.Aud = "https://management.azure.com/" }), arm.CodeInvalidAuthenticationToken,
			"The access token has been obtained for wrong audience or resource 'https://management.azure.com/'. It should exactly match with one of the allowed audiences 'https://management.citadel.local/','https://management.citadel.local'."},
		{"audience without slash", f.mint(t, func(c *claims) { c.Aud = strings.TrimSuffix(testAudience, "/") }), "", ""},
		{"audience with two slashes", f.mint(t, func(c *claims) { c.Aud = testAudience + "/" }), arm.CodeInvalidAuthenticationToken, "The access token has been obtained for wrong audience"},
		{"wrong issuer", f.mint(t, func(c *claims) { c.Iss = "https://evil.example/adfs" }), arm.CodeInvalidAuthenticationToken, "The access token is from the wrong issuer 'https://evil.example/adfs'."},
		{"tenant issuer", f.mint(t, func(c *claims) { c.Iss = f.srv.URL + "/" + testTenant + "/v2.0" }), "", ""},
		{"wrong tenant", f.mint(t, func(c *claims) { c.Tid = "99999999-2222-3333-4444-555555555555" }), arm.CodeInvalidAuthenticationToken, "The access token is from the wrong tenant '99999999-2222-3333-4444-555555555555'."},
		{"expired", f.mint(t, func(c *claims) { c.Exp = now.Add(-31 * time.Second).Unix() }), arm.CodeInvalidAuthenticationToken,
			"The access token expiry UTC time '" + now.Add(-31*time.Second).UTC().Format(azureTime) + "' is earlier than current UTC time '" + now.UTC().Format(azureTime) + "'."},
		{"expired within skew", f.mint(t, func(c *claims) { c.Exp = now.Add(-29 * time.Second).Unix() }), "", ""},
		{"no exp", f.mint(t, func(c *claims) { c.Exp = 0 }), arm.CodeInvalidAuthenticationToken, "The access token expiry UTC time"},
		{"nbf within leeway", f.mint(t, func(c *claims) { c.Nbf = now.Add(4 * time.Minute).Unix() }), "", ""},
		{"not yet valid", f.mint(t, func(c *claims) { c.Nbf = now.Add(6 * time.Minute).Unix() }), arm.CodeInvalidAuthenticationToken, "The access token is not valid before UTC time"},
		{"no oid", f.mint(t, func(c *claims) { c.Oid = "" }), arm.CodeInvalidAuthenticationToken, invalid},
		{"unknown idtyp", f.mint(t, func(c *claims) { c.IDType = "device" }), arm.CodeInvalidAuthenticationToken, invalid},
		{"exp as string", signRaw(t, ks.active().priv, map[string]any{"alg": "RS256", "kid": kid}, withClaim("exp", "never")), arm.CodeInvalidAuthenticationToken, invalid},
		{"too long", good + strings.Repeat("A", maxTokenLen), arm.CodeInvalidAuthenticationToken, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.iss.Validate(t.Context(), tt.token)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want valid", err)
				}
				if p.ObjectID != "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" || p.Type != TypeServicePrincipal || p.TenantID != testTenant {
					t.Errorf("Validate() = %+v", p)
				}
				return
			}
			e, ok := errors.AsType[*arm.Error](err)
			if !ok {
				t.Fatalf("Validate() = %+v, %v; want *arm.Error %s", p, err, tt.code)
			}
			if e.Status != http.StatusUnauthorized || e.Code != tt.code || !strings.HasPrefix(e.Message, tt.message) {
				t.Errorf("Validate() = %d %s %q, want 401 %s %q", e.Status, e.Code, e.Message, tt.code, tt.message)
			}
		})
	}
}

func TestValidateCached(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	tok := f.mint(t, func(c *claims) { c.Groups = []string{"g1"} })
	for range 2 { // first sight, then from the cache
		p, err := f.iss.Validate(ctx, tok)
		if err != nil || p.Groups[0] != "g1" {
			t.Fatalf("Validate() = %+v, %v", p, err)
		}
		p.Groups[0] = "changed by the caller"
	}
	if len(f.iss.validated.m) != 1 {
		t.Errorf("cache holds %d tokens, want 1", len(f.iss.validated.m))
	}
	// A forged variant of a cached token is not a cache hit.
	forged := tok[:len(tok)-4] + "AAAA"
	if _, err := f.iss.Validate(ctx, forged); err == nil {
		t.Errorf("Validate(forged variant of cached token) succeeded")
	}
	f.clock.Advance(time.Hour + 31*time.Second)
	if _, err := f.iss.Validate(ctx, tok); err == nil || !strings.Contains(err.Error(), "expiry") {
		t.Errorf("Validate(cached, expired) = %v, want expired", err)
	}
	if len(f.iss.validated.m) != 0 {
		t.Errorf("cache holds %d tokens after expiry, want 0", len(f.iss.validated.m))
	}
}

func TestTokenCacheBound(t *testing.T) {
	var c tokenCache
	for j := range maxValidated + 10 {
		var k [32]byte
		k[0], k[1], k[2] = byte(j), byte(j>>8), byte(j>>16)
		exp := int64(100)
		if j%2 == 0 {
			exp = 1 // expired at now=1000
		}
		c.put(k, validToken{exp: exp}, 1000)
	}
	if n := len(c.m); n > maxValidated {
		t.Errorf("cache holds %d tokens, want at most %d", n, maxValidated)
	}
}

func TestValidateAudienceForms(t *testing.T) {
	st := newFixture(t).st
	for _, configured := range []string{"https://management.citadel.local/", "https://management.citadel.local"} {
		for _, inToken := range []string{"https://management.citadel.local/", "https://management.citadel.local"} {
			t.Run(configured+" "+inToken, func(t *testing.T) {
				f := newFixtureOn(t, st, newClock(), func(c *Config) { c.Audience = configured })
				if got := tokenClaims(t, f.mint(t, nil))["aud"]; got != configured {
					t.Errorf("issued aud = %v, want %q as configured", got, configured)
				}
				if _, err := f.iss.Validate(t.Context(), f.mint(t, func(c *claims) { c.Aud = inToken })); err != nil {
					t.Errorf("Validate(aud %q) with audience %q = %v", inToken, configured, err)
				}
			})
		}
	}
}

func TestParseBearer(t *testing.T) {
	const (
		missing = "Authentication failed. The 'Authorization' header is missing."
		format  = "Authentication failed. The 'Authorization' header is provided in an invalid format."
	)
	tests := []struct {
		header, want, err string
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", ""},
		{"bearer abc", "abc", ""},
		{"BEARER   abc  ", "abc", ""},
		{"", "", missing},
		{"   ", "", missing},
		{"Bearer", "", format},
		{"Bearer ", "", format},
		{"Basic dXNlcjpwYXNz", "", format},
		{"Bearer a b", "", format},
		{"Bearerabc", "", format},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			got, err := ParseBearer(tt.header)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Errorf("ParseBearer(%q) = %q, %v, want %q", tt.header, got, err, tt.want)
				}
				return
			}
			e, ok := errors.AsType[*arm.Error](err)
			if !ok || e.Status != 401 || e.Code != arm.CodeAuthenticationFailed || e.Message != tt.err {
				t.Errorf("ParseBearer(%q) = %q, %v, want 401 AuthenticationFailed %q", tt.header, got, err, tt.err)
			}
		})
	}
}

func jwksKids(t testing.TB, f *fixture) []string {
	t.Helper()
	status, body := f.get(t, "/adfs/discovery/keys")
	if status != 200 {
		t.Fatalf("GET jwks = %d %v", status, body)
	}
	var kids []string
	for _, k := range body["keys"].([]any) {
		m := k.(map[string]any)
		if m["kty"] != "RSA" || m["alg"] != "RS256" || m["use"] != "sig" || m["e"] != "AQAB" || len(m["n"].(string)) != 342 {
			t.Errorf("jwk %v is not an RS256 2048-bit RSA key", m)
		}
		kids = append(kids, m["kid"].(string))
	}
	return kids
}

func storedKids(t testing.TB, f *fixture) []string {
	t.Helper()
	items, _, err := keys.List(t.Context(), f.st, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, it := range items {
		kids = append(kids, it.Value.Kid)
	}
	return kids
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.KeyRotation = 10 * time.Minute })
	ctx := t.Context()
	tok1 := f.mint(t, nil)
	kid1 := tokenHeader(t, tok1)["kid"].(string)
	if d := cmp.Diff([]string{kid1}, jwksKids(t, f)); d != "" {
		t.Errorf("JWKS kids (-want +got):\n%s", d)
	}

	f.clock.Advance(9 * time.Minute)
	if kid := tokenHeader(t, f.mint(t, nil))["kid"]; kid != kid1 {
		t.Errorf("kid before rotation = %v, want %v", kid, kid1)
	}

	f.clock.Advance(2 * time.Minute) // 11m: rotate
	tok2 := f.mint(t, nil)
	kid2 := tokenHeader(t, tok2)["kid"].(string)
	if kid2 == kid1 {
		t.Fatalf("kid after rotation = %v, want a new one", kid2)
	}
	for _, tok := range []string{tok1, tok2} {
		if _, err := f.iss.Validate(ctx, tok); err != nil {
			t.Errorf("Validate() after rotation = %v", err)
		}
	}
	if d := cmp.Diff([]string{kid2, kid1}, jwksKids(t, f)); d != "" {
		t.Errorf("JWKS kids after rotation (-want +got):\n%s", d)
	}

	// kid1 signed its last token at 11m; it expires at 1h11m. The key stays
	// until 1h16m.
	f.clock.Advance(time.Hour + 4*time.Minute) // 1h15m
	tok3 := f.mint(t, nil)
	kid3 := tokenHeader(t, tok3)["kid"].(string)
	if d := cmp.Diff([]string{kid3, kid2, kid1}, jwksKids(t, f)); d != "" {
		t.Errorf("JWKS kids at 1h15m (-want +got):\n%s", d)
	}
	f.clock.Advance(2 * time.Minute) // 1h17m: kid1 pruned
	if d := cmp.Diff([]string{kid3, kid2}, jwksKids(t, f)); d != "" {
		t.Errorf("JWKS kids at 1h17m (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{kid2, kid3}, storedKids(t, f)); d != "" {
		t.Errorf("stored kids at 1h17m (-want +got):\n%s", d)
	}
	// kid2's token has expired, but kid2 is still known; kid1 is not.
	if _, err := f.iss.Validate(ctx, tok2); err == nil || !strings.Contains(err.Error(), "expiry") {
		t.Errorf("Validate(token of kid2) at 1h17m = %v, want expired", err)
	}
	if _, err := f.iss.Validate(ctx, tok1); err == nil {
		t.Errorf("Validate(token of pruned kid1) succeeded")
	}
	if f.iss.keys.Load().byKid[kid1] != nil {
		t.Errorf("pruned kid1 is still a verification key")
	}
	if _, err := f.iss.Validate(ctx, tok3); err != nil {
		t.Errorf("Validate(token of kid3) at 1h17m = %v", err)
	}
}

func TestReplicas(t *testing.T) {
	a := newFixture(t, func(c *Config) { c.KeyRotation = 10 * time.Minute })
	// Replicas sit behind one public URL.
	b := newFixtureOn(t, a.st, a.clock, func(c *Config) { c.KeyRotation = 10 * time.Minute; c.PublicURL = a.srv.URL + "/" })
	b.iss.reloadInterval = 0
	ctx := t.Context()

	sp, secret, err := a.iss.CreateServicePrincipal(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	tokA := a.token(t, a.secretForm(sp.AppID, secret))
	// b has never seen a key: the unknown kid makes it read the store.
	if p, err := b.iss.Validate(ctx, tokA); err != nil || p.AppID != sp.AppID {
		t.Fatalf("replica Validate() = %+v, %v", p, err)
	}
	// b signs with the same key, and a validates b's tokens.
	tokB := b.token(t, b.secretForm(sp.AppID, secret))
	if ka, kb := tokenHeader(t, tokA)["kid"], tokenHeader(t, tokB)["kid"]; ka != kb {
		t.Errorf("replicas sign with kids %v and %v, want one", ka, kb)
	}
	if _, err := a.iss.Validate(ctx, tokB); err != nil {
		t.Errorf("Validate(other replica's token) = %v", err)
	}

	// a rotates; b learns the new key on first sight.
	a.clock.Advance(11 * time.Minute)
	tokA2 := a.token(t, a.secretForm(sp.AppID, secret))
	if tokenHeader(t, tokA2)["kid"] == tokenHeader(t, tokA)["kid"] {
		t.Fatal("no rotation")
	}
	if _, err := b.iss.Validate(ctx, tokA2); err != nil {
		t.Errorf("replica Validate(token of rotated key) = %v", err)
	}
}

func TestConcurrentRotation(t *testing.T) {
	a := newFixture(t, func(c *Config) { c.KeyRotation = 10 * time.Minute })
	replicas := []*fixture{a}
	for range 3 {
		replicas = append(replicas, newFixtureOn(t, a.st, a.clock, func(c *Config) { c.KeyRotation = 10 * time.Minute }))
	}
	for round := range 3 {
		var wg sync.WaitGroup
		kids := make([]any, len(replicas))
		for j, r := range replicas {
			wg.Go(func() { kids[j] = tokenHeader(t, r.mint(t, nil))["kid"] })
		}
		wg.Wait()
		for _, k := range kids[1:] {
			if k != kids[0] {
				t.Errorf("round %d: replicas signed with kids %v, want one", round, kids)
				break
			}
		}
		a.clock.Advance(11 * time.Minute)
	}
	if n := len(storedKids(t, a)); n != 3 {
		t.Errorf("stored keys = %d, want 3 (one per round)", n)
	}
}
