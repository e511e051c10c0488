package identity

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
)

// Principal types, as ARM names them (principalType of role assignments).
const (
	TypeServicePrincipal = "ServicePrincipal"
	TypeUser             = "User"
)

// Principal is the authenticated caller of a request, from a validated
// access token.
type Principal struct {
	ObjectID string `json:"objectId"`
	TenantID string `json:"tenantId"`
	// AppID is the service principal's application (client) ID, or for a
	// user the client ID the token was requested with.
	AppID string `json:"appId,omitempty"`
	// Name is the user's UPN or the service principal's display name.
	Name string `json:"name,omitempty"`
	Type string `json:"type"` // TypeServicePrincipal or TypeUser
	// Groups are the object IDs of the principal's groups, unless there
	// are more than maxGroupClaims: then Groups is empty, HasGroupOverflow
	// is set and the caller must look the groups up.
	Groups           []string `json:"groups,omitempty"`
	HasGroupOverflow bool     `json:"hasGroupOverflow,omitempty"`
}

// claims are the claims of Citadel's access tokens: Entra's v1 access token
// claims, so that tools which decode tokens (az account get-access-token,
// jwt.ms) find what they expect.
type claims struct {
	Aud            string   `json:"aud"`
	Iss            string   `json:"iss"`
	Iat            int64    `json:"iat"`
	Nbf            int64    `json:"nbf"`
	Exp            int64    `json:"exp"`
	AMR            []string `json:"amr,omitempty"`
	AppID          string   `json:"appid,omitempty"`
	AppIDACR       string   `json:"appidacr,omitempty"`
	AppDisplayName string   `json:"app_displayname,omitempty"`
	Groups         []string `json:"groups,omitempty"`
	HasGroups      bool     `json:"hasgroups,omitempty"`
	IDType         string   `json:"idtyp"`
	Name           string   `json:"name,omitempty"`
	Oid            string   `json:"oid"`
	Sub            string   `json:"sub"`
	Tid            string   `json:"tid"`
	UniqueName     string   `json:"unique_name,omitempty"`
	UPN            string   `json:"upn,omitempty"`
	UTI            string   `json:"uti,omitempty"`
	Ver            string   `json:"ver"`
}

const (
	// maxTokenLen bounds the work spent on a bearer token: a token with
	// maxGroupClaims groups is about 10 kB.
	maxTokenLen = 32 << 10
	// clockSkew is how long after exp a token is still accepted.
	clockSkew = 30 * time.Second
	// nbfLeeway is how long before nbf a token is already accepted.
	nbfLeeway = 5 * time.Minute
)

// azureTime is how Azure's token errors print times ("8/20/2026 3:04:05 PM").
const azureTime = "1/2/2006 3:04:05 PM"

var b64 = base64.RawURLEncoding.Strict()

func errInvalidToken() *arm.Error {
	return arm.Errorf(http.StatusUnauthorized, arm.CodeInvalidAuthenticationToken, "The access token is invalid.")
}

func errMissingAuthorization() *arm.Error {
	return arm.Errorf(http.StatusUnauthorized, arm.CodeAuthenticationFailed,
		"Authentication failed. The 'Authorization' header is missing.")
}

// ParseBearer returns the token of an "Authorization: Bearer <token>" header
// value. The scheme is case-insensitive. Errors are 401 AuthenticationFailed
// *arm.Errors worded as Azure's.
func ParseBearer(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", errMissingAuthorization()
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", arm.Errorf(http.StatusUnauthorized, arm.CodeAuthenticationFailed,
			"Authentication failed. The 'Authorization' header is provided in an invalid format.")
	}
	return token, nil
}

// Validate checks an access token (the bearer of an ARM request) and returns
// its principal. It checks the RS256 signature against the keys this
// control plane has published, the issuer, the audience (with or without a
// trailing "/"), the lifetime and the tenant. It touches the store only for a
// kid it does not know. Tokens that passed are remembered until they
// expire, so that a client's next requests cost a hash and a map lookup.
// Errors are 401 *arm.Errors worded as Azure's. The Groups of the principal
// are the caller's to keep.
func (i *Issuer) Validate(ctx context.Context, bearer string) (Principal, error) {
	if bearer == "" {
		return Principal{}, errMissingAuthorization()
	}
	if len(bearer) > maxTokenLen {
		return Principal{}, errInvalidToken()
	}
	sum := sha256.Sum256([]byte(bearer))
	if e, ok := i.validated.get(sum); ok {
		if err := i.checkTimes(e.nbf, e.exp); err != nil {
			i.validated.remove(sum)
			return Principal{}, err
		}
		p := e.p
		p.Groups = slices.Clone(p.Groups)
		return p, nil
	}
	h, rest, ok := strings.Cut(bearer, ".")
	if !ok {
		return Principal{}, errInvalidToken()
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 {
		return Principal{}, errInvalidToken()
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if hb, err := b64.DecodeString(h); err != nil || json.Unmarshal(hb, &hdr) != nil {
		return Principal{}, errInvalidToken()
	}
	if hdr.Alg != "RS256" {
		return Principal{}, errInvalidToken()
	}
	k := i.verificationKey(ctx, hdr.Kid)
	if k == nil {
		return Principal{}, errInvalidToken()
	}
	sig, err := b64.DecodeString(s)
	if err != nil || len(sig) != k.priv.Size() {
		return Principal{}, errInvalidToken()
	}
	digest := sha256.Sum256([]byte(bearer[:len(h)+1+len(p)]))
	if rsa.VerifyPKCS1v15(&k.priv.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		return Principal{}, errInvalidToken()
	}
	var c claims
	if pb, err := b64.DecodeString(p); err != nil || json.Unmarshal(pb, &c) != nil {
		return Principal{}, errInvalidToken()
	}
	pr, err := i.checkClaims(&c)
	if err != nil {
		return Principal{}, err
	}
	i.validated.put(sum, validToken{p: pr, nbf: c.Nbf, exp: c.Exp}, i.now().Unix())
	pr.Groups = slices.Clone(pr.Groups)
	return pr, nil
}

// checkClaims checks the claims of a token whose signature is good.
func (i *Issuer) checkClaims(c *claims) (Principal, error) {
	if c.Iss != i.issuer && c.Iss != i.tenantIssuer {
		return Principal{}, arm.Errorf(http.StatusUnauthorized, arm.CodeInvalidAuthenticationToken,
			"The access token is from the wrong issuer '%s'. It must match one of the issuers '%s','%s'.",
			c.Iss, i.issuer, i.tenantIssuer)
	}
	if c.Aud != i.audTrim && c.Aud != i.audTrim+"/" {
		return Principal{}, arm.Errorf(http.StatusUnauthorized, arm.CodeInvalidAuthenticationToken,
			"The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s','%s'.",
			c.Aud, i.audTrim+"/", i.audTrim)
	}
	if err := i.checkTimes(c.Nbf, c.Exp); err != nil {
		return Principal{}, err
	}
	if c.Tid != i.tenantID {
		return Principal{}, arm.Errorf(http.StatusUnauthorized, arm.CodeInvalidAuthenticationToken,
			"The access token is from the wrong tenant '%s'. It must match the tenant '%s'.", c.Tid, i.tenantID)
	}
	pr := Principal{
		ObjectID:         c.Oid,
		TenantID:         c.Tid,
		AppID:            c.AppID,
		Groups:           c.Groups,
		HasGroupOverflow: c.HasGroups,
	}
	switch c.IDType {
	case "app":
		pr.Type = TypeServicePrincipal
		pr.Name = c.AppDisplayName
	case "user":
		pr.Type = TypeUser
		pr.Name = c.UPN
	default:
		return Principal{}, errInvalidToken()
	}
	if c.Oid == "" {
		return Principal{}, errInvalidToken()
	}
	return pr, nil
}

// checkTimes checks a token's lifetime: expired is expired (give or take
// clockSkew), and a token from a server whose clock is ahead is accepted
// up to nbfLeeway early.
func (i *Issuer) checkTimes(nbf, exp int64) error {
	now := i.now()
	if e := time.Unix(exp, 0); now.After(e.Add(clockSkew)) {
		return arm.Errorf(http.StatusUnauthorized, arm.CodeInvalidAuthenticationToken,
			"The access token expiry UTC time '%s' is earlier than current UTC time '%s'.",
			e.UTC().Format(azureTime), now.UTC().Format(azureTime))
	}
	if n := time.Unix(nbf, 0); now.Add(nbfLeeway).Before(n) {
		return arm.Errorf(http.StatusUnauthorized, arm.CodeInvalidAuthenticationToken,
			"The access token is not valid before UTC time '%s', which is later than current UTC time '%s'.",
			n.UTC().Format(azureTime), now.UTC().Format(azureTime))
	}
	return nil
}

// maxValidated bounds the cache of validated tokens. Only tokens with a
// good signature enter it, so its size follows the number of distinct live
// tokens, not what callers send.
const maxValidated = 1 << 14

// validToken is a validated token's principal and lifetime.
type validToken struct {
	p        Principal
	nbf, exp int64
}

// tokenCache remembers validated tokens by the SHA-256 of the whole token.
type tokenCache struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]validToken
}

func (c *tokenCache) get(k [sha256.Size]byte) (validToken, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *tokenCache) remove(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// put adds a token; when the cache is full it first drops the expired
// ones, and if that is not enough, everything.
func (c *tokenCache) put(k [sha256.Size]byte, v validToken, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]validToken)
	}
	if len(c.m) >= maxValidated {
		for key, t := range c.m {
			if t.exp+int64(clockSkew/time.Second) < now {
				delete(c.m, key)
			}
		}
		if len(c.m) >= maxValidated {
			clear(c.m)
		}
	}
	c.m[k] = v
}

// Claims are the principal's claims as the activity log records them
// (oid, appid, tid, idtyp).
func (p Principal) Claims() map[string]string {
	return map[string]string{"oid": p.ObjectID, "appid": p.AppID, "tid": p.TenantID, "idtyp": p.Type}
}

// FromClaims is the principal whose Claims these are, named name: work
// that runs later on a caller's behalf (a deployment, a remediation)
// acts as the caller its operation recorded. Groups are not in the claims:
// look them up.
func FromClaims(claims map[string]string, name string) (Principal, bool) {
	p := Principal{ObjectID: claims["oid"], AppID: claims["appid"], TenantID: claims["tid"], Type: claims["idtyp"], Name: name}
	return p, p.ObjectID != ""
}
