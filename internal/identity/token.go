package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/store"
)

const (
	// maxGroupClaims is the most group IDs put into a token; beyond it
	// the token says hasgroups and the resource server looks them up (as
	// Entra does for tokens).
	maxGroupClaims = 200
	// maxTokenRequest bounds the body of a token request.
	maxTokenRequest = 64 << 10

	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func invalidRequest(format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_request", Description: fmt.Sprintf(format, args...)}
}

func invalidClient(format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Description: fmt.Sprintf(format, args...)}
}

func invalidGrant(format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_grant", Description: fmt.Sprintf(format, args...)}
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="citadel"`)
	}
	writeJSON(w, e.status, e)
}

// tokenResponse is a successful token response. ext_expires_in is what
// Entra sends and MSAL reads.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	IDToken      string `json:"id_token,omitempty"`
}

// serveToken is the OAuth2 token endpoint: client_credentials with a client
// secret (post or basic) or a client assertion, and password for local
// users. claims and client_info, which MSAL sends, are ignored.
func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, invalidRequest("The request body must be application/x-www-form-urlencoded and at most %d bytes.", maxTokenRequest))
		return
	}
	resp, err := i.grant(ctx, r)
	if err != nil {
		oe, ok := errors.AsType[*oauthError](err)
		if !ok {
			i.log.ErrorContext(ctx, "token request failed", "err", err)
			oe = &oauthError{status: http.StatusInternalServerError, Code: "server_error", Description: "The token could not be issued."}
		}
		writeOAuthError(w, oe)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func (i *Issuer) grant(ctx context.Context, r *http.Request) (*tokenResponse, error) {
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			return nil, invalidRequest("The parameter '%s' is repeated.", k)
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
		return i.clientCredentials(ctx, r)
	case "password":
		return i.passwordGrant(ctx, form)
	case "authorization_code":
		return i.codeGrant(ctx, form)
	case "":
		return nil, invalidRequest("The request body must contain the parameter 'grant_type'.")
	default:
		return nil, &oauthError{status: http.StatusBadRequest, Code: "unsupported_grant_type",
			Description: fmt.Sprintf("The grant type '%s' is not supported; use client_credentials, password or authorization_code.", gt)}
	}
}

// oidcScopes are the scopes that may accompany the resource's /.default
// (MSAL adds them to every request).
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// parseScope checks a scope parameter: the resource's "/.default" (az sends
// "<aud>//.default" when the audience ends in "/"), with or without the
// audience's trailing "/", plus OIDC scopes. openid reports whether the
// openid scope was asked for.
func (i *Issuer) parseScope(scope, resource string) (openid bool, err error) {
	// The v1 (AD FS) form names the resource instead: resource=<aud>.
	if resource != "" && strings.TrimRight(resource, "/") != i.audTrim {
		return false, &oauthError{status: http.StatusBadRequest, Code: "invalid_resource",
			Description: fmt.Sprintf("The resource '%s' is not served here; use '%s'.", resource, i.audience)}
	}
	// Without a resource scope the token is for the one audience there is.
	for s := range strings.FieldsSeq(scope) {
		if oidcScopes[s] {
			openid = openid || s == "openid"
			continue
		}
		res, ok := strings.CutSuffix(s, "/.default")
		if !ok || strings.TrimRight(res, "/") != i.audTrim {
			return false, &oauthError{status: http.StatusBadRequest, Code: "invalid_scope",
				Description: fmt.Sprintf("The scope '%s' is not valid: only '%s/.default' is served here.", s, i.audTrim)}
		}
	}
	return openid, nil
}

// clientCredentials authenticates a service principal by client secret
// (in the body or HTTP Basic) or by client assertion.
func (i *Issuer) clientCredentials(ctx context.Context, r *http.Request) (*tokenResponse, error) {
	form := r.PostForm
	if _, err := i.parseScope(form.Get("scope"), form.Get("resource")); err != nil {
		return nil, err
	}
	clientID := form.Get("client_id")
	secret, hasSecret := form.Get("client_secret"), form.Has("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		if u, err := url.QueryUnescape(user); err == nil {
			user = u
		}
		if p, err := url.QueryUnescape(pass); err == nil {
			pass = p
		}
		if hasSecret || form.Has("client_assertion") {
			return nil, invalidRequest("The client must use only one authentication method.")
		}
		if clientID != "" && clientID != user {
			return nil, invalidRequest("The client_id in the body differs from the one in the Authorization header.")
		}
		clientID, secret, hasSecret = user, pass, true
	}
	assertion := form.Get("client_assertion")
	switch {
	case hasSecret && assertion != "":
		return nil, invalidRequest("The client must use only one authentication method.")
	case assertion != "":
		if at := form.Get("client_assertion_type"); at != assertionType {
			return nil, invalidRequest("The client_assertion_type must be '%s'.", assertionType)
		}
		return i.assertionGrant(ctx, clientID, assertion)
	case hasSecret:
		return i.secretGrant(ctx, clientID, secret)
	default:
		return nil, invalidClient("The request body must contain 'client_secret' or 'client_assertion'.")
	}
}

func (i *Issuer) secretGrant(ctx context.Context, clientID, secret string) (*tokenResponse, error) {
	if clientID == "" {
		return nil, invalidRequest("The request body must contain the parameter 'client_id'.")
	}
	it, err := i.getSP(ctx, clientID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		// Unknown application: spend the time a wrong secret would.
		burnHash(ctx, secret)
		i.log.InfoContext(ctx, "token refused", "grant", "client_secret", "client_id", clientID, "reason", "unknown client")
		return nil, invalidClient("Application with identifier '%s' was not found, or the client secret is invalid.", clientID)
	}
	sp := &it.Value
	now := i.now()
	matched := -1
	if len(sp.SecretHashes) == 0 {
		burnHash(ctx, secret)
	}
	for j, h := range sp.SecretHashes {
		ok, err := verifySecret(ctx, h.Hash, secret)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			i.log.WarnContext(ctx, "unreadable secret hash", "app_id", sp.AppID, "secret_id", h.ID, "err", err)
			continue
		}
		if ok && matched < 0 {
			matched = j
		}
	}
	if matched < 0 {
		i.log.InfoContext(ctx, "token refused", "grant", "client_secret", "client_id", clientID, "reason", "wrong secret")
		return nil, invalidClient("Application with identifier '%s' was not found, or the client secret is invalid.", clientID)
	}
	id := sp.SecretHashes[matched].ID
	for _, s := range sp.Secrets {
		if s.ID == id && !s.Expires.IsZero() && !now.Before(s.Expires) {
			i.log.InfoContext(ctx, "token refused", "grant", "client_secret", "client_id", clientID, "secret_id", id, "reason", "secret expired")
			return nil, invalidClient("The client secret '%s...' of application '%s' expired at %s.", s.Hint, clientID, s.Expires.Format(time.RFC3339))
		}
	}
	return i.appToken(ctx, sp, "1", "client_secret", id)
}

// assertionGrant authenticates a service principal by a JWT signed with the
// key of one of its certificates (RFC 7523; MSAL signs RS256 for AD FS,
// PS256 otherwise), addressed to this server's token endpoint.
func (i *Issuer) assertionGrant(ctx context.Context, clientID, assertion string) (*tokenResponse, error) {
	if len(assertion) > maxTokenLen {
		return nil, invalidClient("The client assertion is too large.")
	}
	if clientID == "" {
		// client_id is optional with an assertion: the issuer names the
		// client (checked against the signature below).
		var c jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(assertion, &c); err != nil {
			return nil, invalidClient("The client assertion is not a JWT.")
		}
		clientID = c.Issuer
	}
	refuse := func(reason string) (*tokenResponse, error) {
		i.log.InfoContext(ctx, "token refused", "grant", "client_assertion", "client_id", clientID, "reason", reason)
		return nil, invalidClient("The client assertion of application '%s' is invalid: %s.", clientID, reason)
	}
	it, err := i.getSP(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse("no such application")
	}
	if err != nil {
		return nil, err
	}
	sp := &it.Value
	now := i.now()
	var c jwt.RegisteredClaims
	var used string
	_, err = jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256", "PS256", "ES256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(clientID),
		jwt.WithSubject(clientID),
		jwt.WithTimeFunc(i.now),
		jwt.WithLeeway(clockSkew),
	).ParseWithClaims(assertion, &c, func(t *jwt.Token) (any, error) {
		set := jwt.VerificationKeySet{}
		for _, cd := range i.certificates(sp, t.Header, now) {
			set.Keys = append(set.Keys, cd.PublicKey)
			used = thumbprintSHA1(cd.Raw)
		}
		if len(set.Keys) == 0 {
			return nil, errors.New("no valid certificate matches")
		}
		if len(set.Keys) > 1 {
			used = ""
		}
		return set, nil
	})
	if err != nil {
		return refuse(assertionReason(err))
	}
	audOK := false
	for _, a := range c.Audience {
		if i.assertionAud[strings.ToLower(strings.TrimRight(a, "/"))] {
			audOK = true
		}
	}
	if !audOK {
		return refuse(fmt.Sprintf("its audience must be the token endpoint '%s'", i.adfsToken))
	}
	return i.appToken(ctx, sp, "2", "client_assertion", used)
}

func assertionReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "it has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "it is not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "it has no expiry"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidSubject):
		return "its iss and sub must be the client ID"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "no unexpired certificate of the application matches it"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "the signature does not verify with the application's certificates"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "it is not a JWT"
	default:
		return "it cannot be verified"
	}
}

// certificates returns the unexpired certificates of sp that match the
// assertion header's thumbprint (x5t: SHA-1, x5t#S256: SHA-256; MSAL writes
// them in standard base64, RFC 7515 says base64url), or all of them when the
// header names none.
func (i *Issuer) certificates(sp *spDoc, header map[string]any, now time.Time) []*x509.Certificate {
	want1, _ := header["x5t"].(string)
	want256, _ := header["x5t#S256"].(string)
	t1, t256 := decodeThumbprint(want1), decodeThumbprint(want256)
	expires := make(map[string]time.Time, len(sp.Certificates))
	for _, ci := range sp.Certificates {
		expires[ci.ID] = ci.Expires
	}
	var out []*x509.Certificate
	for _, cd := range sp.CertDERs {
		if exp, ok := expires[cd.ID]; !ok || !now.Before(exp) {
			continue
		}
		cert, err := x509.ParseCertificate(cd.DER)
		if err != nil || !now.Before(cert.NotAfter) {
			continue
		}
		if t1 != nil && thumbprintSHA1(cd.DER) != strings.ToUpper(hex.EncodeToString(t1)) {
			continue
		}
		if t256 != nil && !bytes.Equal(thumbprintSHA256(cd.DER), t256) {
			continue
		}
		out = append(out, cert)
	}
	return out
}

func decodeThumbprint(s string) []byte {
	if s == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return []byte{} // matches nothing
}

// passwordGrant authenticates a local user (ROPC). client_id may be any
// client; it becomes the token's appid.
func (i *Issuer) passwordGrant(ctx context.Context, form url.Values) (*tokenResponse, error) {
	openid, err := i.parseScope(form.Get("scope"), form.Get("resource"))
	if err != nil {
		return nil, err
	}
	upn, password := form.Get("username"), form.Get("password")
	if upn == "" || !form.Has("password") {
		return nil, invalidRequest("The request body must contain the parameters 'username' and 'password'.")
	}
	u, err := i.authenticateUser(ctx, upn, password, "password")
	if err != nil {
		return nil, err
	}
	return i.userToken(ctx, u, form.Get("client_id"), openid, "password")
}

// authenticateUser checks a local user's password. A wrong user name or
// password is invalid_grant, in the same time either way.
func (i *Issuer) authenticateUser(ctx context.Context, upn, password, grant string) (*userDoc, error) {
	refused := invalidGrant("Error validating credentials due to invalid username or password.")
	it, err := i.getUser(ctx, upn)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		burnHash(ctx, password)
		i.log.InfoContext(ctx, "token refused", "grant", grant, "upn", upn, "reason", "unknown user")
		return nil, refused
	}
	u := &it.Value
	ok, err := verifySecret(ctx, u.PasswordHash, password)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("identity: user %q: verify password: %w", upn, err)
	}
	if !ok {
		i.log.InfoContext(ctx, "token refused", "grant", grant, "upn", upn, "reason", "wrong password")
		return nil, refused
	}
	return u, nil
}

// userToken issues a local user's access token for clientID, with an
// id_token when openid was asked for.
func (i *Issuer) userToken(ctx context.Context, u *userDoc, clientID string, openid bool, grant string) (*tokenResponse, error) {
	groups, err := i.GroupsOf(ctx, u.ObjectID)
	if err != nil {
		return nil, err
	}
	c := i.baseClaims(u.ObjectID, groups)
	c.IDType = "user"
	c.AppID = clientID
	c.AppIDACR = "0"
	c.AMR = []string{"pwd"}
	c.UPN, c.UniqueName, c.Name = u.UPN, u.UPN, u.DisplayName
	resp, kid, err := i.sign(ctx, c)
	if err != nil {
		return nil, err
	}
	if openid {
		idt := idTokenClaims{
			Aud: clientID, Iss: c.Iss, Iat: c.Iat, Nbf: c.Nbf, Exp: c.Exp,
			Sub: c.Sub, Oid: c.Oid, Tid: c.Tid, UPN: u.UPN, UniqueName: u.UPN,
			PreferredUsername: u.UPN, Name: u.DisplayName, Ver: "1.0",
		}
		if resp.IDToken, _, err = i.signJWT(ctx, idt); err != nil {
			return nil, err
		}
	}
	i.log.InfoContext(ctx, "token issued", "grant", grant, "upn", u.UPN, "object_id", u.ObjectID, "client_id", clientID, "kid", kid)
	return resp, nil
}

// idTokenClaims is the id_token of a password grant with scope openid:
// MSAL builds its account from it.
type idTokenClaims struct {
	Aud               string `json:"aud"`
	Iss               string `json:"iss"`
	Iat               int64  `json:"iat"`
	Nbf               int64  `json:"nbf"`
	Exp               int64  `json:"exp"`
	Name              string `json:"name,omitempty"`
	Oid               string `json:"oid"`
	PreferredUsername string `json:"preferred_username"`
	Sub               string `json:"sub"`
	Tid               string `json:"tid"`
	UniqueName        string `json:"unique_name"`
	UPN               string `json:"upn"`
	Ver               string `json:"ver"`
}

// appToken issues a service principal's token. acr is Entra's appidacr:
// "1" for a secret, "2" for a certificate.
func (i *Issuer) appToken(ctx context.Context, sp *spDoc, acr, grant, credential string) (*tokenResponse, error) {
	groups, err := i.GroupsOf(ctx, sp.ObjectID)
	if err != nil {
		return nil, err
	}
	c := i.baseClaims(sp.ObjectID, groups)
	c.IDType = "app"
	c.AppID = sp.AppID
	c.AppIDACR = acr
	c.AppDisplayName = sp.DisplayName
	resp, kid, err := i.sign(ctx, c)
	if err != nil {
		return nil, err
	}
	i.log.InfoContext(ctx, "token issued", "grant", grant, "app_id", sp.AppID, "object_id", sp.ObjectID, "credential", credential, "kid", kid)
	return resp, nil
}

func (i *Issuer) baseClaims(oid string, groups []string) *claims {
	now := i.now()
	c := &claims{
		Aud: i.audience,
		Iss: i.issuer,
		Iat: now.Unix(),
		Nbf: now.Unix(),
		Exp: now.Add(i.lifetime).Unix(),
		Oid: oid,
		Sub: oid,
		Tid: i.tenantID,
		UTI: uuid.NewString(),
		Ver: "1.0",
	}
	if len(groups) > maxGroupClaims {
		c.HasGroups = true
	} else {
		c.Groups = groups
	}
	return c
}

// sign signs an access token and wraps it in a token response.
func (i *Issuer) sign(ctx context.Context, c *claims) (*tokenResponse, string, error) {
	tok, kid, err := i.signJWT(ctx, c)
	if err != nil {
		return nil, "", err
	}
	secs := int64(i.lifetime / time.Second)
	return &tokenResponse{TokenType: "Bearer", AccessToken: tok, ExpiresIn: secs, ExtExpiresIn: secs}, kid, nil
}

// signJWT signs claims with the active key (RS256).
func (i *Issuer) signJWT(ctx context.Context, claims any) (token, kid string, err error) {
	ks, err := i.keySet(ctx)
	if err != nil {
		return "", "", err
	}
	k := ks.active()
	body, err := json.Marshal(claims)
	if err != nil {
		return "", "", fmt.Errorf("identity: encode claims: %w", err)
	}
	var sb strings.Builder
	sb.Grow(len(k.header) + 1 + base64.RawURLEncoding.EncodedLen(len(body)) + 1 + 342)
	sb.WriteString(k.header)
	sb.WriteByte('.')
	sb.WriteString(base64.RawURLEncoding.EncodeToString(body))
	digest := sha256.Sum256([]byte(sb.String()))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.priv, crypto.SHA256, digest[:])
	if err != nil {
		return "", "", fmt.Errorf("identity: sign token: %w", err)
	}
	sb.WriteByte('.')
	sb.WriteString(base64.RawURLEncoding.EncodeToString(sig))
	return sb.String(), k.kid, nil
}
