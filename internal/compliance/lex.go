package compliance

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// tokenKind is what a token of $filter or $apply is.
type tokenKind uint8

const (
	tokEnd     tokenKind = iota
	tokName              // a property, a keyword or a function: letters, digits, _ and $
	tokLiteral           // 'string', a number, a datetime, true, false or null
	tokOpen              // (
	tokClose             // )
	tokComma             // ,
	tokSlash             // /, between $apply transformations
)

var punctuation = map[byte]tokenKind{'(': tokOpen, ')': tokClose, ',': tokComma, '/': tokSlash}

type token struct {
	kind tokenKind
	text string // as written
	lit  value  // a literal's value
	pos  int    // byte offset in the parameter
}

// describe names the token in an error message.
func (t token) describe() string {
	switch {
	case t.kind == tokEnd:
		return "the end"
	case t.kind == tokLiteral && t.lit.kind == kindString:
		return t.text // quoted already
	}
	return "'" + t.text + "'"
}

// lex splits $filter or $apply into tokens. Keywords are names here; the
// parser tells them apart. true, false and null are literals, as are
// datetime'…' and unquoted ISO 8601 timestamps.
func lex(param, src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '(' || c == ')' || c == ',' || c == '/':
			i++
			toks = append(toks, token{kind: punctuation[c], text: src[start:i], pos: start})
			continue
		case c == '\'':
			s, end, err := quoted(param, src, i)
			if err != nil {
				return nil, err
			}
			i = end
			toks = append(toks, token{kind: tokLiteral, text: src[start:i], lit: value{kind: kindString, str: s}, pos: start})
			continue
		case isDigit(c) || c == '-' && i+1 < len(src) && isDigit(src[i+1]):
			i++
			for i < len(src) && (isNameByte(src[i]) || strings.IndexByte(":.+-", src[i]) >= 0) {
				i++
			}
			text := src[start:i]
			v, ok := numberOrTime(text)
			if !ok {
				return nil, queryErrorf(param, start, "'%s' is neither a number nor an ISO 8601 timestamp", text)
			}
			toks = append(toks, token{kind: tokLiteral, text: text, lit: v, pos: start})
			continue
		case isNameByte(c):
			for i < len(src) && isNameByte(src[i]) {
				i++
			}
			text := src[start:i]
			if strings.EqualFold(text, "datetime") && i < len(src) && src[i] == '\'' {
				s, end, err := quoted(param, src, i)
				if err != nil {
					return nil, err
				}
				t, err := parseTime(s)
				if err != nil {
					return nil, queryErrorf(param, start, "datetime'%s' is not an ISO 8601 timestamp", s)
				}
				i = end
				toks = append(toks, token{kind: tokLiteral, text: src[start:i], lit: value{kind: kindTime, time: t}, pos: start})
				continue
			}
			tok := token{kind: tokName, text: text, pos: start}
			switch strings.ToLower(text) {
			case "true", "false":
				tok = token{kind: tokLiteral, text: text, lit: value{kind: kindBool, flag: strings.EqualFold(text, "true")}, pos: start}
			case "null":
				tok = token{kind: tokLiteral, text: text, lit: value{kind: kindNull}, pos: start}
			}
			toks = append(toks, tok)
			continue
		}
		return nil, queryErrorf(param, start, "unexpected character %q", rune(c))
	}
	return append(toks, token{kind: tokEnd, pos: len(src)}), nil
}

// quoted reads the string literal that starts at src[i], a quote; a quote
// inside it is doubled. It returns the string and where the literal ends.
func quoted(param, src string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(src); j++ {
		if src[j] != '\'' {
			b.WriteByte(src[j])
			continue
		}
		if j+1 < len(src) && src[j+1] == '\'' {
			b.WriteByte('\'')
			j++
			continue
		}
		return b.String(), j + 1, nil
	}
	return "", 0, queryErrorf(param, i, "the string is not closed with a quote")
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == '$'
}

// numberOrTime reads an unquoted literal that starts with a digit.
func numberOrTime(text string) (value, bool) {
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return value{kind: kindNumber, num: n}, true
	}
	if t, err := parseTime(text); err == nil {
		return value{kind: kindTime, time: t}, true
	}
	return value{}, false
}

// timeLayouts are the ISO 8601 forms accepted: az sends
// 2019-10-05T18:00:00.000Z, the Go SDK RFC 3339 with nanoseconds, and
// Azure's own queryResultsUri a space for the T. Without a zone, UTC.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"}

func parseTime(s string) (time.Time, error) {
	s = strings.Replace(s, " ", "T", 1)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 timestamp", s)
}
