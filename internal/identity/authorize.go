package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/store"
)

// The authorization code flow (RFC 6749 §4.1) with PKCE (RFC 7636), for
// browsers: the portal sends the user to /adfs/oauth2/authorize, the user
// signs in with a local user's password on the page served there, and the
// browser comes back to the portal with a one-time code that only the
// holder of the PKCE verifier can redeem at the token endpoint. Codes live
// in the store, so that any replica can redeem a code another issued.

// codeLifetime bounds how long a code can be redeemed (RFC 6749 §4.1.2
// recommends at most 10 minutes).
const codeLifetime = 5 * time.Minute

// codeDoc is a stored authorization code, named by the SHA-256 of the code
// so that the store never holds a redeemable code.
type codeDoc struct {
	ClientID    string    `json:"clientId"`
	RedirectURI string    `json:"redirectUri"`
	Challenge   string    `json:"codeChallenge"`
	UPN         string    `json:"upn"`
	OpenID      bool      `json:"openid"`
	Expires     time.Time `json:"expires"`
}

var codes = store.NewCollection[codeDoc]("identity/authorizationCodes/")

// verifierPattern is RFC 7636 §4.1's code_verifier.
var verifierPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

//go:embed signin.html
var signInHTML string

var signInPage = template.Must(template.New("signin").Parse(signInHTML))

// authorizeRequest is an authorization request's parameters, carried from
// the sign-in page's GET to its POST in hidden fields.
type authorizeRequest struct {
	ClientID      string
	RedirectURI   string
	State         string
	Scope         string
	CodeChallenge string
	openid        bool
}

// signInView is what the sign-in page shows.
type signInView struct {
	Request  authorizeRequest
	Username string
	Problem  string
}

// serveAuthorize is the authorization endpoint: GET shows the sign-in
// page, POST checks the password and sends the browser back with a code.
func (i *Issuer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		writeSignInError(w, "The request could not be read.")
		return
	}
	q := r.Form
	req := authorizeRequest{
		ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), State: q.Get("state"),
		Scope: q.Get("scope"), CodeChallenge: q.Get("code_challenge"),
	}
	// Until the redirect URI is known to be good, errors are shown here:
	// sending them to an unchecked address would make this an open
	// redirector (RFC 6749 §4.1.2.1).
	if req.ClientID == "" {
		writeSignInError(w, "The request must name the application: client_id is missing.")
		return
	}
	if !redirectAllowed(req.RedirectURI, r) {
		writeSignInError(w, "The redirect_uri '"+req.RedirectURI+"' is not allowed: it must be this server's /portal/ or a loopback address.")
		return
	}
	if rt := q.Get("response_type"); rt != "code" {
		redirectError(w, r, req, "unsupported_response_type", "Only response_type=code is supported.")
		return
	}
	if q.Get("code_challenge_method") != "S256" || req.CodeChallenge == "" {
		redirectError(w, r, req, "invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256.")
		return
	}
	openid, err := i.parseScope(req.Scope, q.Get("resource"))
	if err != nil {
		oe, _ := errors.AsType[*oauthError](err)
		redirectError(w, r, req, oe.Code, oe.Description)
		return
	}
	req.openid = openid
	if r.Method == http.MethodGet {
		writeSignIn(w, http.StatusOK, signInView{Request: req, Username: q.Get("login_hint")})
		return
	}
	ctx := r.Context()
	upn := strings.TrimSpace(q.Get("username"))
	u, err := i.authenticateUser(ctx, upn, q.Get("password"), "authorization_code")
	if err != nil {
		if _, ok := errors.AsType[*oauthError](err); ok {
			writeSignIn(w, http.StatusUnauthorized, signInView{Request: req, Username: upn, Problem: "The user name or password is incorrect."})
			return
		}
		i.log.ErrorContext(ctx, "sign-in failed", "err", err)
		writeSignInError(w, "The sign-in could not be completed; try again.")
		return
	}
	code, err := i.issueCode(ctx, req, u.UPN)
	if err != nil {
		i.log.ErrorContext(ctx, "sign-in failed", "err", err)
		writeSignInError(w, "The sign-in could not be completed; try again.")
		return
	}
	i.log.InfoContext(ctx, "authorization code issued", "upn", u.UPN, "client_id", req.ClientID)
	back := url.Values{"code": {code}}
	if req.State != "" {
		back.Set("state", req.State)
	}
	http.Redirect(w, r, withQuery(req.RedirectURI, back), http.StatusSeeOther)
}

// redirectAllowed reports whether uri may receive codes: the portal on the
// origin the browser reached this endpoint at, or a native application's
// loopback address (RFC 8252 §7.3), which only a program on the user's own
// machine can listen on.
func redirectAllowed(uri string, r *http.Request) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Fragment != "" || u.User != nil {
		return false
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		ip := net.ParseIP(host)
		return host == "localhost" || ip != nil && ip.IsLoopback()
	}
	return u.Scheme == "https" && r.TLS != nil && strings.EqualFold(u.Host, r.Host) &&
		(u.Path == "/portal/" || strings.HasPrefix(u.Path, "/portal/"))
}

// issueCode stores a new code for upn and returns it. Expired codes are
// pruned on the way.
func (i *Issuer) issueCode(ctx context.Context, req authorizeRequest, upn string) (string, error) {
	i.pruneCodes(ctx)
	raw := make([]byte, 32)
	rand.Read(raw)
	code := base64.RawURLEncoding.EncodeToString(raw)
	doc := codeDoc{ClientID: req.ClientID, RedirectURI: req.RedirectURI, Challenge: req.CodeChallenge,
		UPN: upn, OpenID: req.openid, Expires: i.now().Add(codeLifetime)}
	if _, err := i.store.Txn(ctx, codes.Create(codeName(code), doc)); err != nil {
		return "", err
	}
	return code, nil
}

func codeName(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// pruneCodes removes codes that expired unredeemed. A failure only leaves
// them for the next time.
func (i *Issuer) pruneCodes(ctx context.Context) {
	items, _, err := codes.List(ctx, i.store, "", "", 0)
	if err != nil {
		return
	}
	now := i.now()
	for _, it := range items {
		if now.After(it.Value.Expires) {
			i.store.Txn(ctx, codes.DeleteAt(it.Name, it.Revision))
		}
	}
}

// codeGrant redeems an authorization code: once, before it expires, by the
// client it was issued to, with the same redirect_uri and the verifier
// whose S256 is the code's challenge.
func (i *Issuer) codeGrant(ctx context.Context, form url.Values) (*tokenResponse, error) {
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" || verifier == "" || form.Get("redirect_uri") == "" || form.Get("client_id") == "" {
		return nil, invalidRequest("The request body must contain the parameters 'code', 'redirect_uri', 'client_id' and 'code_verifier'.")
	}
	if !verifierPattern.MatchString(verifier) {
		return nil, invalidRequest("The code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'.")
	}
	refused := invalidGrant("The authorization code is invalid, expired or already used.")
	it, err := codes.Get(ctx, i.store, codeName(code))
	if errors.Is(err, store.ErrNotFound) {
		return nil, refused
	}
	if err != nil {
		return nil, err
	}
	// Redeeming deletes the code at the revision read: of two concurrent
	// redemptions only one succeeds.
	if _, err := i.store.Txn(ctx, codes.DeleteAt(it.Name, it.Revision)); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, refused
		}
		return nil, err
	}
	c := it.Value
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	switch {
	case i.now().After(c.Expires):
		return nil, refused
	case c.ClientID != form.Get("client_id"):
		return nil, invalidGrant("The authorization code was issued to another client.")
	case c.RedirectURI != form.Get("redirect_uri"):
		return nil, invalidGrant("The redirect_uri does not match the one the code was issued for.")
	case subtle.ConstantTimeCompare([]byte(challenge), []byte(c.Challenge)) != 1:
		return nil, invalidGrant("The code_verifier does not match the code_challenge.")
	}
	u, err := i.getUser(ctx, c.UPN)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refused
	}
	if err != nil {
		return nil, err
	}
	return i.userToken(ctx, &u.Value, c.ClientID, c.OpenID, "authorization_code")
}

// redirectError sends an error back to a checked redirect URI (RFC 6749
// §4.1.2.1).
func redirectError(w http.ResponseWriter, r *http.Request, req authorizeRequest, code, description string) {
	v := url.Values{"error": {code}, "error_description": {description}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	http.Redirect(w, r, withQuery(req.RedirectURI, v), http.StatusSeeOther)
}

func withQuery(uri string, v url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + v.Encode()
}

// signInHeaders keep the sign-in page out of frames (clickjacking) and
// caches, and let it load nothing but its own inline style.
func signInHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

func writeSignIn(w http.ResponseWriter, status int, v signInView) {
	signInHeaders(w)
	w.WriteHeader(status)
	signInPage.Execute(w, v)
}

// writeSignInError shows a request that cannot go back to its application.
func writeSignInError(w http.ResponseWriter, problem string) {
	signInHeaders(w)
	w.WriteHeader(http.StatusBadRequest)
	signInPage.Execute(w, signInView{Problem: problem})
}
