package identity

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/arm"
)

// FuzzValidate: no string validates except the one token the issuer
// signed, and every refusal is a 401 *arm.Error.
func FuzzValidate(f *testing.F) {
	fx := newFixture(f)
	good := fx.mint(f, nil)
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add("")
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 10))
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := fx.iss.Validate(t.Context(), tok)
		if err == nil {
			if tok != good {
				t.Fatalf("Validate(%q) = %+v, want an error", tok, p)
			}
			return
		}
		if e, ok := errors.AsType[*arm.Error](err); !ok || e.Status != http.StatusUnauthorized {
			t.Fatalf("Validate(%q) = %v, want a 401 *arm.Error", tok, err)
		}
	})
}

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x.y.z ", "", "Basic abc", "Bearer", "Bearer a b", "\tBearer\tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := ParseBearer(h)
		if err != nil {
			if e, ok := errors.AsType[*arm.Error](err); !ok || e.Status != http.StatusUnauthorized || e.Code != arm.CodeAuthenticationFailed {
				t.Fatalf("ParseBearer(%q) = %v, want a 401 AuthenticationFailed", h, err)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") {
			t.Fatalf("ParseBearer(%q) = %q", h, tok)
		}
		if again, err := ParseBearer("Bearer " + tok); err != nil || again != tok {
			t.Fatalf("ParseBearer(Bearer %q) = %q, %v", tok, again, err)
		}
	})
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=0,t=2,p=1$$")
	f.Add("$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
	f.Add("$argon2id$v=19$m=99999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			return
		}
		if h.memory > maxArgonMemory || h.time > maxArgonTime || h.threads == 0 || h.threads > maxArgonThreads {
			t.Fatalf("parsePHC(%q) accepted parameters %+v", s, h)
		}
		again, err := parsePHC(formatPHC(h))
		if err != nil || !slices.Equal(again.key, h.key) || !slices.Equal(again.salt, h.salt) || again.memory != h.memory {
			t.Fatalf("parsePHC(formatPHC(parsePHC(%q))) = %+v, %v", s, again, err)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	fx := newFixture(f)
	for _, s := range []string{testAudience + "/.default", testAudience + "/.default openid offline_access profile",
		"https://management.citadel.local/.default", "openid", "", "https://x/.default", "/.default", "  \t "} {
		f.Add(s, "")
	}
	f.Add("", testAudience)
	f.Fuzz(func(t *testing.T, scope, resource string) {
		openid, err := fx.iss.parseScope(scope, resource)
		if err != nil {
			if oe, ok := errors.AsType[*oauthError](err); !ok || oe.status != http.StatusBadRequest {
				t.Fatalf("parseScope(%q, %q) = %v, want a 400 oauthError", scope, resource, err)
			}
			return
		}
		if openid && !slices.Contains(strings.Fields(scope), "openid") {
			t.Fatalf("parseScope(%q) says openid", scope)
		}
		for s := range strings.FieldsSeq(scope) {
			if !oidcScopes[s] && !strings.HasPrefix(s, "https://management.citadel.local") {
				t.Fatalf("parseScope(%q) accepted %q", scope, s)
			}
		}
	})
}

// FuzzTokenRequest: any body gets a well-formed OAuth2 answer, never a
// server error, and never a token without a valid credential.
func FuzzTokenRequest(f *testing.F) {
	fx := newFixture(f)
	sp, _, err := fx.iss.CreateServicePrincipal(f.Context(), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"grant_type=client_credentials&client_id=" + sp.AppID + "&client_secret=x&scope=" + url.QueryEscape(testAudience+"/.default"),
		"grant_type=client_credentials&client_id=" + sp.AppID + "&client_assertion_type=" + url.QueryEscape(assertionType) + "&client_assertion=a.b.c",
		"grant_type=password&username=a@b&password=p&scope=openid",
		"grant_type=refresh_token", "", "%zz", "grant_type=client_credentials&grant_type=password",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequestWithContext(t.Context(), "POST", "/adfs/oauth2/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		fx.iss.serveToken(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("body %q: answer %q is not JSON", body, w.Body.String())
		}
		switch w.Code {
		case http.StatusBadRequest, http.StatusUnauthorized:
			if s, _ := out["error"].(string); s == "" {
				t.Fatalf("body %q: %d without error: %v", body, w.Code, out)
			}
		default:
			t.Fatalf("body %q: status %d %v", body, w.Code, out)
		}
	})
}
