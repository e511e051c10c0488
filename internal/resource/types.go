// Package resource is the resource framework: the contract a resource
// provider fills in to add an ARM type (its api-versions, name rules,
// validation, defaults, read-only fields and actions), and the generic
// machinery every type shares: create, read, update, delete and list
// against the store, ETags, systemData, and long-running operations that
// survive crashes. Providers and the front door import it.
package resource

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/store"
)

// Scope says where instances of a type live.
type Scope int

const (
	// ScopeResourceGroup types live in a resource group (most types).
	ScopeResourceGroup Scope = iota
	// ScopeSubscription types live directly in a subscription (resource groups themselves).
	ScopeSubscription
	// ScopeAny types are extension resources that live at any scope: the
	// tenant root, a subscription, a group or a resource (role
	// assignments, locks).
	ScopeAny
)

// Type declares one ARM resource type. A provider fills one in per type;
// everything else is shared.
type Type struct {
	Namespace string // e.g. "Microsoft.ManagedNetworkFabric"
	// Name is the type chain below the namespace: "ipPrefixes", or
	// "l3IsolationDomains/internalNetworks" for a child type.
	Name        string
	APIVersions []string // every version clients may send; order does not matter
	Scope       Scope
	// Tracked types have a location and tags; proxy types have neither.
	Tracked bool
	// LocationOptional types keep a location when one is sent, without
	// requiring it (a deployment has one at subscription scope only).
	LocationOptional bool
	// SystemManaged types are created and deleted by the system (a
	// cluster's racks and machines): users may read them, PATCH them and
	// call their actions, but their PUT and DELETE are refused.
	SystemManaged bool
	// NamePattern, when set, is checked on top of ARM's own name rules;
	// NameRule says the same thing in words for the error message.
	NamePattern *regexp.Regexp
	NameRule    string
	// ReadOnly lists the properties the server owns. Values sent in a PUT
	// are ignored and the stored ones kept. provisioningState is always
	// read-only.
	ReadOnly []string
	// Reported lists the properties that others than the resource's
	// operations write while one runs (what a machine's agent reports):
	// an operation's save keeps their stored values rather than those it
	// read when it started.
	Reported []string
	// Sensitive lists the property paths of secrets, such as
	// "bmcCredentials.password" or "racks[].credentials.password": stored,
	// and seen by Validate and the provider, but left out of every
	// response; a PUT or PATCH without one keeps the stored value.
	Sensitive []string
	// Validate checks a new or changed resource and fills in defaults. It
	// returns an *arm.Error that names the field, and must not write
	// anything.
	Validate func(ctx context.Context, w *Write) error
	// ValidateDelete, when set, may refuse a DELETE of the stored resource
	// r before anything is written (a volume still attached), with an
	// *arm.Error that says why.
	ValidateDelete func(ctx context.Context, r *Resource) error
	// OwnsPool says each resource of the type owns a pool of claims
	// (Write.ClaimIn: an L3 network's addresses): its deletion conflicts
	// with a claim in it made meanwhile, so that ValidateDelete, run
	// again, sees it.
	OwnsPool bool
	// Provision, when set, makes PUT and PATCH long-running: the request is
	// acknowledged with provisioningState Accepted and Provision runs later
	// in the operations controller. It must be idempotent: after a crash
	// it runs again.
	Provision func(ctx context.Context, t *Task) error
	// Deprovision, when set, makes DELETE long-running and runs before the
	// resource is removed. It must be idempotent.
	Deprovision func(ctx context.Context, t *Task) error
	// Actions are the POST operations on an instance, by name.
	Actions map[string]Action
	// Queries are POST operations that change nothing and are answered at
	// once, whether or not the instance exists: a deployment's validate
	// and whatIf. They are authorized as actions.
	Queries map[string]func(ctx context.Context, req *Request) (*Response, error)
	// LenientBody decodes PUT bodies with arm.DecodeLenient: az 2.45
	// sends a deployment's template under an unquoted key, with comments.
	LenientBody bool
	// List, when set, answers collection GETs of the type in place of the
	// generic list: for types whose lists are not "what is stored directly
	// below" (role assignments list what applies at a scope, built-in role
	// definitions are not stored). scope is the subscription, group or
	// resource the list was asked at.
	List func(ctx context.Context, req *Request, scope arm.ID) (*Response, error)
	// Virtual, when set, finds instances that exist without being stored
	// (the built-in role definitions, which exist at every scope). GET
	// serves them; DELETE refuses them unless a Keeper deletes them.
	Virtual func(ctx context.Context, id arm.ID) (*Resource, bool)
	// Computed, when set, fills in the properties a GET of an instance
	// shows without their being stored (a template spec's versions, which
	// are its children).
	Computed func(ctx context.Context, r *Resource) error
	// Keeper, when set, keeps the instances outside the resource store
	// (the identity provider keeps principals with their credential
	// hashes): PUT and DELETE go to it, GET and lists to Virtual and List.
	Keeper Keeper
}

// Keeper writes a type's instances where it keeps them. audit is the
// activity-log record of the change: commit it in the same transaction.
type Keeper interface {
	// Put creates or replaces the instance id from w.New's properties and
	// returns it as clients see it, and whether it created it.
	Put(ctx context.Context, w *Write, audit Writes) (r *Resource, created bool, err error)
	// Delete deletes the instance id, reporting whether there was one (and
	// so whether audit was committed).
	Delete(ctx context.Context, id arm.ID, audit Writes) (existed bool, err error)
}

// Writes are store writes that a Keeper commits with its own; providers
// pass them on without looking inside.
type Writes = []store.Op

// Action is one POST operation on a resource, always long-running.
type Action struct {
	// Validate checks the request body before anything is written.
	Validate func(ctx context.Context, r *Resource, input json.RawMessage) error
	// Run does the work in the operations controller and returns what the
	// operation reports as its properties. It must be idempotent.
	Run func(ctx context.Context, t *Task) (any, error)
	// Serialize, when set, names what requests of this action contend
	// for (the cluster of a machine being restarted): two requests with
	// the same key are accepted one after the other, so that each one's
	// Validate sees the other's operation in flight (Resource.Busy).
	Serialize func(r *Resource, input json.RawMessage) string
}

// SortedAPIVersions lists the type's api-versions as clients expect them:
// stable before preview, newest first.
func (t *Type) SortedAPIVersions() []string {
	vs := slices.Clone(t.APIVersions)
	arm.SortAPIVersions(vs)
	return vs
}

// FullName is "{Namespace}/{Name}".
func (t *Type) FullName() string { return t.Namespace + "/" + t.Name }

// Write is a PUT or PATCH on its way to the store, handed to Validate.
type Write struct {
	ID         arm.ID
	APIVersion string
	New        *Resource // what will be stored; Validate may set defaults
	Old        *Resource // nil on create
	Caller     Caller    // who is writing
	// Claims are the unique items the resource holds once the write
	// commits (an IP address of a network): Validate appends them, and
	// they are claimed in the write's transaction. Items held before and
	// not claimed again are released (see Claim, Held).
	Claims []Claim
	held   []Claim             // what the stored resource holds
	owners map[string]store.Op // by pool: the guard of its owner's revision (ClaimIn)
}

// DecodeProperties decodes r's properties into v (a provider's typed
// model); a type mismatch names the field under "properties.".
func DecodeProperties(r *Resource, v any) error {
	raw, err := json.Marshal(r.Properties)
	if err != nil {
		return err
	}
	if err := arm.DecodeStrict(raw, v); err != nil {
		if e, ok := err.(*arm.Error); ok && e.Target != "" {
			e.Target = "properties." + e.Target
		}
		return err
	}
	return nil
}

// registry finds types by their full name, case-insensitively.
type registry struct {
	types map[string]*Type // lower(FullName) → type
}

func (r *registry) add(t *Type) {
	if r.types == nil {
		r.types = map[string]*Type{}
	}
	r.types[strings.ToLower(t.FullName())] = t
}

func (r *registry) lookup(fullName string) (*Type, bool) {
	t, ok := r.types[strings.ToLower(fullName)]
	return t, ok
}

// descendants are the types below t at any depth, e.g. internalNetworks
// below l3IsolationDomains.
func (r *registry) descendants(t *Type) []*Type {
	prefix := strings.ToLower(t.FullName()) + "/"
	var out []*Type
	for k, c := range r.types {
		if strings.HasPrefix(k, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// inKeyOrder lists every type in the order of its store keys.
func (r *registry) inKeyOrder() []*Type {
	out := r.sorted()
	slices.SortFunc(out, func(a, b *Type) int { return strings.Compare(typePrefix(a), typePrefix(b)) })
	return out
}

// sorted lists every type by full name.
func (r *registry) sorted() []*Type {
	out := make([]*Type, 0, len(r.types))
	for _, t := range r.types {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Type) int {
		return strings.Compare(strings.ToLower(a.FullName()), strings.ToLower(b.FullName()))
	})
	return out
}
