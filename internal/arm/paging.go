package arm

import (
	"encoding/base64"
	"strconv"
)

// EncodeSkipToken returns the $skipToken for a page that ends at the storage
// key lastKey. The token is opaque to clients and safe in a URL.
func EncodeSkipToken(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastKey))
}

// DecodeSkipToken returns the key a $skipToken from [EncodeSkipToken] holds.
// An empty token is the first page.
func DecodeSkipToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", Errorf(statusBadRequest, CodeBadRequest, "The $skipToken '%s' is invalid.", tok)
	}
	return string(b), nil
}

// ParseTop parses $top. An empty value is 0, meaning no limit was given;
// otherwise it must be an integer from 1 to 1000.
func ParseTop(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, Errorf(statusBadRequest, CodeBadRequest,
			"The $top '%s' is invalid: it must be an integer from 1 to 1000.", s)
	}
	return n, nil
}
