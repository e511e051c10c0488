package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"sync/atomic"

	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// servedCertificate is the HTTPS certificate both listeners serve. It is
// replaced while the server runs, without dropping a connection: one the
// server generates is renewed when a third of its validity is left, and an
// operator's (--tls-cert) is read again when its files change. Each new
// TLS handshake gets the current one.
type servedCertificate struct {
	current atomic.Pointer[tls.Certificate]
	// load issues the certificate again if it is due, or reads the
	// operator's files, and returns what is to be served.
	load func() (*tls.Certificate, error)
}

func newServedCertificate(load func() (*tls.Certificate, error)) (*servedCertificate, error) {
	c := &servedCertificate{load: load}
	if _, err := c.refresh(); err != nil {
		return nil, err
	}
	return c, nil
}

// get is tls.Config.GetCertificate.
func (c *servedCertificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// leaf is the certificate being served.
func (c *servedCertificate) leaf() *x509.Certificate { return c.current.Load().Leaf }

// refresh loads the certificate and serves it if it is another one.
func (c *servedCertificate) refresh() (changed bool, err error) {
	cert, err := c.load()
	if err != nil {
		return false, fmt.Errorf("server certificate: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return false, fmt.Errorf("server certificate: %w", err)
		}
	}
	if old := c.current.Load(); old != nil && old.Leaf.Equal(cert.Leaf) {
		return false, nil
	}
	c.current.Store(cert)
	return true, nil
}

// generatedCertificate issues the server's certificate from the CA, valid
// for validity, for hosts; it is issued again when a third is left.
func generatedCertificate(ca *identity.CA, dir string, hosts []string, validity time.Duration) func() (*tls.Certificate, error) {
	return func() (*tls.Certificate, error) {
		certFile, keyFile, err := ca.ServerCertificate(dir, hosts, validity)
		if err != nil {
			return nil, err
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &cert, err
	}
}

// operatorCertificate reads the operator's certificate and key files.
func operatorCertificate(certFile, keyFile string) func() (*tls.Certificate, error) {
	return func() (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &cert, err
	}
}

// expiring is a certificate the server depends on, watched for its expiry.
type expiring struct {
	name string
	cert func() *x509.Certificate
}

// watchCertificates keeps the served certificate current, checking every
// period; replaces the node CA when a third of its validity is left (an
// Informational record in the activity log); and records an activity-log
// Warning, once a day for each, for every certificate with less than a
// sixth of its lifetime left: the served one (an operator's that was not
// replaced in time, or a generated one whose renewal keeps failing), the
// HTTPS CA and the node CA. Each replica watches its own.
func (s *Server) watchCertificates(ctx context.Context, served *servedCertificate, nodeCA *agentauth.Authority, watched []expiring, period time.Duration, log *slog.Logger) {
	warned := map[string]time.Time{}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		if changed, err := served.refresh(); err != nil {
			log.ErrorContext(ctx, "server certificate not renewed", "err", err)
		} else if changed {
			log.InfoContext(ctx, "server certificate replaced", "serial", served.leaf().SerialNumber.String(),
				"not_after", served.leaf().NotAfter)
		}
		if rotated, err := nodeCA.RotateIfDue(ctx); err != nil {
			log.ErrorContext(ctx, "node CA not rotated", "err", err)
		} else if rotated {
			log.InfoContext(ctx, "node CA rotated")
			s.recordPlatformEvent(ctx, "Citadel.Platform/nodeCA/rotate", "Informational",
				"The node CA was replaced: agents move to the new one at their next renewal; the old one is trusted until their certificates expire.", nil, log)
		}
		for _, w := range watched {
			c := w.cert()
			if c == nil {
				continue
			}
			left, lifetime := time.Until(c.NotAfter), c.NotAfter.Sub(c.NotBefore)
			if left > lifetime/6 || time.Since(warned[w.name]) < 24*time.Hour {
				continue
			}
			warned[w.name] = time.Now()
			s.recordExpiry(ctx, w.name, c, log)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// recordExpiry writes the Warning that cert expires soon.
func (s *Server) recordExpiry(ctx context.Context, name string, cert *x509.Certificate, log *slog.Logger) {
	msg := fmt.Sprintf("The %s (%s, serial %s) expires at %s, in %s: replace it before then (docs/operations.md).",
		name, cert.Subject.CommonName, cert.SerialNumber, cert.NotAfter.UTC().Format(time.RFC3339), time.Until(cert.NotAfter).Round(time.Second))
	s.recordPlatformEvent(ctx, "Citadel.Platform/certificates/expiring", "Warning", msg,
		map[string]string{"certificate": name, "notAfter": cert.NotAfter.UTC().Format(time.RFC3339)}, log)
	log.WarnContext(ctx, "certificate expires soon", "certificate", name, "not_after", cert.NotAfter)
}

// recordPlatformEvent writes an activity-log record of the control plane
// itself at every subscription, where operators look.
func (s *Server) recordPlatformEvent(ctx context.Context, operation, level, msg string, props map[string]string, log *slog.Logger) {
	subs, err := s.Resources.Subscriptions(ctx)
	if err != nil {
		log.ErrorContext(ctx, "platform event not recorded", "operation", operation, "err", err)
		return
	}
	for _, sub := range subs {
		e := audit.NewEvent(audit.EventInfo{Time: time.Now(), OperationName: operation, Caller: resource.SystemCaller.Name,
			ResourceID: "/subscriptions/" + sub.ID, Status: "Succeeded", Level: level, Description: msg, TenantID: sub.TenantID, Properties: props})
		if err := s.Audit.Record(ctx, e); err != nil {
			log.ErrorContext(ctx, "platform event not recorded", "operation", operation, "err", err)
		}
	}
}
