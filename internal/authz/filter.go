package authz

import (
	"fmt"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
)

// AssignmentFilter is a parsed $filter of a role assignment list. The zero
// value is no filter: the assignments at, above and below the list scope.
type AssignmentFilter struct {
	AtScope     bool   // atScope(): only those at or above the list scope
	PrincipalID string // principalId eq '{id}': only those of that principal
	AssignedTo  string // assignedTo('{id}'): only those of that principal or its groups
}

// ParseAssignmentFilter parses the $filter ARM accepts on role assignment
// lists: atScope(), principalId eq '{id}' and assignedTo('{id}'), alone or
// joined by "and", with at most one of the last two. Keywords are
// case-insensitive, a quote inside a literal is doubled, and the id of
// principalId may be unquoted. Anything else is a 400 BadRequest.
func ParseAssignmentFilter(s string) (AssignmentFilter, error) {
	var f AssignmentFilter
	bad := func(reason string, args ...any) (AssignmentFilter, error) {
		return AssignmentFilter{}, arm.Errorf(statusBadRequest, arm.CodeBadRequest,
			"The $filter '%s' is invalid: %s.", s, fmt.Sprintf(reason, args...))
	}
	l := lexer{rest: s}
	if l.peek().kind == tokEnd {
		return f, nil
	}
	for {
		name := l.next()
		if name.kind != tokWord {
			return bad("expected atScope(), principalId eq or assignedTo(), got %s", name)
		}
		switch {
		case strings.EqualFold(name.text, "atScope"):
			if f.AtScope {
				return bad("atScope() appears twice")
			}
			if !l.expect(tokOpen) || !l.expect(tokClose) {
				return bad("atScope takes no arguments: write atScope()")
			}
			f.AtScope = true
		case strings.EqualFold(name.text, "principalId"), strings.EqualFold(name.text, "assignedTo"):
			if f.PrincipalID != "" || f.AssignedTo != "" {
				return bad("only one of principalId and assignedTo may be given, once")
			}
			var id token
			if strings.EqualFold(name.text, "principalId") {
				if eq := l.next(); eq.kind != tokWord || !strings.EqualFold(eq.text, "eq") {
					return bad("expected eq after principalId, got %s", eq)
				}
				if id = l.next(); id.kind != tokString && id.kind != tokWord {
					return bad("expected an object ID after principalId eq, got %s", id)
				}
				f.PrincipalID = id.text
			} else {
				if !l.expect(tokOpen) {
					return bad("expected ( after assignedTo")
				}
				if id = l.next(); id.kind != tokString {
					return bad("expected a quoted object ID in assignedTo(), got %s", id)
				}
				if !l.expect(tokClose) {
					return bad("expected ) after assignedTo('%s'", id.text)
				}
				f.AssignedTo = id.text
			}
			if id.text == "" {
				return bad("the object ID is empty")
			}
		default:
			return bad("unsupported condition %s; use atScope(), principalId eq or assignedTo()", name)
		}
		switch t := l.next(); {
		case t.kind == tokEnd:
			return f, nil
		case t.kind != tokWord || !strings.EqualFold(t.text, "and"):
			return bad("expected and or the end, got %s", t)
		}
	}
}

// Match reports whether list filter f keeps assignment a in a list at scope.
// groups are the groups of the principal that assignedTo() names, which the
// caller resolves; other filters ignore them.
func (f AssignmentFilter) Match(a Assignment, scope string, groups []string) bool {
	s, as := scopeKey(scope), scopeKey(a.Scope)
	if !covers(as, s) && (f.AtScope || !covers(s, as)) {
		return false
	}
	switch {
	case f.PrincipalID != "":
		return strings.EqualFold(a.PrincipalID, f.PrincipalID)
	case f.AssignedTo != "":
		return strings.EqualFold(a.PrincipalID, f.AssignedTo) ||
			slices.ContainsFunc(groups, func(g string) bool { return strings.EqualFold(a.PrincipalID, g) })
	}
	return true
}

type tokenKind int

const (
	tokEnd tokenKind = iota
	tokWord
	tokString
	tokOpen
	tokClose
	tokBad // an unterminated string
)

type token struct {
	kind tokenKind
	text string
}

func (t token) String() string {
	switch t.kind {
	case tokEnd:
		return "the end"
	case tokString:
		return fmt.Sprintf("'%s'", strings.ReplaceAll(t.text, "'", "''"))
	case tokBad:
		return "an unterminated string"
	}
	return fmt.Sprintf("'%s'", t.text)
}

// lexer splits a filter into words, quoted strings and parentheses.
type lexer struct {
	rest string
}

func (l *lexer) peek() token {
	c := *l
	return c.next()
}

func (l *lexer) expect(k tokenKind) bool {
	return l.next().kind == k
}

func (l *lexer) next() token {
	l.rest = strings.TrimLeft(l.rest, " \t\r\n")
	if l.rest == "" {
		return token{kind: tokEnd}
	}
	switch c := l.rest[0]; c {
	case '(', ')':
		l.rest = l.rest[1:]
		if c == '(' {
			return token{kind: tokOpen, text: "("}
		}
		return token{kind: tokClose, text: ")"}
	case '\'':
		var b strings.Builder
		s := l.rest[1:]
		for {
			i := strings.IndexByte(s, '\'')
			if i < 0 {
				l.rest = ""
				return token{kind: tokBad}
			}
			b.WriteString(s[:i])
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				s = s[i+2:]
				continue
			}
			l.rest = s[i+1:]
			return token{kind: tokString, text: b.String()}
		}
	}
	i := strings.IndexAny(l.rest, " \t\r\n()'")
	if i < 0 {
		i = len(l.rest)
	}
	w := l.rest[:i]
	l.rest = l.rest[i:]
	return token{kind: tokWord, text: w}
}
