// Package entra builds the Entra ID credentials socsync signs in with: one per configured
// customer tenant and one for the central workspace it forwards to, from client secrets,
// certificates or a shared multi-tenant app. Secrets are resolved from their references when
// the credentials are built and never appear in errors or logs; Classify turns a failed token
// request into the tenant health state it implies.
package entra

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/throttle"
)

// Token scopes of the APIs socsync calls (client credentials: the resource's /.default).
const (
	ScopeGraph     = "https://graph.microsoft.com/.default"
	ScopeARM       = "https://management.azure.com/.default"
	ScopeIngestion = "https://monitor.azure.com/.default"
)

// publicAuthority is the one authority host MSAL's instance discovery knows to ask about.
const publicAuthority = "login.microsoftonline.com"

// ErrNotConfigured is returned by For and Forward for a tenant (or forward stream) the
// configuration does not name.
var ErrNotConfigured = errors.New("not configured")

// ErrOtherTenant is returned by a tenant's credential asked for a token of another tenant.
var ErrOtherTenant = errors.New("token requested for another tenant")

// ConfigError is a credential that could not be built from the configuration: a secret
// reference that does not resolve, an unreadable certificate, an unknown app. Its message
// names the configuration key and the reference, never the secret.
type ConfigError struct {
	Tenant string // the tenant id (the forward tenant for the forward credential)
	Path   string // the credential's configuration key, e.g. tenants[3].credential or apps[0].credential
	Err    error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("entra: credential of tenant %s: %s: %v", e.Tenant, e.Path, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Credentials holds the token credential of every configured tenant. It is immutable after
// New and safe for concurrent use.
type Credentials struct {
	tenants  map[string]entry // by lower-case tenant id
	forward  *entry           // nil when forwarding is off
	problems []error
}

type entry struct {
	cred azcore.TokenCredential
	err  error
}

// New builds a credential for every configured tenant and for the forward stream. Every
// credential sends its token requests through transport — socsync passes its
// throttle.Transport around HTTPClient(c), so that token requests count against the token
// endpoint's budget and trust cloud.ca_file; nil means exactly that with default options.
//
// A tenant whose credential cannot be built (a secret reference that does not resolve, say)
// does not stop the others: For returns its *ConfigError and Problems lists them all. New
// itself fails only when nothing can be built at all.
func New(c *config.Config, getenv func(string) string, transport policy.Transporter) (*Credentials, error) {
	if c == nil {
		return nil, errors.New("entra: no configuration")
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if transport == nil {
		hc, err := HTTPClient(c)
		if err != nil {
			return nil, err
		}
		transport = throttle.New(hc, throttle.Options{})
	}
	host, err := authorityHost(c.Cloud.Authority)
	if err != nil {
		return nil, fmt.Errorf("entra: cloud.authority: %w", err)
	}
	b := &builder{
		c:      c,
		getenv: getenv,
		opts: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: host},
			Transport: transport,
			// The transport retries within the budgets; azcore's retry policy beneath it
			// would retry past a Retry-After the transport has just been told about.
			Retry: policy.RetryOptions{MaxRetries: -1},
		},
		disableDiscovery: disableInstanceDiscovery(host),
		materials:        map[string]*material{},
	}
	if bl, ok := transport.(blocker); ok {
		b.blocked = bl.Blocked
	}

	cs := &Credentials{tenants: make(map[string]entry, len(c.Tenants))}
	add := func(tenantID, path string, cr config.Credential) entry {
		cred, err := b.credential(tenantID, path, cr)
		if err != nil {
			cs.problems = append(cs.problems, err)
			return entry{err: err}
		}
		return entry{cred: cred}
	}
	for i, t := range c.Tenants {
		cs.tenants[strings.ToLower(t.ID)] = add(t.ID, fmt.Sprintf("tenants[%d].credential", i), t.Credential)
	}
	if c.Forward.Enabled() {
		e := add(c.Forward.TenantID, "forward.credential", c.Forward.Credential)
		cs.forward = &e
	}
	return cs, nil
}

// For returns the credential of a configured tenant. Its tokens are always of that tenant: a
// token request naming another tenant fails.
func (cs *Credentials) For(tenantID string) (azcore.TokenCredential, error) {
	e, ok := cs.tenants[strings.ToLower(tenantID)]
	if !ok {
		return nil, fmt.Errorf("entra: tenant %s: %w", tenantID, ErrNotConfigured)
	}
	return e.cred, e.err
}

// Forward returns the credential of the central workspace's tenant (forward.tenant_id).
func (cs *Credentials) Forward() (azcore.TokenCredential, error) {
	if cs.forward == nil {
		return nil, fmt.Errorf("entra: forward stream: %w", ErrNotConfigured)
	}
	return cs.forward.cred, cs.forward.err
}

// Problems returns the credentials that could not be built (each a *ConfigError), joined, or
// nil.
func (cs *Credentials) Problems() error { return errors.Join(cs.problems...) }

// blocker is what New uses of a throttle.Transport: whether the token endpoint of a tenant is
// held back, to tell a throttled token request from a failed one (azidentity flattens the
// transport's *throttle.Throttled into a message).
type blocker interface {
	Blocked(throttle.Key) *throttle.Throttled
}

type builder struct {
	c                *config.Config
	getenv           func(string) string
	opts             azcore.ClientOptions
	disableDiscovery bool
	blocked          func(throttle.Key) *throttle.Throttled
	materials        map[string]*material // by app name: a shared app is resolved once
}

// material is what proves an app's identity: a client secret or a certificate with its key.
type material struct {
	path     string // the configuration key it was resolved from
	clientID string
	secret   string
	certs    []*x509.Certificate
	key      crypto.PrivateKey
	err      error
}

// credential builds the credential of one tenant.
//
// A shared multi-tenant app gets one azidentity credential per tenant rather than one
// credential with AdditionallyAllowedTenants that each request steers by TokenRequestOptions.
// TenantID: azidentity serialises all token requests of a credential behind one mutex, so one
// slow or hung tenant would delay every other tenant's tokens; a request that lost its TenantID
// would silently get a token of the app's home tenant (I8); and one MSAL cache would hold the
// tokens of thousands of tenants. Per-tenant credentials share the resolved secret or parsed
// certificate, so the cost is a small MSAL client per tenant.
func (b *builder) credential(tenantID, path string, cr config.Credential) (azcore.TokenCredential, error) {
	m := b.material(path, cr)
	if m.err != nil {
		return nil, &ConfigError{Tenant: tenantID, Path: m.path, Err: m.err}
	}
	var (
		cred azcore.TokenCredential
		err  error
	)
	if m.secret != "" {
		cred, err = azidentity.NewClientSecretCredential(tenantID, m.clientID, m.secret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: b.opts, DisableInstanceDiscovery: b.disableDiscovery,
		})
	} else {
		cred, err = azidentity.NewClientCertificateCredential(tenantID, m.clientID, m.certs, m.key, &azidentity.ClientCertificateCredentialOptions{
			ClientOptions: b.opts, DisableInstanceDiscovery: b.disableDiscovery,
		})
	}
	if err != nil {
		return nil, &ConfigError{Tenant: tenantID, Path: path, Err: err}
	}
	return &tenantCredential{tenant: tenantID, cred: cred, blocked: b.blocked}, nil
}

// material resolves a credential's secret or certificate; a shared app's only once.
func (b *builder) material(path string, cr config.Credential) *material {
	if cr.App == "" {
		return b.resolve(path, cr)
	}
	if m, ok := b.materials[cr.App]; ok {
		return m
	}
	m := &material{path: path + ".app", err: fmt.Errorf("no app named %q under apps", cr.App)}
	for i, a := range b.c.Apps {
		if a.Name == cr.App {
			m = b.resolve(fmt.Sprintf("apps[%d].credential", i), a.Credential)
			break
		}
	}
	b.materials[cr.App] = m
	return m
}

func (b *builder) resolve(path string, cr config.Credential) *material {
	m := &material{path: path, clientID: cr.ClientID}
	switch {
	case cr.App != "":
		m.err = errors.New("app: an app's credential must not name another app")
	case cr.ClientSecret.Set():
		m.secret, m.err = b.c.Resolve(cr.ClientSecret, b.getenv)
		if m.err != nil {
			m.err = fmt.Errorf("client_secret: %w", m.err)
		}
	case cr.Certificate != "":
		m.certs, m.key, m.err = b.certificate(cr)
	default:
		m.err = errors.New("neither client_secret nor certificate is set")
	}
	return m
}

// certificate reads a PEM or PKCS#12 file with the certificate and its private key.
func (b *builder) certificate(cr config.Credential) ([]*x509.Certificate, crypto.PrivateKey, error) {
	file := b.c.Path(cr.Certificate)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	var password []byte
	if cr.CertificatePassword.Set() {
		pw, err := b.c.Resolve(cr.CertificatePassword, b.getenv)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate_password: %w", err)
		}
		password = []byte(pw)
	}
	certs, key, err := azidentity.ParseCertificates(data, password)
	if err != nil {
		// The parser's messages describe the data, never the password.
		return nil, nil, fmt.Errorf("certificate: %s: %w", file, err)
	}
	return certs, key, nil
}

// authorityHost checks the authority URL and returns it with the trailing slash azidentity
// joins tenant ids to.
func authorityHost(authority string) (string, error) {
	if authority == "" {
		authority = config.DefaultAuthority
	}
	u, err := url.Parse(authority)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("want an https:// URL, got %q", authority)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("want https (azidentity refuses any other authority), got %q", authority)
	}
	return strings.TrimRight(authority, "/") + "/", nil
}

// disableInstanceDiscovery reports whether MSAL must skip instance discovery: it asks
// login.microsoftonline.com whether the authority is known, which fails (or leaks the
// request) for any other authority — a national cloud, a private one, the emulator.
func disableInstanceDiscovery(host string) bool {
	u, err := url.Parse(host)
	return err != nil || !strings.EqualFold(u.Hostname(), publicAuthority)
}

// CloudConfig is the cloud.Configuration of socsync's ARM pipelines: the configured authority
// and ARM endpoint, with ARM's audience.
func CloudConfig(c *config.Config) cloud.Configuration {
	host, err := authorityHost(c.Cloud.Authority)
	if err != nil {
		host = c.Cloud.Authority // the credential build reports it
	}
	arm := c.Cloud.ARM
	if arm == "" {
		arm = config.DefaultARM
	}
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: host,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: arm, Audience: "https://management.azure.com"},
		},
	}
}
