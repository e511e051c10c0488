package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/store"
)

// Group is a set of principals: users, service principals and other
// groups. A role assigned to a group applies to its members, and to the
// members of groups nested in it.
type Group struct {
	ObjectID    string   `json:"objectId"`
	DisplayName string   `json:"displayName"`
	Members     []string `json:"members,omitempty"` // object IDs
}

var groupDocs = store.NewCollection[Group]("identity/groups/")

// maxNesting bounds how deep group membership is followed.
const maxNesting = 8

// CreateGroup makes an empty group.
func (i *Issuer) CreateGroup(ctx context.Context, displayName string) (Group, error) {
	g, _, err := i.PutGroup(ctx, uuid.NewString(), displayName, nil, nil)
	return g, err
}

// AddMember adds the principal or group memberID to group groupID.
func (i *Issuer) AddMember(ctx context.Context, groupID, memberID string) error {
	if strings.EqualFold(groupID, memberID) {
		return badRequest("A group cannot be a member of itself.")
	}
	for {
		it, err := groupDocs.Get(ctx, i.store, groupID)
		if err != nil {
			return fmt.Errorf("identity: group %s: %w", groupID, err)
		}
		g := it.Value
		if slices.ContainsFunc(g.Members, func(m string) bool { return strings.EqualFold(m, memberID) }) {
			return nil
		}
		g.Members = append(g.Members, strings.ToLower(memberID))
		_, err = i.store.Txn(ctx, groupDocs.Update(groupID, g, it.Revision))
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

// GroupsOf returns the object IDs of the groups objectID is a member of,
// directly or through nested groups up to maxNesting levels, in no
// particular order. Cycles are harmless.
func (i *Issuer) GroupsOf(ctx context.Context, objectID string) ([]string, error) {
	all, _, err := groupDocs.List(ctx, i.store, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("identity: groups of %s: %w", objectID, err)
	}
	memberOf := map[string][]string{} // member → groups it is directly in
	for _, it := range all {
		for _, m := range it.Value.Members {
			memberOf[strings.ToLower(m)] = append(memberOf[strings.ToLower(m)], it.Value.ObjectID)
		}
	}
	seen := map[string]bool{}
	frontier := []string{strings.ToLower(objectID)}
	for depth := 0; depth < maxNesting && len(frontier) > 0; depth++ {
		var next []string
		for _, id := range frontier {
			for _, g := range memberOf[id] {
				if !seen[g] {
					seen[g] = true
					next = append(next, g)
				}
			}
		}
		frontier = next
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	slices.Sort(out)
	return out, nil
}

// Groups lists the groups.
func (i *Issuer) Groups(ctx context.Context) ([]Group, error) {
	items, _, err := groupDocs.List(ctx, i.store, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("identity: list groups: %w", err)
	}
	out := make([]Group, len(items))
	for j, it := range items {
		out[j] = it.Value
	}
	return out, nil
}
