package arm

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ID is a parsed ARM resource ID:
//
//	/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}]...
//
// Any prefix of that is an ID too (a subscription, a group, a provider
// namespace), a resource may sit at subscription or tenant level, and an
// extension resource hangs below another resource:
// {resourceId}/providers/{ns}/{type}/{name}. Names keep the caller's casing;
// compare IDs with [ID.Key].
type ID struct {
	Scope         *ID      // for an extension resource: the resource it extends; nil otherwise
	Subscription  string   // "" at tenant scope
	ResourceGroup string   // "" above group scope
	Namespace     string   // provider namespace of this resource; "" for a subscription or a group
	Types         []string // type chain below the namespace, e.g. ["l3IsolationDomains", "internalNetworks"]
	Names         []string // one name per type
}

// Path is a parsed request path: the deepest complete ID it names and what
// follows it.
type Path struct {
	ID ID
	// Tail is what follows ID: a collection ("resourceGroups", "ipPrefixes"),
	// an action ("powerOff", "register"), a core endpoint ("locations",
	// "resources", "providers", "tenants", "subscriptions") or an operation
	// URL ("operationresults", "{id}").
	Tail []string
}

// ParsePath parses a request URL path (already percent-decoded). It collapses
// repeated slashes, ignores a trailing slash and matches the fixed segments
// "subscriptions", "resourceGroups" and "providers" case-insensitively, as az
// sends "resourcegroups" and "providers/NS//type". Names, group names,
// namespaces and types are validated; a violation is a 400 *Error.
func ParsePath(p string) (Path, error) {
	s := newSegments(p)
	var id ID
	if s.left() > 0 && strings.EqualFold(s.peek(), "subscriptions") {
		if s.left() == 1 {
			return Path{Tail: s.rest()}, nil
		}
		s.next()
		id.Subscription = s.next()
		if s.left() > 0 && strings.EqualFold(s.peek(), "resourceGroups") {
			if s.left() == 1 {
				return Path{ID: id, Tail: s.rest()}, nil
			}
			s.next()
			rg := s.next()
			if err := ValidateResourceGroupName(rg); err != nil {
				return Path{}, err
			}
			id.ResourceGroup = rg
		}
	}
	// Types and Names of the ID and of any scopes share one backing array:
	// Types in buf[:k], Names in buf[k:].
	var (
		buf     []string
		k, used int
	)
	for s.left() > 1 && strings.EqualFold(s.peek(), "providers") {
		if id.Namespace != "" {
			if len(id.Types) == 0 {
				break // providers/{ns}/providers/...: not an ID
			}
			scope := id
			id = ID{Scope: &scope, Subscription: scope.Subscription, ResourceGroup: scope.ResourceGroup}
		}
		s.next()
		ns := s.next()
		if err := validateNamespace(ns); err != nil {
			return Path{}, err
		}
		id.Namespace = ns
		start := used
		for s.left() > 1 && !strings.EqualFold(s.peek(), "providers") {
			if buf == nil {
				k = s.left() / 2
				buf = make([]string, 2*k)
			}
			typ, name := s.next(), s.next()
			if err := validateType(typ); err != nil {
				return Path{}, err
			}
			if err := ValidateResourceName(name); err != nil {
				return Path{}, err
			}
			buf[used], buf[k+used] = typ, name
			used++
		}
		if used > start {
			id.Types = buf[start:used:used]
			id.Names = buf[k+start : k+used : k+used]
		}
	}
	return Path{ID: id, Tail: s.rest()}, nil
}

// ParseID parses a complete resource ID such as a body's "id" or a
// roleDefinitionId. "/" is the tenant root (the zero ID).
func ParseID(s string) (ID, error) {
	if s == "" {
		return ID{}, Errorf(statusBadRequest, CodeInvalidResourceID, "The resource ID is empty.")
	}
	p, err := ParsePath(s)
	if err != nil {
		return ID{}, err
	}
	if len(p.Tail) > 0 {
		return ID{}, Errorf(statusBadRequest, CodeInvalidResourceID,
			"The resource ID '%s' is invalid: '%s' does not complete a resource ID.", s, strings.Join(p.Tail, "/"))
	}
	return p.ID, nil
}

// segments walks the non-empty segments of a path without allocating.
type segments struct {
	p    string // unread input
	n, i int    // segment count and index of the next segment
}

func newSegments(p string) segments {
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] != '/' && (i == 0 || p[i-1] == '/') {
			n++
		}
	}
	return segments{p: p, n: n}
}

func (s *segments) left() int { return s.n - s.i }

// peek returns the next segment; left must be positive.
func (s *segments) peek() string {
	p := strings.TrimLeft(s.p, "/")
	if j := strings.IndexByte(p, '/'); j >= 0 {
		return p[:j]
	}
	return p
}

// next consumes and returns the next segment; left must be positive.
func (s *segments) next() string {
	s.p = strings.TrimLeft(s.p, "/")
	j := strings.IndexByte(s.p, '/')
	if j < 0 {
		j = len(s.p)
	}
	seg := s.p[:j]
	s.p = s.p[j:]
	s.i++
	return seg
}

// rest consumes the remaining segments; nil if there are none.
func (s *segments) rest() []string {
	if s.left() == 0 {
		return nil
	}
	r := make([]string, 0, s.left())
	for s.left() > 0 {
		r = append(r, s.next())
	}
	return r
}

// String returns the canonical ID: fixed segments in canonical case
// ("subscriptions", "resourceGroups", "providers"), everything else as given.
// The zero ID is "/".
func (id ID) String() string {
	if id.IsZero() {
		return "/"
	}
	var b strings.Builder
	b.Grow(id.len())
	id.write(&b, false)
	return b.String()
}

// Key is the identity of id: strings.ToLower(id.String()). Compare and store
// IDs by Key, because ARM matches every part of an ID case-insensitively.
func (id ID) Key() string {
	if id.IsZero() {
		return "/"
	}
	var b strings.Builder
	b.Grow(id.len())
	id.write(&b, true)
	return b.String()
}

// len is the length of String (before lower-casing).
func (id ID) len() int {
	n := 0
	if id.Scope != nil {
		n = id.Scope.len()
	} else {
		if id.Subscription != "" {
			n += len("/subscriptions/") + len(id.Subscription)
		}
		if id.ResourceGroup != "" {
			n += len("/resourceGroups/") + len(id.ResourceGroup)
		}
	}
	if id.Namespace != "" {
		n += len("/providers/") + len(id.Namespace)
	}
	for i, t := range id.Types {
		n += 2 + len(t) + len(id.Names[i])
	}
	return n
}

func (id ID) write(b *strings.Builder, lower bool) {
	seg := b.WriteString
	if lower {
		seg = func(s string) (int, error) { writeLower(b, s); return 0, nil }
	}
	if id.Scope != nil {
		id.Scope.write(b, lower)
	} else {
		if id.Subscription != "" {
			seg("/subscriptions/")
			seg(id.Subscription)
		}
		if id.ResourceGroup != "" {
			seg("/resourceGroups/")
			seg(id.ResourceGroup)
		}
	}
	if id.Namespace != "" {
		seg("/providers/")
		seg(id.Namespace)
	}
	for i, t := range id.Types {
		seg("/")
		seg(t)
		seg("/")
		seg(id.Names[i])
	}
}

// writeLower writes strings.ToLower(s) to b. ASCII goes through a stack
// buffer: strings.ToLower and WriteByte per byte are several times slower.
func writeLower(b *strings.Builder, s string) {
	var tmp [64]byte
	for len(s) > 0 {
		n := 0
		for ; n < len(tmp) && n < len(s); n++ {
			c := s[n]
			if c >= utf8.RuneSelf {
				b.Write(tmp[:n])
				b.WriteString(strings.ToLower(s[n:]))
				return
			}
			if c-'A' < 26 {
				c += 'a' - 'A'
			}
			tmp[n] = c
		}
		b.Write(tmp[:n])
		s = s[n:]
	}
}

// Type is the ARM resource type of id, as in a body's "type":
// "Microsoft.Resources/subscriptions", "Microsoft.Resources/resourceGroups"
// or "{Namespace}/{Types joined by /}". It is the bare namespace for a
// provider ID and "" for the tenant root.
func (id ID) Type() string {
	switch {
	case id.Namespace != "":
		if len(id.Types) == 0 {
			return id.Namespace
		}
		return id.Namespace + "/" + strings.Join(id.Types, "/")
	case id.ResourceGroup != "":
		return "Microsoft.Resources/resourceGroups"
	case id.Subscription != "":
		return "Microsoft.Resources/subscriptions"
	}
	return ""
}

// Name is the last name in id: the resource's name, the namespace of a
// provider ID, the group name or the subscription ID.
func (id ID) Name() string {
	switch {
	case len(id.Names) > 0:
		return id.Names[len(id.Names)-1]
	case id.Namespace != "":
		return id.Namespace
	case id.ResourceGroup != "":
		return id.ResourceGroup
	}
	return id.Subscription
}

// Parent returns the ID one level up: a child resource's parent, a top-level
// resource's group, subscription or tenant root, an extension resource's
// extended resource, a group's subscription. It returns false for the tenant
// root.
func (id ID) Parent() (ID, bool) {
	switch {
	case len(id.Types) > 1:
		n := len(id.Types) - 1
		id.Types = id.Types[:n:n]
		id.Names = id.Names[:n:n]
		return id, true
	case id.Namespace != "":
		if id.Scope != nil {
			return *id.Scope, true
		}
		return ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}, true
	case id.ResourceGroup != "":
		return ID{Subscription: id.Subscription}, true
	case id.Subscription != "":
		return ID{}, true
	}
	return ID{}, false
}

// IsZero reports whether id is the tenant root.
func (id ID) IsZero() bool {
	return id.Scope == nil && id.Subscription == "" && id.ResourceGroup == "" &&
		id.Namespace == "" && len(id.Types) == 0
}

// Contains reports whether other is id or below it, ignoring case: a
// subscription contains its groups, a group its resources, a resource its
// children and extension resources. The tenant root contains everything.
func (id ID) Contains(other ID) bool {
	k, o := id.Key(), other.Key()
	if k == "/" {
		return true
	}
	return strings.HasPrefix(o, k) && (len(o) == len(k) || o[len(k)] == '/')
}

// Child returns the ID of the resource named name of type typ below id. typ
// is a bare type ("internalNetworks") for a child of a resource, or
// "{namespace}/{type}" for a resource in a subscription or group, or for an
// extension resource on a resource.
func (id ID) Child(typ, name string) ID {
	if ns, t, ok := strings.Cut(typ, "/"); ok {
		if id.Namespace == "" {
			return ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup,
				Namespace: ns, Types: []string{t}, Names: []string{name}}
		}
		scope := id
		return ID{Scope: &scope, Subscription: id.Subscription, ResourceGroup: id.ResourceGroup,
			Namespace: ns, Types: []string{t}, Names: []string{name}}
	}
	id.Types = append(slices.Clip(id.Types), typ)
	id.Names = append(slices.Clip(id.Names), name)
	return id
}

// ResourceGroupID returns the ID of the group id is in, or the zero ID if it
// is not in a group.
func (id ID) ResourceGroupID() ID {
	if id.ResourceGroup == "" {
		return ID{}
	}
	return ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}
}

// ValidateResourceName checks a resource name against the RPC rules: at most
// 260 characters, none of <>%&:\?/ and no control characters. Providers add
// their own, stricter rules.
func ValidateResourceName(name string) error {
	bad := func(reason string, args ...any) error {
		return Errorf(statusBadRequest, CodeInvalidResourceName,
			"The resource name '%s' is invalid: %s.", name, fmt.Sprintf(reason, args...))
	}
	if name == "" {
		return bad("it is empty")
	}
	if n := utf8.RuneCountInString(name); n > 260 {
		return bad("it has %d characters; the limit is 260", n)
	}
	for _, r := range name {
		switch {
		case strings.ContainsRune(`<>%&:\?/`, r):
			return bad("it contains '%c'; a name must not contain any of <>%%&:\\?/", r)
		case unicode.IsControl(r):
			return bad("it contains the control character %U", r)
		}
	}
	return nil
}

// ValidateResourceGroupName checks a group name against the RPC rules: at
// most 90 letters, digits (Unicode included) and -_(). and not ending in '.'.
func ValidateResourceGroupName(name string) error {
	bad := func(reason string, args ...any) error {
		return Errorf(statusBadRequest, CodeInvalidResourceGroupName,
			"The resource group name '%s' is invalid: %s.", name, fmt.Sprintf(reason, args...))
	}
	if name == "" {
		return bad("it is empty")
	}
	if n := utf8.RuneCountInString(name); n > 90 {
		return bad("it has %d characters; the limit is 90", n)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_().", r) {
			return bad("it contains %q; use letters, digits and -_().", r)
		}
	}
	if strings.HasSuffix(name, ".") {
		return bad("it ends with '.'")
	}
	return nil
}

// validateNamespace checks a provider namespace: ASCII letters, digits and '.'.
func validateNamespace(ns string) error {
	for _, r := range ns {
		if !isASCIIAlnum(r) && r != '.' {
			return Errorf(statusBadRequest, CodeInvalidResourceNamespace,
				"The resource namespace '%s' is invalid: it contains %q; use ASCII letters, digits and '.'.", ns, r)
		}
	}
	return nil
}

// validateType checks a resource type segment: ASCII letters and digits.
func validateType(typ string) error {
	for _, r := range typ {
		if !isASCIIAlnum(r) {
			return Errorf(statusBadRequest, CodeInvalidResourceType,
				"The resource type '%s' is invalid: it contains %q; use ASCII letters and digits.", typ, r)
		}
	}
	return nil
}

func isASCIIAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}
