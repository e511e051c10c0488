package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/store"
)

// The writes behind Citadel.Identity's ARM resources. Each commits extra
// (the change's activity-log record) in its own transaction.

// PutGroup creates the group objectID, or renames it and sets its
// members. It reports whether it created the group.
func (i *Issuer) PutGroup(ctx context.Context, objectID, displayName string, members []string, extra []store.Op) (Group, bool, error) {
	if _, err := uuid.Parse(objectID); err != nil || len(objectID) != 36 {
		return Group{}, false, badRequest("A group's name is its object id, a GUID, not '%s'.", objectID)
	}
	displayName = strings.TrimSpace(displayName)
	if displayName == "" || utf8.RuneCountInString(displayName) > 256 {
		return Group{}, false, badRequest("The display name of a group must have 1 to 256 characters.")
	}
	g := Group{ObjectID: strings.ToLower(objectID), DisplayName: displayName}
	for _, m := range members {
		if strings.EqualFold(m, objectID) {
			return Group{}, false, badRequest("A group cannot be a member of itself.")
		}
		g.Members = append(g.Members, strings.ToLower(m))
	}
	for {
		it, err := groupDocs.Get(ctx, i.store, g.ObjectID)
		rev := it.Revision
		if errors.Is(err, store.ErrNotFound) {
			rev = 0
		} else if err != nil {
			return Group{}, false, err
		}
		_, err = i.store.Txn(ctx, append([]store.Op{groupDocs.Update(g.ObjectID, g, rev)}, extra...)...)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Group{}, false, fmt.Errorf("identity: put group %s: %w", objectID, err)
		}
		return g, rev == 0, nil
	}
}

// DeleteGroup deletes the group objectID; false when there was none.
func (i *Issuer) DeleteGroup(ctx context.Context, objectID string, extra []store.Op) (bool, error) {
	return i.deleteDoc(ctx, groupDocs.Key(strings.ToLower(objectID)), extra)
}

// PutServicePrincipal creates the service principal appID with a first
// client secret, returned once, or renames it. It reports whether it
// created the principal.
func (i *Issuer) PutServicePrincipal(ctx context.Context, appID, displayName string, extra []store.Op) (ServicePrincipal, string, bool, error) {
	key, ok := spKey(appID)
	if !ok {
		return ServicePrincipal{}, "", false, badRequest("A service principal's name is its application id, a GUID, not '%s'.", appID)
	}
	displayName = strings.TrimSpace(displayName)
	if displayName == "" || utf8.RuneCountInString(displayName) > 256 {
		return ServicePrincipal{}, "", false, badRequest("The display name of a service principal must have 1 to 256 characters.")
	}
	for {
		it, err := servicePrincipals.Get(ctx, i.store, key)
		switch {
		case err == nil:
			doc := it.Value
			doc.DisplayName = displayName
			_, err = i.store.Txn(ctx, append([]store.Op{servicePrincipals.Update(key, doc, it.Revision)}, extra...)...)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return doc.ServicePrincipal, "", false, err
		case !errors.Is(err, store.ErrNotFound):
			return ServicePrincipal{}, "", false, err
		}
		secret := newSecret()
		hash, err := hashSecret(ctx, secret)
		if err != nil {
			return ServicePrincipal{}, "", false, fmt.Errorf("identity: create service principal %q: %w", displayName, err)
		}
		now := i.now().UTC()
		doc := spDoc{ServicePrincipal: ServicePrincipal{
			AppID: key, ObjectID: uuid.NewString(), DisplayName: displayName, Created: now,
			Secrets: []SecretInfo{{ID: uuid.NewString(), Hint: secret[:3], Created: now}},
		}}
		doc.SecretHashes = []secretDoc{{ID: doc.Secrets[0].ID, Hash: hash}}
		_, err = i.store.Txn(ctx, append([]store.Op{servicePrincipals.Create(key, doc)}, extra...)...)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return ServicePrincipal{}, "", false, fmt.Errorf("identity: create service principal %q: %w", displayName, err)
		}
		i.log.InfoContext(ctx, "service principal created", "app_id", doc.AppID, "object_id", doc.ObjectID)
		return doc.ServicePrincipal, secret, true, nil
	}
}

// DeleteServicePrincipal deletes the service principal appID; false when
// there was none. Tokens it holds stay valid until they expire.
func (i *Issuer) DeleteServicePrincipal(ctx context.Context, appID string, extra []store.Op) (bool, error) {
	key, ok := spKey(appID)
	if !ok {
		return false, nil
	}
	return i.deleteDoc(ctx, servicePrincipals.Key(key), extra)
}

// PutUser creates the user upn, or renames it; a non-empty password sets
// it (required on create). It reports whether it created the user.
func (i *Issuer) PutUser(ctx context.Context, upn, displayName, password string, extra []store.Op) (User, bool, error) {
	if err := checkUPN(upn); err != nil {
		return User{}, false, err
	}
	if password != "" && utf8.RuneCountInString(password) < minPasswordLen {
		return User{}, false, badRequest("The password must have at least %d characters.", minPasswordLen)
	}
	displayName = strings.TrimSpace(displayName)
	if displayName == "" {
		displayName = upn
	}
	hash := ""
	if password != "" {
		var err error
		if hash, err = hashSecret(ctx, password); err != nil {
			return User{}, false, fmt.Errorf("identity: put user %q: %w", upn, err)
		}
	}
	key := strings.ToLower(upn)
	for {
		it, err := users.Get(ctx, i.store, key)
		var doc userDoc
		rev := it.Revision
		switch {
		case err == nil:
			doc = it.Value
		case errors.Is(err, store.ErrNotFound):
			if hash == "" {
				return User{}, false, badRequest("A new user needs a password (properties.password).")
			}
			rev = 0
			doc = userDoc{User: User{UPN: upn, ObjectID: uuid.NewString(), Created: i.now().UTC()}}
		default:
			return User{}, false, err
		}
		doc.DisplayName = displayName
		if hash != "" {
			doc.PasswordHash = hash
		}
		_, err = i.store.Txn(ctx, append([]store.Op{users.Update(key, doc, rev)}, extra...)...)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return User{}, false, fmt.Errorf("identity: put user %q: %w", upn, err)
		}
		return doc.User, rev == 0, nil
	}
}

// DeleteUser deletes the user upn; false when there was none.
func (i *Issuer) DeleteUser(ctx context.Context, upn string, extra []store.Op) (bool, error) {
	return i.deleteDoc(ctx, users.Key(strings.ToLower(upn)), extra)
}

// deleteDoc deletes key with extra in one transaction, if it exists.
func (i *Issuer) deleteDoc(ctx context.Context, key string, extra []store.Op) (bool, error) {
	for {
		kv, err := i.store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		_, err = i.store.Txn(ctx, append([]store.Op{store.DeleteAt(key, kv.Revision)}, extra...)...)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err == nil, err
	}
}
