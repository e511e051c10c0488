package identity

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
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
// kid it does not know. Errors are 401 *arm.Errors worded as Azure's.
func (i *Issuer) Validate(ctx context.Context, bearer string) (Principal, error) {
	if bearer == "" {
		return Principal{}, errMissingAuthorization()
	}
	if len(bearer) > maxTokenLen {
		return Principal{}, errInvalidToken()
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
	return i.checkClaims(&c)
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
	now := i.now()
	if exp := time.Unix(c.Exp, 0); now.After(exp.Add(clockSkew)) {
		return Principal{}, arm.Errorf(http.StatusUnauthorized, arm.CodeInvalidAuthenticationToken,
			"The access token expiry UTC time '%s' is earlier than current UTC time '%s'.",
			exp.UTC().Format(azureTime), now.UTC().Format(azureTime))
	}
	if nbf := time.Unix(c.Nbf, 0); now.Add(nbfLeeway).Before(nbf) {
		return Principal{}, arm.Errorf(http.StatusUnauthorized, arm.CodeInvalidAuthenticationToken,
			"The access token is not valid before UTC time '%s', which is later than current UTC time '%s'.",
			nbf.UTC().Format(azureTime), now.UTC().Format(azureTime))
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
