package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// pkce is a code verifier and its S256 challenge.
func pkce(verifier string) (string, string) {
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeForm is a good authorization request of the portal.
func (f *fixture) authorizeForm(challenge string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {"citadel-portal"}, "redirect_uri": {f.srv.URL + "/portal/"},
		"state": {"s-123"}, "scope": {strings.TrimSuffix(testAudience, "/") + "/.default openid"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
}

// noRedirects is the fixture's client, stopping at redirects.
func (f *fixture) noRedirects() *http.Client {
	c := *f.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// signIn posts the sign-in form and returns the response (not followed).
func (f *fixture) signIn(t *testing.T, form url.Values, user, password string) (*http.Response, string) {
	t.Helper()
	form = cloneValues(form)
	form.Set("username", user)
	form.Set("password", password)
	resp, err := f.noRedirects().PostForm(f.srv.URL+"/adfs/oauth2/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// codeFrom signs in and returns the code the browser is sent back with.
func (f *fixture) codeFrom(t *testing.T, form url.Values) string {
	t.Helper()
	resp, body := f.signIn(t, form, "alice@citadel.local", "correct horse battery")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d %s, want 303", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loc.Scheme+"://"+loc.Host+loc.Path, f.srv.URL+"/portal/"; got != want {
		t.Fatalf("redirected to %s, want %s", got, want)
	}
	if loc.Query().Get("state") != "s-123" {
		t.Fatalf("redirect %s does not carry the state", loc)
	}
	return loc.Query().Get("code")
}

func redeemForm(f *fixture, code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"citadel-portal"},
		"redirect_uri": {f.srv.URL + "/portal/"}, "code_verifier": {verifier}}
}

func TestAuthorizationCodeFlow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.iss.CreateUser(ctx, "alice@citadel.local", "Alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	verifier, challenge := pkce(strings.Repeat("v", 43))
	form := f.authorizeForm(challenge)

	// The sign-in page is a form that carries the request on.
	resp, err := f.srv.Client().Get(f.srv.URL + "/adfs/oauth2/authorize?" + form.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="code_challenge" value="`+challenge+`"`) ||
		!strings.Contains(string(page), `<label for="password">`) {
		t.Fatalf("GET authorize = %d %s", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("sign-in page CSP %q lets other sites frame it", csp)
	}

	// A wrong password shows the page again, with no code.
	resp, body := f.signIn(t, form, "alice@citadel.local", "wrong password!")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "user name or password is incorrect") {
		t.Fatalf("wrong password = %d %s", resp.StatusCode, body)
	}

	// The code is redeemed once, with the verifier, for Alice's token.
	code := f.codeFrom(t, form)
	status, tok := f.postToken(t, "/adfs/oauth2/token", redeemForm(f, code, verifier), nil)
	if status != http.StatusOK {
		t.Fatalf("redeem = %d %v", status, tok)
	}
	p, err := f.iss.Validate(ctx, tok["access_token"].(string))
	if err != nil || p.Name != "alice@citadel.local" || p.AppID != "citadel-portal" {
		t.Fatalf("token principal = %+v, %v", p, err)
	}
	if tok["id_token"] == nil {
		t.Error("scope openid gave no id_token")
	}
	if status, body := f.postToken(t, "/adfs/oauth2/token", redeemForm(f, code, verifier), nil); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("second redemption = %d %v, want invalid_grant", status, body)
	}

	// Every mismatch is refused, and spends the code.
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		want   string
	}{
		{"verifier", func(v url.Values) { v.Set("code_verifier", strings.Repeat("w", 43)) }, "code_verifier does not match"},
		{"client", func(v url.Values) { v.Set("client_id", "other") }, "another client"},
		{"redirect", func(v url.Values) { v.Set("redirect_uri", f.srv.URL+"/portal/x") }, "redirect_uri does not match"},
	} {
		v := redeemForm(f, f.codeFrom(t, form), verifier)
		tc.change(v)
		status, body := f.postToken(t, "/adfs/oauth2/token", v, nil)
		if status != http.StatusBadRequest || !strings.Contains(body["error_description"].(string), tc.want) {
			t.Errorf("%s: redeem = %d %v, want %q", tc.name, status, body, tc.want)
		}
		v.Set("code_verifier", verifier)
		v.Set("client_id", "citadel-portal")
		v.Set("redirect_uri", f.srv.URL+"/portal/")
		if status, _ := f.postToken(t, "/adfs/oauth2/token", v, nil); status != http.StatusBadRequest {
			t.Errorf("%s: the code was redeemed after a refused attempt", tc.name)
		}
	}

	// A code expires.
	code = f.codeFrom(t, form)
	f.clock.Advance(codeLifetime + time.Second)
	if status, _ := f.postToken(t, "/adfs/oauth2/token", redeemForm(f, code, verifier), nil); status != http.StatusBadRequest {
		t.Error("an expired code was redeemed")
	}
	// The next code issued prunes it.
	f.codeFrom(t, form)
	items, _, err := codes.List(ctx, f.st, "", "", 0)
	if err != nil || len(items) != 1 {
		t.Errorf("stored codes = %d (%v), want only the new one", len(items), err)
	}
}

func TestAuthorizationCodeRedeemedOnce(t *testing.T) {
	f := newFixture(t)
	if _, err := f.iss.CreateUser(context.Background(), "alice@citadel.local", "Alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	verifier, challenge := pkce(strings.Repeat("x", 64))
	code := f.codeFrom(t, f.authorizeForm(challenge))
	var wg sync.WaitGroup
	var mu sync.Mutex
	issued := 0
	for range 8 {
		wg.Go(func() {
			if status, _ := f.postToken(t, "/adfs/oauth2/token", redeemForm(f, code, verifier), nil); status == http.StatusOK {
				mu.Lock()
				issued++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if issued != 1 {
		t.Errorf("8 concurrent redemptions issued %d tokens, want 1", issued)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	f := newFixture(t)
	_, challenge := pkce(strings.Repeat("v", 43))
	for _, tc := range []struct {
		name     string
		change   func(url.Values)
		status   int
		location string // the error sent back, when it is sent back
		page     string // the error shown, when it is not
	}{
		{"no client", func(v url.Values) { v.Del("client_id") }, 400, "", "client_id is missing"},
		{"foreign redirect", func(v url.Values) { v.Set("redirect_uri", "https://evil.example/portal/") }, 400, "", "is not allowed"},
		{"plain http", func(v url.Values) { v.Set("redirect_uri", "http://citadel.example/portal/") }, 400, "", "is not allowed"},
		{"outside the portal", func(v url.Values) { v.Set("redirect_uri", f.srv.URL+"/subscriptions/") }, 400, "", "is not allowed"},
		{"implicit flow", func(v url.Values) { v.Set("response_type", "token") }, 303, "error=unsupported_response_type", ""},
		{"no PKCE", func(v url.Values) { v.Del("code_challenge") }, 303, "error=invalid_request", ""},
		{"plain PKCE", func(v url.Values) { v.Set("code_challenge_method", "plain") }, 303, "error=invalid_request", ""},
		{"foreign scope", func(v url.Values) { v.Set("scope", "https://graph.example/.default") }, 303, "error=invalid_scope", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := f.authorizeForm(challenge)
			tc.change(v)
			resp, err := f.noRedirects().Get(f.srv.URL + "/adfs/oauth2/authorize?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if loc := resp.Header.Get("Location"); tc.location != "" && (!strings.Contains(loc, tc.location) || !strings.Contains(loc, "state=s-123")) {
				t.Errorf("Location = %s, want %s and the state", loc, tc.location)
			}
			if tc.page != "" && !strings.Contains(string(body), tc.page) {
				t.Errorf("page = %s, want %q", body, tc.page)
			}
		})
	}
	// A native application may receive codes on loopback.
	v := f.authorizeForm(challenge)
	v.Set("redirect_uri", "http://127.0.0.1:41234/callback")
	resp, err := f.noRedirects().Get(f.srv.URL + "/adfs/oauth2/authorize?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("loopback redirect_uri = %d, want the sign-in page", resp.StatusCode)
	}
}
