package emulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Info is the --info file (DESIGN.md §4.3, stable): everything a client needs to talk to the
// emulator. Keys beyond the documented ones are additions.
type Info struct {
	BaseURL       string        `json:"base_url"`
	CAFile        string        `json:"ca_file"`
	Tenants       []TenantInfo  `json:"tenants"`
	LogsIngestion IngestionInfo `json:"logs_ingestion"`
	// MultiTenantApp is one app registration consented in every tenant.
	MultiTenantApp AppInfo `json:"multi_tenant_app"`
	// HomeTenantID is the MSSP tenant where the multi-tenant app and the central workspace
	// (the data collection rule) live.
	HomeTenantID string `json:"home_tenant_id"`
}

// TenantInfo describes one sample tenant.
type TenantInfo struct {
	TenantID     string          `json:"tenant_id"`
	Name         string          `json:"name"`
	ClientID     string          `json:"client_id"`
	ClientSecret string          `json:"client_secret"`
	Defender     bool            `json:"defender"`
	Sentinel     []WorkspaceInfo `json:"sentinel"`
	Domain       string          `json:"domain"`
	// CertFile is a PEM file with the app's certificate and private key, when written.
	CertFile string `json:"cert_file,omitempty"`
	// Users is the tenant's directory (UPN ↔ object id, as Sentinel owners use).
	Users []user `json:"users"`
}

// WorkspaceInfo is one Sentinel workspace.
type WorkspaceInfo struct {
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	Workspace      string `json:"workspace"`
	WorkspaceID    string `json:"workspace_id"`
}

// IngestionInfo is the Logs Ingestion stream of the central workspace.
type IngestionInfo struct {
	Endpoint       string   `json:"endpoint"`
	DCRImmutableID string   `json:"dcr_immutable_id"`
	Stream         string   `json:"stream"`
	Streams        []string `json:"streams"`
	// TenantID, ClientID and ClientSecret are credentials that may write to the stream (the
	// multi-tenant app in the home tenant).
	TenantID     string `json:"tenant_id"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// AppInfo is an app registration.
type AppInfo struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	HomeTenantID string `json:"home_tenant_id"`
	CertFile     string `json:"cert_file,omitempty"`
}

// Info describes the emulator for clients that reach it at baseURL and trust caFile.
func (e *Emulator) Info(baseURL, caFile string) Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	info := Info{
		BaseURL: baseURL,
		CAFile:  caFile,
		Tenants: make([]TenantInfo, 0, len(e.tenants)),
		LogsIngestion: IngestionInfo{
			Endpoint: baseURL, DCRImmutableID: e.dcr.ImmutableID, Stream: e.dcr.Streams[0],
			Streams: append([]string{}, e.dcr.Streams...), TenantID: e.home.ID,
			ClientID: e.multi.ClientID, ClientSecret: e.multi.Secret,
		},
		MultiTenantApp: AppInfo{ClientID: e.multi.ClientID, ClientSecret: e.multi.Secret,
			HomeTenantID: e.home.ID, CertFile: e.certPaths[e.multi.ClientID]},
		HomeTenantID: e.home.ID,
	}
	for _, t := range e.tenants {
		ti := TenantInfo{TenantID: t.ID, Name: t.Name, ClientID: t.App.ClientID, ClientSecret: t.App.Secret,
			Defender: t.Defender, Sentinel: []WorkspaceInfo{}, Domain: t.Domain, CertFile: e.certPaths[t.App.ClientID]}
		for _, w := range t.Workspaces {
			ti.Sentinel = append(ti.Sentinel, WorkspaceInfo{SubscriptionID: w.Sub, ResourceGroup: w.RG, Workspace: w.Name, WorkspaceID: w.CustomerID})
		}
		for _, u := range t.Users {
			ti.Users = append(ti.Users, *u)
		}
		info.Tenants = append(info.Tenants, ti)
	}
	return info
}

// WriteCredentials writes the certificate credentials (certificate and private key in one
// PEM file, mode 0600) of the multi-tenant app and of the first Options.CertTenants tenants'
// apps into dir/certs, generating them if needed; Info then lists their paths.
func (e *Emulator) WriteCredentials(dir string) error {
	e.mu.Lock()
	apps := []*app{e.multi}
	for _, t := range e.tenants {
		if t.App.certWanted {
			apps = append(apps, t.App)
		}
	}
	e.mu.Unlock()
	if err := e.ensureCertificates(apps); err != nil {
		return fmt.Errorf("emulator: generating certificates: %w", err)
	}
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	for _, a := range apps {
		e.mu.Lock()
		data := a.certPEM
		e.mu.Unlock()
		p := filepath.Join(certDir, a.ClientID+".pem")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
		e.mu.Lock()
		e.certPaths[a.ClientID] = p
		e.mu.Unlock()
	}
	return nil
}

// Server is a running HTTPS emulator.
type Server struct {
	URL    string // e.g. https://127.0.0.1:41234
	CAFile string // PEM of the CA that signed the server certificate
	Dir    string

	srv     *http.Server
	pool    *x509.CertPool
	closeMu sync.Once
	stopped chan struct{}
}

// Start serves e over HTTPS on addr (":0" and "127.0.0.1:0" pick a free port) with a fresh
// self-signed CA (valid for 127.0.0.1, ::1 and localhost, plus addr's host) written as PEM to
// dir/ca.pem, and the app certificate credentials written to dir/certs. The server stops when
// ctx is done or Close/Shutdown is called.
func Start(ctx context.Context, e *Emulator, addr, dir string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen address %q: %w", addr, err)
	}
	caPEM, leaf, pool, err := newServerTLS(host)
	if err != nil {
		return nil, fmt.Errorf("emulator: TLS certificates: %w", err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if err := e.WriteCredentials(dir); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	urlHost := host
	switch host {
	case "", "0.0.0.0", "::":
		urlHost = "127.0.0.1"
	}
	s := &Server{
		URL:    "https://" + net.JoinHostPort(urlHost, fmt.Sprint(port)),
		CAFile: caFile,
		Dir:    dir,
		pool:   pool,
		srv: &http.Server{
			Handler:           e.Handler(),
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0),
		},
		stopped: make(chan struct{}),
	}
	e.setServer(s.URL, caFile)
	go func() {
		defer close(s.stopped)
		if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("emulator: %v", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.stopped:
		}
	}()
	return s, nil
}

// Close stops the server at once (requests in flight, including hung ones, are cut off).
func (s *Server) Close() error {
	var err error
	s.closeMu.Do(func() { err = s.srv.Close() })
	<-s.stopped
	return err
}

// Shutdown stops the server gracefully, waiting for requests in flight until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.Close()
	}
	<-s.stopped
	return err
}

// CertPool returns a pool holding the emulator's CA.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Client returns an HTTP client that trusts the emulator's CA.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
}

// newServerTLS makes a CA and a server certificate signed by it.
func newServerTLS(host string) (caPEM []byte, leaf tls.Certificate, pool *x509.CertPool, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, leaf, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "socsync emulator CA", Organization: []string{"socsync"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, leaf, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, leaf, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, leaf, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host != "" && host != "localhost" {
		if ip := net.ParseIP(host); ip != nil {
			if !ip.IsUnspecified() && !ip.IsLoopback() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, leaf, nil, err
	}
	leaf = tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), leaf, pool, nil
}

// setServer records where Start serves e, for GET /_emulator/info.
func (e *Emulator) setServer(url, caFile string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.srvURL, e.srvCA = url, caFile
}

func (e *Emulator) serverURL(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

func (e *Emulator) caFile() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srvCA
}
