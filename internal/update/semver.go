package update

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// semver is a Semantic Versioning 2.0.0 version. Build metadata (+...) is
// dropped: it does not take part in the order.
type semver struct {
	major, minor, patch uint64
	pre                 []string
}

// parseSemver parses MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] strictly: no
// leading "v", no leading zeros in numbers.
func parseSemver(s string) (semver, error) {
	var v semver
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		if !validIdentifiers(rest[i+1:], false) {
			return v, fmt.Errorf("%q is not a semantic version (MAJOR.MINOR.PATCH): bad build metadata", s)
		}
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		if !validIdentifiers(rest[i+1:], true) {
			return v, fmt.Errorf("%q is not a semantic version (MAJOR.MINOR.PATCH): bad pre-release", s)
		}
		v.pre = strings.Split(rest[i+1:], ".")
		rest = rest[:i]
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("%q is not a semantic version (MAJOR.MINOR.PATCH)", s)
	}
	var n [3]uint64
	for i, p := range parts {
		var ok bool
		if n[i], ok = numeric(p); !ok {
			return v, fmt.Errorf("%q is not a semantic version (MAJOR.MINOR.PATCH): %q is not a number", s, p)
		}
	}
	v.major, v.minor, v.patch = n[0], n[1], n[2]
	return v, nil
}

// numeric parses a number without leading zeros.
func numeric(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// validIdentifiers reports whether s is dot-separated non-empty
// [0-9A-Za-z-] identifiers; pre-release numbers have no leading zeros.
func validIdentifiers(s string, pre bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" || strings.Trim(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") != "" {
			return false
		}
		if _, ok := numeric(id); pre && !ok && strings.Trim(id, "0123456789") == "" {
			return false // all digits, leading zero
		}
	}
	return true
}

// compare orders versions as Semantic Versioning 2.0.0 §11 does.
func (a semver) compare(b semver) int {
	if c := cmp.Or(cmp.Compare(a.major, b.major), cmp.Compare(a.minor, b.minor), cmp.Compare(a.patch, b.patch)); c != 0 {
		return c
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1 // a release is newer than its pre-releases
	case len(b.pre) == 0:
		return -1
	}
	for i := range min(len(a.pre), len(b.pre)) {
		x, xnum := numeric(a.pre[i])
		y, ynum := numeric(b.pre[i])
		var c int
		switch {
		case xnum && ynum:
			c = cmp.Compare(x, y)
		case xnum:
			c = -1 // numbers sort before names
		case ynum:
			c = 1
		default:
			c = strings.Compare(a.pre[i], b.pre[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.pre), len(b.pre))
}

// CompareVersions orders cluster versions as Semantic Versioning 2.0.0
// does: -1 when a is older than b, 0 when they are equal (build metadata
// aside), +1 when a is newer. A string that is not a semantic version is
// older than every version, and such strings compare as strings.
func CompareVersions(a, b string) int {
	x, errx := parseSemver(a)
	y, erry := parseSemver(b)
	switch {
	case errx != nil && erry != nil:
		return strings.Compare(a, b)
	case errx != nil:
		return -1
	case erry != nil:
		return 1
	}
	return x.compare(y)
}
