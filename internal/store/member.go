package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is the embedded etcd member of this replica. The zero value is a
// single member on free loopback ports, which other replicas can join.
type Member struct {
	// Name is the member's name in the cluster; empty: the one it has, or
	// a new unique one.
	Name string
	// PeerListen and ClientListen are host:port to listen on for other
	// members and for clients; empty: loopback, a port chosen on the first
	// start (and kept, for the peer address, since the cluster knows it).
	PeerListen, ClientListen string
	// AdvertisePeer and AdvertiseClient are the https URLs others reach
	// this member at; empty: the listen addresses.
	AdvertisePeer, AdvertiseClient string
	// Join is a replica's grant for a member that starts for the first
	// time in an existing cluster; ignored once the member has data.
	Join *Grant
}

// Grant is what a member joining the cluster needs, made by AddMember: the
// cluster's etcd CA (with its key, so that any member can admit others),
// the member's certificate and key, and the initial cluster. All PEM.
type Grant struct {
	Name           string `json:"name"`
	CACert         []byte `json:"caCert"`
	CAKey          []byte `json:"caKey"`
	Cert           []byte `json:"cert"`
	Key            []byte `json:"key"`
	InitialCluster string `json:"initialCluster"`
}

// MemberStatus is one member of the embedded cluster.
type MemberStatus struct {
	Name       string
	ID         uint64
	PeerURLs   []string
	ClientURLs []string
}

// memberFile is what the data dir remembers of its member, so that a
// restart is the same member at the same peer address; ClientURL is where
// it served last, for `citadel store member` on the same machine.
type memberFile struct {
	Name      string `json:"name"`
	PeerURL   string `json:"peerURL"`
	ClientURL string `json:"clientURL"`
}

const (
	tlsDir         = "tls"
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	memberCertFile = "member.crt"
	memberKeyFile  = "member.key"
	memberJSON     = "member.json"
)

// memberConfig settles the member's name, URLs and certificates in dir
// before etcd starts, and says whether it joins an existing cluster.
func memberConfig(dir string, m Member) (mf memberFile, peerListen, clientListen url.URL, existing bool, err error) {
	hasData := fileExists(filepath.Join(dir, "member-data"))
	prev, err := readMemberFile(dir)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist) && hasData:
		prev = memberFile{Name: memberName} // a data dir from before members had TLS
	case errors.Is(err, os.ErrNotExist):
	default:
		return mf, peerListen, clientListen, false, err
	}
	mf.Name = firstNonEmpty(m.Name, prev.Name)
	if m.Join != nil && !hasData {
		mf.Name = m.Join.Name
	}
	if mf.Name == "" {
		mf.Name = "citadel-" + randomHex(4)
	}
	prevPeer := ""
	if u, err := url.Parse(prev.PeerURL); err == nil && u.Scheme == "https" {
		prevPeer = u.Host
	}
	peerHost, err := listenAddr(firstNonEmpty(m.PeerListen, prevPeer))
	if err != nil {
		return mf, peerListen, clientListen, false, fmt.Errorf("store: etcd peer listen: %w", err)
	}
	clientHost, err := listenAddr(m.ClientListen)
	if err != nil {
		return mf, peerListen, clientListen, false, fmt.Errorf("store: etcd client listen: %w", err)
	}
	peerListen = url.URL{Scheme: "https", Host: peerHost}
	clientListen = url.URL{Scheme: "https", Host: clientHost}
	mf.PeerURL = firstNonEmpty(m.AdvertisePeer, advertised(peerHost))
	mf.ClientURL = firstNonEmpty(m.AdvertiseClient, advertised(clientHost))
	for _, u := range []string{mf.PeerURL, mf.ClientURL} {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" {
			return mf, peerListen, clientListen, false, fmt.Errorf("store: advertised etcd URL %q must be https://host:port", u)
		}
	}
	tdir := filepath.Join(dir, tlsDir)
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return mf, peerListen, clientListen, false, fmt.Errorf("store: %w", err)
	}
	existing = m.Join != nil && !hasData
	if existing {
		for name, b := range map[string][]byte{caCertFile: m.Join.CACert, caKeyFile: m.Join.CAKey, memberCertFile: m.Join.Cert, memberKeyFile: m.Join.Key} {
			if err := os.WriteFile(filepath.Join(tdir, name), b, 0o600); err != nil {
				return mf, peerListen, clientListen, false, fmt.Errorf("store: %w", err)
			}
		}
	} else {
		ca, err := loadOrCreateCA(tdir)
		if err != nil {
			return mf, peerListen, clientListen, false, err
		}
		// The member's certificate is made again on every start, for
		// the addresses it has now.
		certPEM, keyPEM, err := ca.issue(mf.Name, hostsOf(mf.PeerURL, mf.ClientURL))
		if err != nil {
			return mf, peerListen, clientListen, false, err
		}
		if err := os.WriteFile(filepath.Join(tdir, memberCertFile), certPEM, 0o600); err != nil {
			return mf, peerListen, clientListen, false, fmt.Errorf("store: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tdir, memberKeyFile), keyPEM, 0o600); err != nil {
			return mf, peerListen, clientListen, false, fmt.Errorf("store: %w", err)
		}
	}
	return mf, peerListen, clientListen, existing, nil
}

// listenAddr is addr, or a free loopback port when it is empty.
func listenAddr(addr string) (string, error) {
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", err
		}
		return addr, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// advertised is the URL of a listen address; a wildcard host becomes
// loopback (set the advertised URL to be reachable from elsewhere).
func advertised(hostport string) string {
	host, port, _ := net.SplitHostPort(hostport)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, port)
}

func hostsOf(urls ...string) []string {
	hosts := []string{"127.0.0.1", "localhost"}
	for _, u := range urls {
		if p, err := url.Parse(u); err == nil && !slices.Contains(hosts, p.Hostname()) {
			hosts = append(hosts, p.Hostname())
		}
	}
	return hosts
}

func readMemberFile(dir string) (memberFile, error) {
	var mf memberFile
	b, err := os.ReadFile(filepath.Join(dir, memberJSON))
	if err != nil {
		return mf, err
	}
	if err := json.Unmarshal(b, &mf); err != nil {
		return mf, fmt.Errorf("store: %s: %w", memberJSON, err)
	}
	return mf, nil
}

func writeMemberFile(dir string, mf memberFile) error {
	b, err := json.MarshalIndent(mf, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, memberJSON+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, memberJSON))
}

// memberTLS is the TLS of etcd's listeners: the member's certificate,
// and client certificates from the cluster's CA required of everyone.
func memberTLS(dir string) transport.TLSInfo {
	tdir := filepath.Join(dir, tlsDir)
	return transport.TLSInfo{
		CertFile:       filepath.Join(tdir, memberCertFile),
		KeyFile:        filepath.Join(tdir, memberKeyFile),
		TrustedCAFile:  filepath.Join(tdir, caCertFile),
		ClientCertAuth: true,
	}
}

// MemberClient is the endpoint and TLS with which a tool on a replica's
// machine reaches its embedded etcd as a client: dir is the store's
// directory (the replica's <data-dir>/etcd). Use it with Open's Endpoints.
func MemberClient(dir string) ([]string, *tls.Config, error) {
	mf, err := readMemberFile(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %s has no embedded etcd member: %w", dir, err)
	}
	cfg, err := memberTLS(dir).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("store: client TLS: %w", err)
	}
	return []string{mf.ClientURL}, cfg, nil
}

// ClientTLS is the TLS configuration to reach ClientURL with; nil for an
// external cluster.
func (s *Store) ClientTLS() *tls.Config {
	if s.etcd == nil {
		return nil
	}
	cfg, err := memberTLS(s.dir).ClientConfig()
	if err != nil {
		return nil
	}
	return cfg
}

// AddMember admits a new member of the embedded cluster at peerURL: it
// adds it to etcd's membership and returns what the member needs to start
// (its certificate for hosts, from the cluster's CA). The new member must
// start before the next one is added, or quorum may be lost.
func (s *Store) AddMember(ctx context.Context, name, peerURL string, hosts []string) (Grant, error) {
	if s.etcd == nil {
		return Grant{}, errors.New("store: members can join an embedded etcd only")
	}
	if p, err := url.Parse(peerURL); err != nil || p.Scheme != "https" || p.Host == "" {
		return Grant{}, fmt.Errorf("store: peer URL %q must be https://host:port", peerURL)
	}
	if name == "" || strings.ContainsAny(name, "=,") {
		return Grant{}, fmt.Errorf("store: member name %q must be non-empty, without '=' or ','", name)
	}
	members, err := s.Members(ctx)
	if err != nil {
		return Grant{}, err
	}
	for _, m := range members {
		if m.Name == name || slices.Contains(m.PeerURLs, peerURL) {
			return Grant{}, fmt.Errorf("store: member %q or peer URL %s is already in the cluster", name, peerURL)
		}
	}
	tdir := filepath.Join(s.dir, tlsDir)
	ca, err := loadOrCreateCA(tdir)
	if err != nil {
		return Grant{}, err
	}
	certPEM, keyPEM, err := ca.issue(name, hostsOf(append([]string{peerURL}, prefixed(hosts)...)...))
	if err != nil {
		return Grant{}, err
	}
	var resp *clientv3.MemberAddResponse
	err = whenHealthy(ctx, func() (err error) {
		resp, err = s.client.MemberAdd(ctx, []string{peerURL})
		return err
	})
	if err != nil {
		return Grant{}, fmt.Errorf("store: add member %q at %s: %w", name, peerURL, err)
	}
	var cluster []string
	for _, m := range resp.Members {
		n := m.Name
		if m.ID == resp.Member.ID {
			n = name
		}
		if n == "" {
			n = fmt.Sprintf("pending-%x", m.ID) // added, not started yet; etcd matches members by peer URL
		}
		for _, u := range m.PeerURLs {
			cluster = append(cluster, n+"="+u)
		}
	}
	caPEM, _ := os.ReadFile(filepath.Join(tdir, caCertFile))
	caKeyPEM, _ := os.ReadFile(filepath.Join(tdir, caKeyFile))
	s.log.InfoContext(ctx, "etcd member added", "member", name, "peer_url", peerURL)
	return Grant{Name: name, CACert: caPEM, CAKey: caKeyPEM, Cert: certPEM, Key: keyPEM, InitialCluster: strings.Join(cluster, ",")}, nil
}

// prefixed makes bare hosts into URLs for hostsOf.
func prefixed(hosts []string) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = "https://" + h
	}
	return out
}

// Members lists the etcd cluster's members.
func (s *Store) Members(ctx context.Context) ([]MemberStatus, error) {
	resp, err := s.client.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list members: %w", err)
	}
	out := make([]MemberStatus, len(resp.Members))
	for i, m := range resp.Members {
		out[i] = MemberStatus{Name: m.Name, ID: m.ID, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs}
	}
	return out, nil
}

// RemoveMember takes the member called name (or with that hexadecimal
// ID) out of the cluster, for a replica gone for good. A replica that
// stops does not remove itself: it comes back as the same member.
func (s *Store) RemoveMember(ctx context.Context, name string) error {
	members, err := s.Members(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.Name == name || fmt.Sprintf("%x", m.ID) == name {
			if err := whenHealthy(ctx, func() error {
				_, err := s.client.MemberRemove(ctx, m.ID)
				return err
			}); err != nil {
				return fmt.Errorf("store: remove member %q: %w", name, err)
			}
			s.log.InfoContext(ctx, "etcd member removed", "member", name)
			return nil
		}
	}
	return fmt.Errorf("store: no member %q: %w", name, ErrNotFound)
}

// CAHash is the SHA-256 of a PEM certificate's DER, hex: how a joining
// replica pins the cluster it joins.
func CAHash(certPEM []byte) (string, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return "", errors.New("store: not a PEM certificate")
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

// etcdCA is the cluster's CA for members and their clients.
type etcdCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func loadOrCreateCA(dir string) (*etcdCA, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return createCA(certPath, keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("store: etcd CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("store: etcd CA: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("store: etcd CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("store: etcd CA: not an ECDSA key")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("store: etcd CA: %w", err)
	}
	return &etcdCA{cert: cert, key: key}, nil
}

func createCA(certPath, keyPath string) (*etcdCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "Citadel etcd CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(20, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("store: etcd CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("store: etcd CA: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("store: etcd CA: %w", err)
	}
	return &etcdCA{cert: cert, key: key}, nil
}

// issue makes a member's certificate, good both to serve (peers and
// clients) and as a client of other members.
func (ca *etcdCA) issue(name string, hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("store: member certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("store: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// advertisePeer makes the cluster's record of this member's peer URL the
// one it advertises now (a data dir from before TLS, or a new address).
func (s *Store) advertisePeer(ctx context.Context) error {
	self := s.etcd.Server.MemberID()
	want := s.etcd.Config().AdvertisePeerUrls[0].String()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	members, err := s.Members(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.ID == uint64(self) && !slices.Equal(m.PeerURLs, []string{want}) {
			if _, err := s.client.MemberUpdate(ctx, m.ID, []string{want}); err != nil {
				return fmt.Errorf("store: advertise peer URL %s: %w", want, err)
			}
		}
	}
	return nil
}

// whenHealthy calls change until etcd accepts it: etcd refuses a change
// of membership until the members that stay have been connected for a
// while (the last one may have just started), answering ErrUnhealthy.
func whenHealthy(ctx context.Context, change func() error) error {
	for {
		err := change()
		if !errors.Is(err, rpctypes.ErrUnhealthy) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}
