package entra

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/socsync/socsync/internal/config"
)

// HTTPClient returns the HTTP client of every request socsync sends to Microsoft (or the
// emulator): TLS 1.2+ trusting the system roots plus cloud.ca_file, bounded connection set-up
// and waits for response headers (a hung remote fails the attempt instead of holding a
// worker), and a connection pool sized for thousands of tenants — which all talk to the same
// few hosts, so the per-host idle pool is what keeps connections reused.
func HTTPClient(c *config.Config) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool() // no system roots (a scratch container): the CA file alone
	}
	if c.Cloud.CAFile != "" {
		file := c.Path(c.Cloud.CAFile)
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("entra: cloud.ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("entra: cloud.ca_file: %s: %w", file, errors.New("no PEM certificate in it"))
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:     true, // Graph and ARM multiplex many tenants' requests on few connections
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
		},
		// A backstop only: callers bound each request with their context's deadline.
		Timeout: 5 * time.Minute,
	}, nil
}
