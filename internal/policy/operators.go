package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// opKind is an operator without its negation: notEquals is equals negated.
type opKind int

const (
	opEquals opKind = iota
	opLike
	opMatch
	opMatchInsensitively
	opContains
	opIn
	opContainsKey
	opLess
	opLessOrEquals
	opGreater
	opGreaterOrEquals
	opExists
)

// operator is one of the 19 condition operators.
type operator struct {
	name    string // as Azure spells it
	kind    opKind
	negated bool
}

var operators = []*operator{
	{"equals", opEquals, false}, {"notEquals", opEquals, true},
	{"like", opLike, false}, {"notLike", opLike, true},
	{"match", opMatch, false}, {"notMatch", opMatch, true},
	{"matchInsensitively", opMatchInsensitively, false}, {"notMatchInsensitively", opMatchInsensitively, true},
	{"contains", opContains, false}, {"notContains", opContains, true},
	{"in", opIn, false}, {"notIn", opIn, true},
	{"containsKey", opContainsKey, false}, {"notContainsKey", opContainsKey, true},
	{"less", opLess, false}, {"lessOrEquals", opLessOrEquals, false},
	{"greater", opGreater, false}, {"greaterOrEquals", opGreaterOrEquals, false},
	{"exists", opExists, false},
}

func lookupOperator(name string) *operator {
	for _, op := range operators {
		if strings.EqualFold(op.name, name) {
			return op
		}
	}
	return nil
}

// test applies the operator to a value (present or not) and the
// operator's value.
func (op *operator) test(v any, present bool, target any) (bool, error) {
	ok, err := op.positive(v, present, target)
	return ok != op.negated, err
}

func (op *operator) positive(v any, present bool, target any) (bool, error) {
	switch op.kind {
	case opExists:
		want, ok := boolish(target)
		if !ok {
			return false, fmt.Errorf("exists takes true or false, got %s", jsonText(target))
		}
		return present == want, nil
	case opIn:
		list, ok := target.([]any)
		if !ok {
			return false, fmt.Errorf("%s takes an array, got %s", op.name, jsonText(target))
		}
		if !present {
			return false, nil
		}
		for _, item := range list {
			if looseEqual(v, item) {
				return true, nil
			}
		}
		return false, nil
	}
	if !present {
		return false, nil
	}
	switch op.kind {
	case opEquals:
		return looseEqual(v, target), nil
	case opLike:
		pattern, ok := target.(string)
		s, isText := scalarText(v)
		return ok && isText && like(s, pattern), nil
	case opMatch, opMatchInsensitively:
		pattern, ok := target.(string)
		s, isText := scalarText(v)
		return ok && isText && match(s, pattern, op.kind == opMatchInsensitively), nil
	case opContains:
		switch v := v.(type) {
		case []any:
			for _, item := range v {
				if looseEqual(item, target) {
					return true, nil
				}
			}
			return false, nil
		case map[string]any:
			return false, nil
		}
		s, _ := scalarText(v)
		t, _ := scalarText(target)
		return indexFold(s, t) >= 0, nil
	case opContainsKey:
		obj, ok := v.(map[string]any)
		key, _ := target.(string)
		if !ok {
			return false, nil
		}
		_, found := lookupKey(obj, key)
		return found, nil
	}
	c, err := compare(v, target)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op.name, err)
	}
	switch op.kind {
	case opLess:
		return c < 0, nil
	case opLessOrEquals:
		return c <= 0, nil
	case opGreater:
		return c > 0, nil
	}
	return c >= 0, nil // opGreaterOrEquals
}

// boolish reads true, false, "true" or "false".
func boolish(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// looseEqual is equals: strings compare ignoring case, numbers by value,
// and a scalar equals a string of the same text ("true", "0"), as Azure
// compares a typed value with a string operand.
func looseEqual(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !looseEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := lookupKey(b, k)
			if !ok || !looseEqual(av, bv) {
				return false
			}
		}
		return true
	}
	if fa, ok := toFloat(a); ok {
		if fb, ok := toFloat(b); ok {
			return fa == fb
		}
	}
	sa, ok := scalarText(a)
	sb, ok2 := scalarText(b)
	return ok && ok2 && strings.EqualFold(sa, sb)
}

// scalarText is the text of a string, number or boolean.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.Itoa(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), true
		}
	}
	return 0, false
}

// compare orders two numbers, or two strings: as dates when both are
// ISO 8601 date-times, else ignoring case. Anything else is a type
// mismatch, an error.
func compare(a, b any) (int, error) {
	if fa, ok := toFloat(a); ok {
		if fb, ok := toFloat(b); ok {
			return cmp.Compare(fa, fb), nil
		}
	}
	sa, okA := a.(string)
	sb, okB := b.(string)
	if !okA || !okB {
		return 0, fmt.Errorf("can't compare %s with %s: both must be numbers, strings or dates", jsonText(a), jsonText(b))
	}
	if ta, err := time.Parse(time.RFC3339Nano, sa); err == nil {
		if tb, err := time.Parse(time.RFC3339Nano, sb); err == nil {
			return ta.Compare(tb), nil
		}
	}
	return strings.Compare(strings.ToLower(sa), strings.ToLower(sb)), nil
}

// like matches a whole string against a pattern where * stands for any
// run of characters, ignoring case.
func like(s, pattern string) bool {
	prefix, rest, found := strings.Cut(pattern, "*")
	if !found {
		return strings.EqualFold(s, pattern)
	}
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return false
	}
	s = s[len(prefix):]
	for {
		piece, after, more := strings.Cut(rest, "*")
		if !more {
			return len(s) >= len(piece) && strings.EqualFold(s[len(s)-len(piece):], piece)
		}
		i := indexFold(s, piece)
		if i < 0 {
			return false
		}
		s, rest = s[i+len(piece):], after
	}
}

// indexFold is strings.Index ignoring case.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// match matches a whole string against a pattern where # is a digit, ? a
// letter, . any character, and anything else itself.
func match(s, pattern string, ignoreCase bool) bool {
	for pattern != "" {
		p, pn := utf8.DecodeRuneInString(pattern)
		if s == "" {
			return false
		}
		r, rn := utf8.DecodeRuneInString(s)
		switch p {
		case '#':
			if !unicode.IsDigit(r) {
				return false
			}
		case '?':
			if !unicode.IsLetter(r) {
				return false
			}
		case '.':
		default:
			if r != p && !(ignoreCase && unicode.ToLower(r) == unicode.ToLower(p)) {
				return false
			}
		}
		pattern, s = pattern[pn:], s[rn:]
	}
	return s == ""
}

// jsonText prints a value for a message.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
