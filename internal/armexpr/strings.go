package armexpr

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// stringFunctions are the string functions of Part B.4, including those
// that also take arrays (concat, contains, first, indexOf...).
var stringFunctions = map[string]Func{
	"base64":         Eager(1, 1, base64Func),
	"base64ToString": Eager(1, 1, base64ToString),
	"base64ToJson":   Eager(1, 1, base64ToJSON),
	"concat":         Eager(1, -1, concat),
	"contains":       Eager(2, 2, contains),
	"empty":          Eager(1, 1, empty),
	"endsWith":       Eager(2, 2, endsWith),
	"startsWith":     Eager(2, 2, startsWith),
	"first":          Eager(1, 1, first),
	"last":           Eager(1, 1, last),
	"format":         Eager(1, -1, format),
	"indexOf":        Eager(2, 2, indexOf),
	"lastIndexOf":    Eager(2, 2, lastIndexOf),
	"join":           Eager(2, 2, join),
	"json":           Eager(1, 1, jsonFunc),
	"length":         Eager(1, 1, length),
	"like":           Eager(2, 2, like),
	"padLeft":        Eager(2, 3, padLeft),
	"replace":        Eager(3, 3, replace),
	"skip":           Eager(2, 2, skip),
	"take":           Eager(2, 2, take),
	"split":          Eager(2, 2, split),
	"string":         Eager(1, 1, stringFunc),
	"substring":      Eager(2, 3, substring),
	"toLower":        Eager(1, 1, func(a []any) (any, error) { return mapString(a, strings.ToLower) }),
	"toUpper":        Eager(1, 1, func(a []any) (any, error) { return mapString(a, strings.ToUpper) }),
	"trim":           Eager(1, 1, func(a []any) (any, error) { return mapString(a, strings.TrimSpace) }),
}

func mapString(args []any, f func(string) string) (any, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	return f(s), nil
}

func base64Func(args []any) (any, error) {
	return mapString(args, func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) })
}

func decodeBase64(args []any) ([]byte, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the value '%s' is not valid base64", s)
	}
	return b, nil
}

func base64ToString(args []any) (any, error) {
	b, err := decodeBase64(args)
	if err != nil {
		return nil, err
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

func base64ToJSON(args []any) (any, error) {
	b, err := decodeBase64(args)
	if err != nil {
		return nil, err
	}
	return ParseJSON(b)
}

// concat joins strings (other scalars are printed) or concatenates arrays.
func concat(args []any) (any, error) {
	if slices.ContainsFunc(args, func(v any) bool { _, ok := v.([]any); return ok }) {
		out := []any{}
		for i, a := range args {
			switch a := a.(type) {
			case []any:
				out = append(out, a...)
			case nil:
			default:
				return nil, fmt.Errorf("the arguments must be all arrays or all strings; argument %d is of type '%s'", i+1, typeName(a))
			}
		}
		return out, nil
	}
	var b strings.Builder
	for _, a := range args {
		b.WriteString(text(a))
	}
	return b.String(), nil
}

// contains is a case-sensitive substring test, a case-insensitive key test
// on objects and a deep-equality member test on arrays.
func contains(args []any) (any, error) {
	switch c := args[0].(type) {
	case string:
		return strings.Contains(c, text(args[1])), nil
	case []any:
		return slices.ContainsFunc(c, func(v any) bool { return Equal(v, args[1]) }), nil
	case map[string]any:
		key, err := stringArg(args, 1)
		if err != nil {
			return nil, err
		}
		_, ok := lookupKey(c, key)
		return ok, nil
	}
	return nil, argError(args, 0, "String, Array or Object")
}

func empty(args []any) (any, error) {
	switch v := args[0].(type) {
	case nil:
		return true, nil
	case string:
		return v == "", nil
	case []any:
		return len(v) == 0, nil
	case map[string]any:
		return len(v) == 0, nil
	}
	return nil, fmt.Errorf("expects its parameter to be an object, an array, or a string; the provided value is of type '%s'", typeName(args[0]))
}

// foldRunes lower-cases s rune by rune, keeping one rune per character so
// positions stay those of s.
func foldRunes(s string) []rune {
	r := []rune(s)
	for i, c := range r {
		r[i] = unicode.ToLower(c)
	}
	return r
}

func twoStrings(args []any) (string, string, error) {
	a, err := stringArg(args, 0)
	if err != nil {
		return "", "", err
	}
	b, err := stringArg(args, 1)
	return a, b, err
}

func startsWith(args []any) (any, error) {
	s, prefix, err := twoStrings(args)
	if err != nil {
		return nil, err
	}
	r, p := foldRunes(s), foldRunes(prefix)
	return len(p) <= len(r) && slices.Equal(r[:len(p)], p), nil
}

func endsWith(args []any) (any, error) {
	s, suffix, err := twoStrings(args)
	if err != nil {
		return nil, err
	}
	r, p := foldRunes(s), foldRunes(suffix)
	return len(p) <= len(r) && slices.Equal(r[len(r)-len(p):], p), nil
}

func first(args []any) (any, error) {
	switch v := args[0].(type) {
	case string:
		if v == "" {
			return "", nil
		}
		r, _ := utf8.DecodeRuneInString(v)
		return string(r), nil
	case []any:
		if len(v) == 0 {
			return nil, nil
		}
		return v[0], nil
	}
	return nil, argError(args, 0, "String or Array")
}

func last(args []any) (any, error) {
	switch v := args[0].(type) {
	case string:
		if v == "" {
			return "", nil
		}
		r, _ := utf8.DecodeLastRuneInString(v)
		return string(r), nil
	case []any:
		if len(v) == 0 {
			return nil, nil
		}
		return v[len(v)-1], nil
	}
	return nil, argError(args, 0, "String or Array")
}

// indexOf finds a substring ignoring case, or an array element by deep
// equality; -1 when absent.
func indexOf(args []any) (any, error) {
	if arr, ok := args[0].([]any); ok {
		return int64(slices.IndexFunc(arr, func(v any) bool { return Equal(v, args[1]) })), nil
	}
	s, sub, err := twoStrings(args)
	if err != nil {
		return nil, err
	}
	r, p := foldRunes(s), foldRunes(sub)
	for i := 0; i+len(p) <= len(r); i++ {
		if slices.Equal(r[i:i+len(p)], p) {
			return int64(i), nil
		}
	}
	return int64(-1), nil
}

// lastIndexOf is indexOf from the end. An empty substring is found at the
// last character, as in .NET Framework: lastIndexOf('abcdef', ”) is 5.
func lastIndexOf(args []any) (any, error) {
	if arr, ok := args[0].([]any); ok {
		for i := len(arr) - 1; i >= 0; i-- {
			if Equal(arr[i], args[1]) {
				return int64(i), nil
			}
		}
		return int64(-1), nil
	}
	s, sub, err := twoStrings(args)
	if err != nil {
		return nil, err
	}
	r, p := foldRunes(s), foldRunes(sub)
	if len(p) == 0 {
		return int64(max(len(r)-1, 0)), nil
	}
	for i := len(r) - len(p); i >= 0; i-- {
		if slices.Equal(r[i:i+len(p)], p) {
			return int64(i), nil
		}
	}
	return int64(-1), nil
}

func join(args []any) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	sep, err := stringArg(args, 1)
	if err != nil {
		return nil, err
	}
	parts := make([]string, len(arr))
	for i, v := range arr {
		parts[i] = text(v)
	}
	return strings.Join(parts, sep), nil
}

// like matches a string against a pattern where '*' stands for any
// characters, ignoring case.
func like(args []any) (any, error) {
	s, pattern, err := twoStrings(args)
	if err != nil {
		return nil, err
	}
	return wildcardMatch(foldRunes(s), foldRunes(pattern)), nil
}

func wildcardMatch(s, p []rune) bool {
	star, resume := -1, 0 // the last '*' seen, and where in s its match would grow
	for i, j := 0, 0; i < len(s); {
		switch {
		case j < len(p) && p[j] == '*':
			star, resume = j, i
			j++
		case j < len(p) && p[j] == s[i]:
			i, j = i+1, j+1
		case star >= 0:
			resume++
			i, j = resume, star+1
		default:
			return false
		}
		if i == len(s) {
			for j < len(p) && p[j] == '*' {
				j++
			}
			return j == len(p)
		}
	}
	for _, c := range p {
		if c != '*' {
			return false
		}
	}
	return true
}

func jsonFunc(args []any) (any, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	return ParseJSON([]byte(s))
}

func length(args []any) (any, error) {
	switch v := args[0].(type) {
	case string:
		return int64(strLen(v)), nil
	case []any:
		return int64(len(v)), nil
	case map[string]any:
		return int64(len(v)), nil
	}
	return nil, argError(args, 0, "String, Array or Object")
}

// padLeft pads a string or integer on the left to a total length; it never
// truncates.
func padLeft(args []any) (any, error) {
	var s string
	switch v := args[0].(type) {
	case string:
		s = v
	case int64:
		s = strconv.FormatInt(v, 10)
	default:
		return nil, argError(args, 0, "String or Integer")
	}
	total, err := intArg(args, 1)
	if err != nil {
		return nil, err
	}
	pad := " "
	if len(args) == 3 {
		if pad, err = stringArg(args, 2); err != nil {
			return nil, err
		}
		if strLen(pad) != 1 {
			return nil, fmt.Errorf("the padding character must be a single character, not '%s'", pad)
		}
	}
	if total > 16*1024 {
		return nil, fmt.Errorf("the total length %d is too large", total)
	}
	if n := int(total) - strLen(s); n > 0 {
		s = strings.Repeat(pad, n) + s
	}
	return s, nil
}

func replace(args []any) (any, error) {
	s, old, err := twoStrings(args)
	if err != nil {
		return nil, err
	}
	repl, err := stringArg(args, 2)
	if err != nil {
		return nil, err
	}
	if old == "" {
		return nil, errors.New("the string to replace can't be empty")
	}
	return strings.ReplaceAll(s, old, repl), nil
}

// skip drops the first n characters or elements; n <= 0 keeps everything.
func skip(args []any) (any, error) {
	n, err := intArg(args, 1)
	if err != nil {
		return nil, err
	}
	switch v := args[0].(type) {
	case string:
		l := int64(strLen(v))
		return substr(v, int(clamp(n, 0, l)), int(l)), nil
	case []any:
		return slices.Clone(v[clamp(n, 0, int64(len(v))):]), nil
	}
	return nil, argError(args, 0, "String or Array")
}

// take keeps the first n characters or elements; n <= 0 keeps nothing.
func take(args []any) (any, error) {
	n, err := intArg(args, 1)
	if err != nil {
		return nil, err
	}
	switch v := args[0].(type) {
	case string:
		return substr(v, 0, int(clamp(n, 0, int64(strLen(v))))), nil
	case []any:
		return slices.Clone(v[:clamp(n, 0, int64(len(v)))]), nil
	}
	return nil, argError(args, 0, "String or Array")
}

func clamp(n, lo, hi int64) int64 { return max(lo, min(n, hi)) }

// split cuts a string at any of the delimiters; empty delimiters are
// ignored, as in .NET, so split(”, ”) is [”].
func split(args []any) (any, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	var delims []string
	switch d := args[1].(type) {
	case string:
		delims = []string{d}
	case []any:
		for i := range d {
			ds, err := stringArg(d, i)
			if err != nil {
				return nil, fmt.Errorf("the delimiters must be strings: %w", err)
			}
			delims = append(delims, ds)
		}
	default:
		return nil, argError(args, 1, "String or Array")
	}
	delims = slices.DeleteFunc(delims, func(d string) bool { return d == "" })
	out := []any{}
	for {
		at, size := -1, 0
		for _, d := range delims {
			if i := strings.Index(s, d); i >= 0 && (at < 0 || i < at) {
				at, size = i, len(d)
			}
		}
		if at < 0 {
			return append(out, s), nil
		}
		out = append(out, s[:at])
		s = s[at+size:]
	}
}

// stringFunc converts a value to a string: arrays and objects become
// compact JSON.
func stringFunc(args []any) (any, error) {
	switch v := args[0].(type) {
	case []any, map[string]any:
		return marshal(v, '"'), nil
	}
	return text(args[0]), nil
}

func substring(args []any) (any, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	start, err := intArg(args, 1)
	if err != nil {
		return nil, err
	}
	l := int64(strLen(s))
	n := l - start
	if len(args) == 3 {
		if n, err = intArg(args, 2); err != nil {
			return nil, err
		}
	}
	if start < 0 || n < 0 || start > l || start+n > l {
		return nil, fmt.Errorf("the index and length parameters must refer to a location within the string. The index parameter: '%d', the length parameter: '%d', the length of the string parameter: '%d'", start, n, l)
	}
	return substr(s, int(start), int(start+n)), nil
}
