package armexpr

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// uriFunctions are the URI functions of Part B.4: uri(), the
// percent-encoding pair, data URIs, and buildUri()/parseUri().
var uriFunctions = map[string]Func{
	"uri":                  Eager(2, 2, uri),
	"uriComponent":         Eager(1, 1, func(a []any) (any, error) { return mapString(a, escapeData) }),
	"uriComponentToString": Eager(1, 1, func(a []any) (any, error) { return mapString(a, unescapeData) }),
	"dataUri":              Eager(1, 1, dataURI),
	"dataUriToString":      Eager(1, 1, dataURIToString),
	"parseUri":             Eager(1, 1, parseURI),
	"buildUri":             Eager(1, 1, buildURI),
}

// uri resolves a relative URI against a base (RFC 3986 section 5).
func uri(args []any) (any, error) {
	base, rel, err := twoStrings(args)
	if err != nil {
		return nil, err
	}
	b, err := url.Parse(base)
	if err != nil || !b.IsAbs() {
		return nil, fmt.Errorf("the base URI '%s' is not an absolute URI", base)
	}
	r, err := url.Parse(rel)
	if err != nil {
		return nil, fmt.Errorf("the relative URI '%s' is not valid", rel)
	}
	return b.ResolveReference(r).String(), nil
}

// escapeData percent-encodes everything but the RFC 3986 unreserved
// characters, like .NET's Uri.EscapeDataString.
func escapeData(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// unescapeData decodes %XX sequences and leaves invalid ones as written,
// like .NET's Uri.UnescapeDataString.
func unescapeData(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// dataURI encodes a string as text/plain, any other value as
// application/json.
func dataURI(args []any) (any, error) {
	mime, data := "text/plain", ""
	if s, ok := args[0].(string); ok {
		data = s
	} else {
		mime, data = "application/json", marshal(args[0], '"')
	}
	return "data:" + mime + ";charset=utf-8;base64," + base64.StdEncoding.EncodeToString([]byte(data)), nil
}

// dataURIToString decodes a data URI; the charset may be utf-8 (also
// written utf8) or us-ascii, and application/json content is parsed.
func dataURIToString(args []any) (any, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(s, "data:")
	header, payload, hasComma := strings.Cut(rest, ",")
	if !ok || !hasComma {
		return nil, fmt.Errorf("expects its parameter to be formatted as a valid data URI. The provided value '%s' was not formatted correctly", rest)
	}
	params := strings.Split(header, ";")
	mime, isBase64 := strings.ToLower(params[0]), false
	for _, p := range params[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToLower(k) {
		case "base64":
			isBase64 = true
		case "charset":
			switch strings.ToLower(v) {
			case "utf-8", "utf8", "us-ascii":
			default:
				return nil, fmt.Errorf("the provided charset '%s' is not supported", v)
			}
		}
	}
	var text string
	if isBase64 {
		b, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			return nil, fmt.Errorf("the data of the data URI is not valid base64")
		}
		text = string(b)
	} else {
		text = unescapeData(payload)
	}
	if mime == "application/json" {
		return ParseJSON([]byte(text))
	}
	return text, nil
}

// parseURI splits an absolute URI into the object buildUri() takes.
func parseURI(args []any) (any, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("'%s' is not an absolute URI", s)
	}
	port := int64(-1)
	if p := u.Port(); p != "" {
		port, _ = strconv.ParseInt(p, 10, 32)
	} else if p, ok := map[string]int64{"http": 80, "https": 443, "ftp": 21}[u.Scheme]; ok {
		port = p
	}
	query := ""
	if u.RawQuery != "" {
		query = "?" + u.RawQuery
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return map[string]any{
		"absoluteUri": u.String(),
		"scheme":      u.Scheme,
		"host":        u.Hostname(),
		"port":        port,
		"path":        path,
		"query":       query,
	}, nil
}

// buildURI assembles {scheme, host, port?, path?, query?}.
func buildURI(args []any) (any, error) {
	obj, err := objectArg(args, 0)
	if err != nil {
		return nil, err
	}
	field := func(name string) string {
		v, _ := lookupKey(obj, name)
		return text(v)
	}
	scheme, host := field("scheme"), field("host")
	if scheme == "" || host == "" {
		return nil, fmt.Errorf("the object needs a scheme and a host")
	}
	u := url.URL{Scheme: scheme, Host: host, Path: field("path"), RawQuery: strings.TrimPrefix(field("query"), "?")}
	if p, ok := lookupKey(obj, "port"); ok && p != nil {
		if n, ok := toInt(p); ok && n >= 0 {
			u.Host += ":" + strconv.FormatInt(n, 10)
		}
	}
	return u.String(), nil
}
