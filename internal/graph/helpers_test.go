package graph_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/throttle"
)

// testBase is the emulator's clock in tests; tests move it with Advance, never sleep.
var testBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is an emulator served over HTTPS, as socsync reaches the real services.
type env struct {
	e    *emulator.Emulator
	srv  *emulator.Server
	info emulator.Info
}

func newEnv(t *testing.T, opts emulator.Options) *env {
	t.Helper()
	opts.Now = func() time.Time { return testBase }
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.CertTenants == 0 {
		opts.CertTenants = -1 // secrets only: certificate generation is slow and not needed here
	}
	e, err := emulator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := emulator.Start(ctx, e, "127.0.0.1:0", t.TempDir())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Close()
		e.Close()
	})
	return &env{e: e, srv: srv, info: e.Info(srv.URL, srv.CAFile)}
}

func (v *env) tenant(i int) emulator.TenantInfo { return v.info.Tenants[i] }

// credential is tenant i's own app (a single-tenant client secret credential).
func (v *env) credential(t *testing.T, i int) azcore.TokenCredential {
	t.Helper()
	ti := v.tenant(i)
	cred, err := azidentity.NewClientSecretCredential(ti.TenantID, ti.ClientID, ti.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: v.srv.URL + "/"}, Transport: v.srv.Client()},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// client is a Graph client for tenant i with its own credential, sending through rec.
func (v *env) client(t *testing.T, i int, rec *recorder, opts *graph.Options) *graph.Client {
	t.Helper()
	return v.clientWith(t, v.credential(t, i), v.tenant(i).TenantID, rec, opts)
}

func (v *env) clientWith(t *testing.T, cred azcore.TokenCredential, tenantID string, rec *recorder, opts *graph.Options) *graph.Client {
	t.Helper()
	if opts == nil {
		opts = &graph.Options{}
	}
	if opts.Now == nil {
		opts.Now = v.e.Now
	}
	if opts.Version == "" {
		opts.Version = "1.2.3-test"
	}
	var tr policy.Transporter = v.srv.Client()
	if rec != nil {
		rec.next = tr
		tr = rec
	}
	c, err := graph.New(v.srv.URL, cred, tr, tenantID, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// graphRequests counts the Graph requests the emulator received for a tenant.
func (v *env) graphRequests(tenantID string) int {
	n := 0
	for _, r := range v.e.Requests() {
		if r.API == "graph" && r.Tenant == tenantID {
			n += r.Count
		}
	}
	return n
}

// recorder is a transport that notes what socsync's client sends (and what came back)
// before passing the request on to the emulator.
type recorder struct {
	next policy.Transporter
	mu   sync.Mutex
	sent []sent
}

type sent struct {
	Method, URL, RawQuery string
	Header                http.Header
	Body                  []byte
	Key                   throttle.Key
	HasKey                bool
	Status                int
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	s := sent{Method: req.Method, URL: req.URL.String(), RawQuery: req.URL.RawQuery, Header: req.Header.Clone()}
	s.Key, s.HasKey = throttle.KeyFrom(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		s.Body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := r.next.Do(req)
	if resp != nil {
		s.Status = resp.StatusCode
	}
	r.mu.Lock()
	r.sent = append(r.sent, s)
	r.mu.Unlock()
	return resp, err
}

func (r *recorder) all() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.sent...)
}

func (r *recorder) last(t *testing.T) sent {
	t.Helper()
	all := r.all()
	if len(all) == 0 {
		t.Fatal("no request was sent")
	}
	return all[len(all)-1]
}

// transportFunc adapts a function to policy.Transporter.
type transportFunc func(*http.Request) (*http.Response, error)

func (f transportFunc) Do(req *http.Request) (*http.Response, error) { return f(req) }

// otherTenantCredential hands out tokens of its own tenant whatever tenant is asked for — a
// misconfigured credential, to prove the client notices.
type otherTenantCredential struct{ inner azcore.TokenCredential }

func (c otherTenantCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	o.TenantID = ""
	return c.inner.GetToken(ctx, o)
}
