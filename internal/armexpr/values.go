package armexpr

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// typeName is the ARM name of a value's type, as error messages print it.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "Null"
	case string:
		return "String"
	case int64:
		return "Integer"
	case float64:
		return "Float"
	case bool:
		return "Boolean"
	case []any:
		return "Array"
	case map[string]any:
		return "Object"
	}
	return fmt.Sprintf("%T", v)
}

// toInt returns an integer value; a float qualifies when it is integral.
func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return int64(v), true
		}
	}
	return 0, false
}

// ordinal names argument i of n in an error message.
func ordinal(i, n int) string {
	if n == 1 {
		return "its parameter"
	}
	words := []string{"first", "second", "third", "fourth", "fifth"}
	if i < len(words) {
		return "its " + words[i] + " parameter"
	}
	return fmt.Sprintf("its parameter %d", i+1)
}

// argError says that argument i is not of the wanted type.
func argError(args []any, i int, want string) error {
	return fmt.Errorf("expects %s to be of type '%s'; the provided value is of type '%s'", ordinal(i, len(args)), want, typeName(args[i]))
}

func stringArg(args []any, i int) (string, error) {
	if s, ok := args[i].(string); ok {
		return s, nil
	}
	return "", argError(args, i, "String")
}

func intArg(args []any, i int) (int64, error) {
	if n, ok := toInt(args[i]); ok {
		return n, nil
	}
	return 0, argError(args, i, "Integer")
}

func boolArg(args []any, i int) (bool, error) {
	if b, ok := args[i].(bool); ok {
		return b, nil
	}
	return false, argError(args, i, "Boolean")
}

func arrayArg(args []any, i int) ([]any, error) {
	if a, ok := args[i].([]any); ok {
		return a, nil
	}
	return nil, argError(args, i, "Array")
}

func objectArg(args []any, i int) (map[string]any, error) {
	if o, ok := args[i].(map[string]any); ok {
		return o, nil
	}
	return nil, argError(args, i, "Object")
}

// Equal is deep equality as equals() sees it: strings are compared
// ordinally, numbers by value, arrays in order, objects by key.
func Equal(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case string:
		b, ok := b.(string)
		return ok && a == b
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case int64, float64:
		switch b.(type) {
		case int64, float64:
			return toFloat(a) == toFloat(b)
		}
		return false
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, Equal)
	case map[string]any:
		b, ok := b.(map[string]any)
		return ok && maps.EqualFunc(a, b, Equal)
	}
	return false
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

// sortedKeys returns an object's keys in the culture-aware order of items().
func sortedKeys(obj map[string]any) []string {
	return slices.SortedFunc(maps.Keys(obj), compareStrings)
}

// compareStrings orders strings the way ARM's culture-aware comparison
// does (less(), greater(), items()): whitespace, then punctuation and
// symbols, then digits, then letters; letters compare ignoring case first,
// and on a tie lowercase sorts before uppercase, so 'a' < 'A' < 'b'. This
// follows the Unicode root collation for ASCII; other characters compare
// by case-folded code point after the ASCII letters.
func compareStrings(a, b string) int {
	if c := compareWeights(a, b, primaryWeight); c != 0 {
		return c
	}
	if c := compareWeights(a, b, caseWeight); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// compareWeights compares the strings rune by rune through weight,
// skipping runes whose weight is 0 (ignorable).
func compareWeights(a, b string, weight func(rune) int) int {
	for {
		wa, ra := nextWeight(a, weight)
		wb, rb := nextWeight(b, weight)
		if wa != wb || wa < 0 {
			return cmpInt(wa, wb)
		}
		a, b = ra, rb
	}
}

// nextWeight returns the weight of the first non-ignorable rune of s and
// the rest of s; -1 at the end.
func nextWeight(s string, weight func(rune) int) (int, string) {
	for s != "" {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		if w := weight(r); w != 0 {
			return w, s
		}
	}
	return -1, ""
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rootOrder is the root collation order of ASCII whitespace, punctuation
// and symbols; digits and letters follow.
const rootOrder = "\t\n\v\f\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"

func primaryWeight(r rune) int {
	switch {
	case r < utf8.RuneSelf && strings.ContainsRune(rootOrder, r):
		return 1 + strings.IndexRune(rootOrder, r)
	case r >= '0' && r <= '9':
		return 100 + int(r-'0')
	case r >= 'a' && r <= 'z':
		return 200 + int(r-'a')
	case r >= 'A' && r <= 'Z':
		return 200 + int(r-'A')
	case r < 0x20 || r == 0x7f:
		return 0 // control characters are ignorable
	}
	return 1000 + int(unicode.ToLower(r))
}

// caseWeight breaks ties of primaryWeight: lowercase first.
func caseWeight(r rune) int {
	switch {
	case r < 0x20 || r == 0x7f:
		return 0
	case unicode.IsUpper(r):
		return 2
	}
	return 1
}

// text is the string form of a value inside concat(), format() and join():
// booleans print as .NET does (True/False), null as nothing, arrays and
// objects as compact JSON with single quotes.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return formatFloat(v)
	case bool:
		if v {
			return "True"
		}
		return "False"
	case nil:
		return ""
	}
	return marshal(v, '\'')
}

// runes returns s as runes when it is not ASCII, so that lengths and
// positions count characters like ARM (nil for ASCII: use bytes).
func runes(s string) []rune {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return []rune(s)
		}
	}
	return nil
}

// strLen is the length of s in characters.
func strLen(s string) int {
	return utf8.RuneCountInString(s)
}

// substr returns characters [start, end) of s.
func substr(s string, start, end int) string {
	if r := runes(s); r != nil {
		return string(r[start:end])
	}
	return s[start:end]
}
