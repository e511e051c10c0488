package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/store"
)

// deployment is what the first start of the first replica decides once
// and for all: the tenant, the default subscription and the admin
// principal.
type deployment struct {
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	AdminAppID     string `json:"adminAppId"`
	Audience       string `json:"audience"`
	Location       string `json:"location"`
}

var deployments = store.NewCollection[deployment]("bootstrap/")

func (d deployment) tenant() resource.Tenant {
	return resource.Tenant{ID: d.TenantID, DisplayName: "Citadel", DefaultDomain: "citadel.local"}
}

func (d deployment) subscription() resource.Subscription {
	return resource.Subscription{ID: d.SubscriptionID, TenantID: d.TenantID, DisplayName: "Default", State: "Enabled"}
}

// bootstrap reads the deployment record, or makes it on the very first
// start. Several replicas starting together agree through a create-if-absent.
func bootstrap(ctx context.Context, st *store.Store, location string) (deployment, error) {
	it, err := deployments.Get(ctx, st, "deployment")
	if err == nil {
		return it.Value, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return deployment{}, err
	}
	d := deployment{
		TenantID:       uuid.NewString(),
		SubscriptionID: uuid.NewString(),
		Audience:       DefaultAudience,
		Location:       location,
	}
	if _, err := st.Txn(ctx, deployments.Create("deployment", d)); errors.Is(err, store.ErrConflict) {
		it, err := deployments.Get(ctx, st, "deployment")
		return it.Value, err
	} else if err != nil {
		return deployment{}, err
	}
	return d, nil
}

// ensureAdminCredentials makes the admin service principal on the first
// start and writes its credentials file (mode 0600). Later starts reuse
// both; a lost file gets a fresh secret for the same principal.
func ensureAdminCredentials(ctx context.Context, st *store.Store, id *identity.Issuer, d deployment, creds client.Credentials, path string) error {
	if old, err := client.LoadCredentials(path); err == nil && old.ClientID != "" {
		if _, err := id.GetServicePrincipal(ctx, old.ClientID); err == nil {
			if old.ARMEndpoint == creds.ARMEndpoint && old.CACertFile == creds.CACertFile {
				return nil
			}
			// The server moved (another port or name): keep the secret,
			// update where to find it.
			creds.ClientID, creds.ClientSecret = old.ClientID, old.ClientSecret
			return creds.Write(path)
		}
	}
	it, err := deployments.Get(ctx, st, "admin")
	switch {
	case errors.Is(err, store.ErrNotFound):
		sp, secret, err := id.CreateServicePrincipal(ctx, "citadel-admin")
		if err != nil {
			return err
		}
		d.AdminAppID = sp.AppID
		if _, err := st.Txn(ctx, deployments.Create("admin", d)); err != nil {
			return fmt.Errorf("record admin principal: %w", err)
		}
		creds.ClientID, creds.ClientSecret = sp.AppID, secret
	case err != nil:
		return err
	default:
		_, secret, err := id.AddSecret(ctx, it.Value.AdminAppID, time.Time{})
		if err != nil {
			return err
		}
		creds.ClientID, creds.ClientSecret = it.Value.AdminAppID, secret
	}
	return creds.Write(path)
}

func etcdTLS(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.EtcdCA != "" {
		pem, err := os.ReadFile(cfg.EtcdCA)
		if err != nil {
			return nil, fmt.Errorf("--etcd-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-ca: no certificate in %s", cfg.EtcdCA)
		}
	}
	if cfg.EtcdCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.EtcdCert, cfg.EtcdKey)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ensureAdminIsOwner gives the admin principal the Owner role at the tenant
// root, once; the assignment's name is derived from the principal so that
// every start and every replica writes the same one.
func ensureAdminIsOwner(ctx context.Context, id *identity.Issuer, svc *resource.Service, credentialsFile string) error {
	creds, err := client.LoadCredentials(credentialsFile)
	if err != nil {
		return err
	}
	sp, err := id.GetServicePrincipal(ctx, creds.ClientID)
	if err != nil {
		return fmt.Errorf("admin principal: %w", err)
	}
	_, err = assignRole(ctx, svc, sp.ObjectID, "ServicePrincipal", authz.OwnerRole, "/",
		"bootstrap: the first administrator becomes Owner")
	return err
}

// assignRole gives principalID the role (a built-in role's GUID) at
// scope, as the control plane itself, with its activity-log record. The
// assignment's name is derived from principal, role and scope, so that
// assigning again changes nothing.
func assignRole(ctx context.Context, svc *resource.Service, principalID, principalType, roleGUID, scope, why string) (string, error) {
	name := uuid.NewSHA1(uuid.NameSpaceURL, []byte("citadel:assignment:"+principalID+":"+roleGUID+":"+strings.ToLower(scope))).String()
	prefix := scope
	if scope == "/" {
		prefix = ""
	}
	rid, err := arm.ParseID(prefix + "/providers/Microsoft.Authorization/roleAssignments/" + name)
	if err != nil {
		return "", err
	}
	get := &resource.Request{ID: rid, APIVersion: "2022-04-01", Header: http.Header{}, Caller: resource.SystemCaller}
	if _, err := svc.Get(ctx, get); err == nil {
		return rid.String(), nil
	}
	body, _ := json.Marshal(map[string]any{"properties": map[string]any{
		"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/" + roleGUID,
		"principalId":      principalID,
		"principalType":    principalType,
		"description":      why,
	}})
	put := *get
	put.Body = body
	put.Audit = &audit.EventInfo{
		CorrelationID: uuid.NewString(), Caller: resource.SystemCaller.Name, Method: http.MethodPut,
		OperationName: "Microsoft.Authorization/roleAssignments/write", Scope: scope, Description: why,
	}
	if _, err := svc.Put(ctx, &put); err != nil {
		return "", fmt.Errorf("assign role %s to %s at %s: %w", roleGUID, principalID, scope, err)
	}
	return rid.String(), nil
}

// sharedKeyFiles are the data directory's files every replica must hold
// alike: the HTTPS CA that clients trust, and the key that signs the
// activity log's checkpoints (slash-separated, under the data directory).
var sharedKeyFiles = []string{"pki/ca.crt", "pki/ca.key", "audit/" + audit.KeyFile, "audit/" + audit.PublicKeyFile}

// replicaKeys are sharedKeyFiles' contents, as the first replica made them.
type replicaKeys struct {
	Files map[string]string `json:"files"`
}

var keyRecords = store.NewCollection[replicaKeys]("bootstrap/keys/")

// shareKeys gives this replica the keys every replica shares: the store's,
// written into dataDir, or, on the very first start of the first replica,
// its own, put in the store. Replicas starting together agree through a
// create-if-absent.
func shareKeys(ctx context.Context, st *store.Store, dataDir string) error {
	for {
		it, err := keyRecords.Get(ctx, st, "replica")
		if err == nil {
			return writeKeyFiles(dataDir, it.Value)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// The first replica: its keys (made now if it has none) become
		// everyone's.
		if _, err := identity.LoadOrCreateCA(filepath.Join(dataDir, "pki")); err != nil {
			return err
		}
		if _, err := audit.LoadOrCreateKey(filepath.Join(dataDir, "audit")); err != nil {
			return err
		}
		keys := replicaKeys{Files: map[string]string{}}
		for _, f := range sharedKeyFiles {
			b, err := os.ReadFile(filepath.Join(dataDir, filepath.FromSlash(f)))
			if err != nil {
				return fmt.Errorf("shared keys: %w", err)
			}
			keys.Files[f] = string(b)
		}
		if _, err := st.Txn(ctx, keyRecords.Create("replica", keys)); !errors.Is(err, store.ErrConflict) {
			return err // nil: ours are everyone's; a conflict: another replica was first, read again
		}
	}
}

// writeKeyFiles makes dataDir's shared key files the store's; a file that
// differs is replaced (the replica ran alone before joining).
func writeKeyFiles(dataDir string, keys replicaKeys) error {
	for _, f := range sharedKeyFiles {
		content, ok := keys.Files[f]
		if !ok {
			return fmt.Errorf("shared keys: the store has no %s", f)
		}
		path := filepath.Join(dataDir, filepath.FromSlash(f))
		if b, err := os.ReadFile(path); err == nil && string(b) == content {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("shared keys: %w", err)
		}
		mode := os.FileMode(0o600) // keys
		if strings.HasSuffix(f, ".crt") || strings.HasSuffix(f, ".pub") {
			mode = 0o644
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
			return fmt.Errorf("shared keys: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("shared keys: %w", err)
		}
	}
	return nil
}
