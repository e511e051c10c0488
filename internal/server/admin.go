package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/identity"
)

// Admin is a control plane opened on its data directory without serving
// it, for the first administrative steps (`citadel identity …`) while the
// server is stopped. Its changes go through the resource framework and
// the activity log like any other; the chainer links their records when
// the server starts.
type Admin struct {
	p      *parts
	cancel context.CancelFunc
}

// OpenAdmin opens a bootstrapped data directory. The server must not be
// running on it: the embedded etcd allows one process at a time.
func OpenAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	creds, err := client.LoadCredentials(filepath.Join(dataDir, "bootstrap", "admin.json"))
	if err != nil {
		return nil, fmt.Errorf("%s is not a bootstrapped data directory (start the server once first): %w", dataDir, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	openCtx, done := context.WithTimeout(ctx, 20*time.Second)
	defer done()
	type result struct {
		p   *parts
		err error
	}
	opened := make(chan result, 1)
	go func() {
		p, err := openParts(openCtx, runCtx, cfg, dataDir, creds.ARMEndpoint, log)
		opened <- result{p, err}
	}()
	select {
	case r := <-opened:
		if r.err != nil {
			cancel()
			return nil, r.err
		}
		return &Admin{p: r.p, cancel: cancel}, nil
	case <-openCtx.Done():
		cancel()
		return nil, errors.New("the data directory did not open in 20 s: is the server running on it? Stop it first")
	}
}

// Close releases the data directory.
func (a *Admin) Close() error {
	a.cancel()
	return a.p.store.Close()
}

// CreateServicePrincipal makes a service principal and returns it with
// its first secret, which is shown only now.
func (a *Admin) CreateServicePrincipal(ctx context.Context, name string) (identity.ServicePrincipal, string, error) {
	return a.p.identity.CreateServicePrincipal(ctx, name)
}

// CreateUser makes a local user who signs in with a password.
func (a *Admin) CreateUser(ctx context.Context, upn, displayName, password string) (identity.User, error) {
	return a.p.identity.CreateUser(ctx, upn, displayName, password)
}

// AddSecret adds a client secret to a service principal; a zero expires
// never expires. The secret is returned once.
func (a *Admin) AddSecret(ctx context.Context, appID string, expires time.Time) (id, secret string, err error) {
	return a.p.identity.AddSecret(ctx, appID, expires)
}

// AddCertificate lets a service principal sign in with a client
// assertion signed by the key of the PEM certificate.
func (a *Admin) AddCertificate(ctx context.Context, appID string, certPEM []byte) error {
	return a.p.identity.AddCertificate(ctx, appID, certPEM)
}

// CreateGroup makes an empty group.
func (a *Admin) CreateGroup(ctx context.Context, name string) (identity.Group, error) {
	return a.p.identity.CreateGroup(ctx, name)
}

// AddMember adds a principal or a group to a group.
func (a *Admin) AddMember(ctx context.Context, groupID, memberID string) error {
	return a.p.identity.AddMember(ctx, groupID, memberID)
}

// Assign gives a principal a built-in role, named ("Reader") or by GUID,
// at scope ("/" for the tenant root), and returns the assignment's ID.
func (a *Admin) Assign(ctx context.Context, principalID, principalType, role, scope string) (string, error) {
	guid := ""
	for _, r := range authz.BuiltInRoles() {
		if strings.EqualFold(r.RoleName, role) || strings.EqualFold(r.Name, role) {
			guid = r.Name
		}
	}
	if guid == "" {
		return "", fmt.Errorf("no built-in role %q (custom roles are assigned through the API)", role)
	}
	return assignRole(ctx, a.p.resources, principalID, principalType, guid, scope, "assigned with citadel identity")
}
