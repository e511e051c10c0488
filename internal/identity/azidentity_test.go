package identity

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// TestAzidentity gets tokens with the Azure SDK for Go, unmodified: a
// client secret and a certificate, with the AD FS tenant and with the GUID
// tenant (Entra-style discovery, instance discovery off).
func TestAzidentity(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	sp, secret, err := f.iss.CreateServicePrincipal(ctx, "sdk")
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, certPEM := testCert(t, key, time.Now().Add(24*time.Hour))
	if err := f.iss.AddCertificate(ctx, sp.AppID, certPEM); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certs, pk, err := azidentity.ParseCertificates(append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), nil)
	if err != nil {
		t.Fatal(err)
	}

	clientOpts := azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: f.srv.URL + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Audience: testAudience, Endpoint: f.srv.URL},
			},
		},
		Transport: f.srv.Client(),
	}
	tests := []struct {
		name string
		cred func() (azcore.TokenCredential, error)
	}{
		{"secret adfs", func() (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential("adfs", sp.AppID, secret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOpts})
		}},
		{"secret tenant", func() (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential(testTenant, sp.AppID, secret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOpts, DisableInstanceDiscovery: true})
		}},
		{"certificate adfs", func() (azcore.TokenCredential, error) {
			return azidentity.NewClientCertificateCredential("adfs", sp.AppID, certs, pk,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOpts})
		}},
		{"certificate tenant", func() (azcore.TokenCredential, error) {
			return azidentity.NewClientCertificateCredential(testTenant, sp.AppID, certs, pk,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOpts, DisableInstanceDiscovery: true, SendCertificateChain: true})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := tt.cred()
			if err != nil {
				t.Fatalf("new credential: %v", err)
			}
			// ARM clients ask for Audience + "/.default" (azcore arm/runtime).
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{testAudience + "/.default"}})
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			p, err := f.iss.Validate(ctx, tok.Token)
			if err != nil {
				t.Fatalf("Validate(SDK token) = %v", err)
			}
			if p.AppID != sp.AppID || p.ObjectID != sp.ObjectID || p.Type != TypeServicePrincipal {
				t.Errorf("Validate(SDK token) = %+v", p)
			}
			if d := time.Until(tok.ExpiresOn); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("token expires in %v, want 1h", d)
			}
		})
	}
}
