package authz

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// pattern is a compiled action pattern: the lower-cased pattern split at
// each '*'. A pattern without '*' has one part and matches only itself.
type pattern struct {
	parts []string
}

func compile(s string) (pattern, error) {
	if strings.TrimSpace(s) == "" {
		return pattern{}, errors.New("empty action pattern")
	}
	return pattern{parts: strings.Split(lower(s), "*")}, nil
}

// match reports whether the lower-cased action matches p. '*' matches any
// run of characters, '/' included: the first and last parts anchor the ends
// and the middle parts are found left to right, which is exact for '*' as
// the only wildcard.
func (p pattern) match(action string) bool {
	first, last := p.parts[0], p.parts[len(p.parts)-1]
	if len(p.parts) == 1 {
		return action == first
	}
	if !strings.HasPrefix(action, first) {
		return false
	}
	rest := action[len(first):]
	if !strings.HasSuffix(rest, last) {
		return false
	}
	rest = rest[:len(rest)-len(last)]
	for _, m := range p.parts[1 : len(p.parts)-1] {
		i := strings.Index(rest, m)
		if i < 0 {
			return false
		}
		rest = rest[i+len(m):]
	}
	return true
}

// perm is a compiled Permission, control-plane actions only.
type perm struct {
	actions, notActions []pattern
}

func compilePermissions(ps []Permission) ([]perm, error) {
	out := make([]perm, len(ps))
	var errs []error
	for i, p := range ps {
		for _, a := range p.Actions {
			c, err := compile(a)
			errs = append(errs, err)
			out[i].actions = append(out[i].actions, c)
		}
		for _, a := range p.NotActions {
			c, err := compile(a)
			errs = append(errs, err)
			out[i].notActions = append(out[i].notActions, c)
		}
	}
	return out, errors.Join(errs...)
}

// coversAction reports whether one of ps covers the lower-cased action: an Actions
// pattern matches it and no NotActions pattern of the same permission does.
func coversAction(ps []perm, action string) bool {
	for _, p := range ps {
		if matchAny(p.actions, action) && !matchAny(p.notActions, action) {
			return true
		}
	}
	return false
}

func matchAny(ps []pattern, action string) bool {
	for _, p := range ps {
		if p.match(action) {
			return true
		}
	}
	return false
}

// scopeKey returns the comparable form of a scope: lower case, one leading
// '/', no empty segments, no trailing '/'. The tenant root is "/". For a
// canonical resource ID it equals arm.ID.Key.
func scopeKey(s string) string {
	if s == "" || s == "/" {
		return "/"
	}
	if s[0] != '/' || s[len(s)-1] == '/' || strings.Contains(s, "//") {
		segs := strings.FieldsFunc(s, func(r rune) bool { return r == '/' })
		if len(segs) == 0 {
			return "/"
		}
		s = "/" + strings.Join(segs, "/")
	}
	return lower(s)
}

// lower is strings.ToLower, faster for ASCII with upper case, which every
// operation name and most scopes are: it converts in a stack buffer and
// allocates once, where strings.ToLower writes byte by byte. Everything that
// is compared here goes through it.
func lower(s string) string {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		if 'A' <= c && c <= 'Z' {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var buf [256]byte
	b := buf[:0]
	if len(s) > len(buf) {
		b = make([]byte, 0, len(s))
	}
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

// covers reports whether the scope key a is the scope key s or an ancestor
// of it. Ancestry follows '/' boundaries: /subscriptions/x/resourcegroups/rg1
// does not cover /subscriptions/x/resourcegroups/rg10.
func covers(a, s string) bool {
	if a == "/" {
		return true
	}
	return strings.HasPrefix(s, a) && (len(s) == len(a) || s[len(a)] == '/')
}
