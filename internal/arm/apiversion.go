package arm

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// APIVersion is a parsed api-version: YYYY-MM-DD with an optional
// pre-release suffix.
type APIVersion struct {
	Date   string // "2025-07-15"
	Suffix string // "" or one of "preview", "alpha", "beta", "rc", "privatepreview", in lower case
}

var apiVersionSuffixes = []string{"preview", "alpha", "beta", "rc", "privatepreview"}

// ParseAPIVersion parses an api-version. The date must be a real calendar
// date; the suffix is matched case-insensitively and kept in lower case. An
// empty string is a missing api-version.
func ParseAPIVersion(s string) (APIVersion, error) {
	bad := func(reason string, args ...any) (APIVersion, error) {
		return APIVersion{}, Errorf(statusBadRequest, CodeInvalidAPIVersionParameter,
			"The api-version '%s' is invalid: %s.", s, fmt.Sprintf(reason, args...))
	}
	if s == "" {
		return APIVersion{}, MissingAPIVersion()
	}
	if len(s) < 10 || !isDateShape(s[:10]) {
		return bad("it must look like YYYY-MM-DD, optionally followed by -preview")
	}
	date := s[:10]
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return bad("'%s' is not a calendar date", date)
	}
	if len(s) == 10 {
		return APIVersion{Date: date}, nil
	}
	if s[10] != '-' {
		return bad("it must look like YYYY-MM-DD, optionally followed by -preview")
	}
	for _, suf := range apiVersionSuffixes {
		if strings.EqualFold(s[11:], suf) {
			return APIVersion{Date: date, Suffix: suf}, nil
		}
	}
	return bad("unknown suffix '%s'; use one of %s", s[11:], strings.Join(apiVersionSuffixes, ", "))
}

// isDateShape reports whether d is dddd-dd-dd.
func isDateShape(d string) bool {
	for i := 0; i < len(d); i++ {
		if i == 4 || i == 7 {
			if d[i] != '-' {
				return false
			}
		} else if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// String returns the api-version as clients send it: "2024-06-01-preview".
func (v APIVersion) String() string {
	if v.Suffix == "" {
		return v.Date
	}
	return v.Date + "-" + v.Suffix
}

// IsPreview reports whether v has a pre-release suffix.
func (v APIVersion) IsPreview() bool { return v.Suffix != "" }

// SortAPIVersions sorts vs in place in the order providers advertise them:
// stable versions newest first, then pre-release versions newest first.
// az picks the first entry that is not a preview. Strings that do not parse
// go last, in their original order.
func SortAPIVersions(vs []string) {
	rank := func(s string) (APIVersion, int) {
		v, err := ParseAPIVersion(s)
		switch {
		case err != nil:
			return v, 2
		case v.IsPreview():
			return v, 1
		}
		return v, 0
	}
	slices.SortStableFunc(vs, func(a, b string) int {
		va, ra := rank(a)
		vb, rb := rank(b)
		if c := cmp.Compare(ra, rb); c != 0 || ra == 2 {
			return c
		}
		if c := strings.Compare(vb.Date, va.Date); c != 0 {
			return c
		}
		return strings.Compare(va.Suffix, vb.Suffix)
	})
}
