package arm

import (
	"fmt"
	"strings"
)

// Filter is a parsed $filter of GET /subscriptions/{s}[/resourceGroups/{rg}]/resources.
// An empty field is no constraint.
type Filter struct {
	ResourceGroup string // resourceGroup eq '...'
	ResourceType  string // resourceType eq 'NS/type'
	Name          string // name eq '...'
	NameContains  string // substringof('...', name)
	TagName       string // tagName eq '...'
	TagValue      string // tagValue eq '...', only with tagName
	Location      string // location eq '...'
}

// Item is what a Filter matches against: one generic resource.
type Item struct {
	ResourceGroup, Type, Name, Location string
	Tags                                map[string]string
}

// ParseFilter parses the OData $filter subset ARM supports on generic
// resource lists: "field eq 'value'" for resourceGroup, resourceType, name,
// tagName, tagValue and location, and substringof('value', name), joined by
// "and". Keywords and field names are case-insensitive; a quote inside a
// literal is doubled. Anything else, "or" included, is a 400 BadRequest
// naming the offending token.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	p := filterParser{src: s, rest: s}
	bad := func(reason string, args ...any) (Filter, error) {
		return Filter{}, Errorf(statusBadRequest, CodeBadRequest,
			"The $filter '%s' is invalid: %s.", s, fmt.Sprintf(reason, args...))
	}
	tok, err := p.next()
	if err != nil {
		return bad("%v", err)
	}
	if tok.kind == tokEOF {
		return f, nil
	}
	for {
		if tok.kind != tokIdent {
			return bad("expected a field name, got %s", tok)
		}
		var field *string
		var val string
		if strings.EqualFold(tok.text, "substringof") {
			// substringof('value', name)
			val, err = p.call()
			if err != nil {
				return bad("%v", err)
			}
			field = &f.NameContains
		} else {
			field = f.field(tok.text)
			if field == nil {
				return bad("filtering on %s is not supported", tok)
			}
			op, err := p.next()
			if err != nil {
				return bad("%v", err)
			}
			if op.kind != tokIdent || !strings.EqualFold(op.text, "eq") {
				return bad("expected eq after %s, got %s", tok, op)
			}
			lit, err := p.next()
			if err != nil {
				return bad("%v", err)
			}
			if lit.kind != tokString {
				return bad("expected a quoted string after eq, got %s", lit)
			}
			val = lit.text
		}
		if *field != "" {
			return bad("%s is given twice", tok)
		}
		*field = val
		tok, err = p.next()
		if err != nil {
			return bad("%v", err)
		}
		if tok.kind == tokEOF {
			break
		}
		if tok.kind != tokIdent || !strings.EqualFold(tok.text, "and") {
			return bad("%s is not supported; join conditions with and", tok)
		}
		if tok, err = p.next(); err != nil {
			return bad("%v", err)
		}
	}
	if f.TagValue != "" && f.TagName == "" {
		return bad("tagValue needs tagName")
	}
	return f, nil
}

// field returns the Filter field for an "eq" comparison on name, or nil.
func (f *Filter) field(name string) *string {
	switch strings.ToLower(name) {
	case "resourcegroup":
		return &f.ResourceGroup
	case "resourcetype":
		return &f.ResourceType
	case "name":
		return &f.Name
	case "tagname":
		return &f.TagName
	case "tagvalue":
		return &f.TagValue
	case "location":
		return &f.Location
	}
	return nil
}

// Match reports whether it satisfies every constraint of f. Comparisons
// ignore case (tag values included, as Azure does); locations also ignore
// spaces ("West US" is "westus").
func (f Filter) Match(it Item) bool {
	eq := strings.EqualFold
	if f.ResourceGroup != "" && !eq(f.ResourceGroup, it.ResourceGroup) ||
		f.ResourceType != "" && !eq(f.ResourceType, it.Type) ||
		f.Name != "" && !eq(f.Name, it.Name) ||
		f.Location != "" && !eq(stripSpaces(f.Location), stripSpaces(it.Location)) ||
		f.NameContains != "" && !strings.Contains(strings.ToLower(it.Name), strings.ToLower(f.NameContains)) {
		return false
	}
	if f.TagName == "" {
		return true
	}
	for k, v := range it.Tags {
		if eq(k, f.TagName) && (f.TagValue == "" || eq(v, f.TagValue)) {
			return true
		}
	}
	return false
}

func stripSpaces(s string) string { return strings.ReplaceAll(s, " ", "") }

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokPunct // ( ) ,
)

type token struct {
	kind tokKind
	text string // identifier, unquoted literal or punctuation
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "the end"
	case tokString:
		return "'" + strings.ReplaceAll(t.text, "'", "''") + "'"
	}
	return "'" + t.text + "'"
}

type filterParser struct {
	src, rest string
}

// next returns the next token.
func (p *filterParser) next() (token, error) {
	p.rest = strings.TrimLeft(p.rest, " \t\r\n")
	if p.rest == "" {
		return token{kind: tokEOF}, nil
	}
	c := p.rest[0]
	switch {
	case c == '(' || c == ')' || c == ',':
		p.rest = p.rest[1:]
		return token{kind: tokPunct, text: string(c)}, nil
	case c == '\'':
		var b strings.Builder
		for i := 1; i < len(p.rest); i++ {
			if p.rest[i] != '\'' {
				b.WriteByte(p.rest[i])
				continue
			}
			if i+1 < len(p.rest) && p.rest[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			p.rest = p.rest[i+1:]
			return token{kind: tokString, text: b.String()}, nil
		}
		return token{}, fmt.Errorf("a string literal is not closed")
	case isIdentByte(c):
		i := 1
		for i < len(p.rest) && isIdentByte(p.rest[i]) {
			i++
		}
		t := token{kind: tokIdent, text: p.rest[:i]}
		p.rest = p.rest[i:]
		return t, nil
	}
	return token{}, fmt.Errorf("unexpected character %q at offset %d", c, len(p.src)-len(p.rest))
}

// call parses the rest of substringof('value', name) and returns value.
func (p *filterParser) call() (string, error) {
	var val string
	for i, want := range []string{"(", "'", ",", "name", ")"} {
		t, err := p.next()
		if err != nil {
			return "", err
		}
		ok := false
		switch want {
		case "'":
			ok, val = t.kind == tokString, t.text
		case "name":
			ok = t.kind == tokIdent && strings.EqualFold(t.text, want)
		default:
			ok = t.kind == tokPunct && t.text == want
		}
		if !ok {
			if i == 3 {
				return "", fmt.Errorf("substringof is supported on name only, got %s", t)
			}
			return "", fmt.Errorf("expected substringof('value', name), got %s", t)
		}
	}
	return val, nil
}

func isIdentByte(c byte) bool {
	return c == '_' || isASCIIAlnum(rune(c))
}
