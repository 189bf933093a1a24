package entra

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	armruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/throttle"
)

// env is the emulator served over real HTTPS, on the real clock (client assertions are
// stamped with it), with the configuration pieces a test assembles a socsync config from.
type env struct {
	t    *testing.T
	e    *emulator.Emulator
	srv  *emulator.Server
	info emulator.Info
	vars map[string]string // the environment the secrets are resolved from
	obs  *keyLog
}

func startEmulator(t *testing.T) *env {
	t.Helper()
	e, err := emulator.New(emulator.Options{Tenants: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := emulator.Start(ctx, e, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Close()
		e.Close()
	})
	en := &env{t: t, e: e, srv: srv, info: e.Info(srv.URL, srv.CAFile), vars: map[string]string{}, obs: &keyLog{}}
	for i, ti := range en.info.Tenants {
		en.vars[fmt.Sprintf("T%d_SECRET", i)] = ti.ClientSecret
	}
	en.vars["MSSP_SECRET"] = en.info.MultiTenantApp.ClientSecret
	return en
}

func (en *env) getenv(name string) string { return en.vars[name] }

// config is a socsync configuration pointing at the emulator.
func (en *env) config(tenants ...config.Tenant) *config.Config {
	return &config.Config{
		Cloud: config.Cloud{Authority: en.srv.URL, Graph: en.srv.URL, ARM: en.srv.URL, CAFile: en.srv.CAFile},
		Apps: []config.App{
			{Name: "mssp", Credential: config.Credential{ClientID: en.info.MultiTenantApp.ClientID, ClientSecret: "env:MSSP_SECRET"}},
			{Name: "mssp-cert", Credential: config.Credential{ClientID: en.info.MultiTenantApp.ClientID, Certificate: en.info.MultiTenantApp.CertFile}},
		},
		Tenants: tenants,
	}
}

func (en *env) secretTenant(i int) config.Tenant {
	ti := en.info.Tenants[i]
	return config.Tenant{ID: ti.TenantID, Name: ti.Name, Credential: config.Credential{ClientID: ti.ClientID, ClientSecret: config.SecretRef(fmt.Sprintf("env:T%d_SECRET", i))}}
}

func (en *env) appTenant(i int, app string) config.Tenant {
	ti := en.info.Tenants[i]
	return config.Tenant{ID: ti.TenantID, Name: ti.Name, Credential: config.Credential{App: app}}
}

// transport is the throttle transport socsync wraps around HTTPClient, with backoffs of a
// millisecond at most.
func (en *env) transport(c *config.Config) *throttle.Transport {
	en.t.Helper()
	hc, err := HTTPClient(c)
	if err != nil {
		en.t.Fatal(err)
	}
	return throttle.New(hc, throttle.Options{Observer: en.obs, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond})
}

func (en *env) credentials(c *config.Config) *Credentials {
	en.t.Helper()
	cs, err := New(c, en.getenv, en.transport(c))
	if err != nil {
		en.t.Fatal(err)
	}
	return cs
}

// secrets are every secret the emulator knows, which no error may ever contain.
func (en *env) secrets() []string {
	out := []string{en.info.MultiTenantApp.ClientSecret}
	for _, ti := range en.info.Tenants {
		out = append(out, ti.ClientSecret)
	}
	for _, v := range en.vars {
		out = append(out, v)
	}
	return out
}

func (en *env) assertNoSecret(err error, extra ...string) {
	en.t.Helper()
	if err == nil {
		return
	}
	kind, reason := Classify(err)
	for _, s := range append(en.secrets(), extra...) {
		if s != "" && (strings.Contains(err.Error(), s) || strings.Contains(reason, s) || strings.Contains(fmt.Sprintf("%+v", err), s)) {
			en.t.Fatalf("a secret appears in an error (%s: %s)", kind, reason)
		}
	}
}

// token gets a token of scope from the tenant's credential.
func token(t *testing.T, cs *Credentials, tenant, scope string) (azcore.AccessToken, error) {
	t.Helper()
	cred, err := cs.For(tenant)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
}

func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// keyLog is a throttle.Observer that remembers the keys of the attempts it saw.
type keyLog struct {
	mu   sync.Mutex
	keys []throttle.Key
}

func (l *keyLog) Sent(k throttle.Key, _ int, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = append(l.keys, k)
}

func (l *keyLog) Throttled(throttle.Key, time.Time, int) {}

func (l *keyLog) Keys() []throttle.Key {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]throttle.Key(nil), l.keys...)
}

func TestHTTPClient_TrustsTheConfiguredCAFile(t *testing.T) {
	en := startEmulator(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		name    string
		file    string // the config file (relative CA paths are relative to its directory)
		ca      string
		wantErr string // from HTTPClient
		wantTLS bool   // the request fails verification
	}{
		{name: "absolute CA file", ca: en.srv.CAFile},
		{name: "CA file relative to the config file", file: filepath.Join(en.srv.Dir, "socsync.yaml"), ca: "ca.pem"},
		{name: "no CA file: system roots only", wantTLS: true},
		{name: "missing CA file", ca: filepath.Join(t.TempDir(), "nope.pem"), wantErr: "cloud.ca_file"},
		{name: "CA file without certificates", ca: notPEM, wantErr: "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &config.Config{File: tc.file, Cloud: config.Cloud{CAFile: tc.ca}}
			hc, err := HTTPClient(c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want an error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Get(en.srv.URL + "/" + en.info.Tenants[0].TenantID + "/v2.0/.well-known/openid-configuration")
			var verr *tls.CertificateVerificationError
			if tc.wantTLS {
				if !errors.As(err, &verr) {
					t.Fatalf("got %v; want a certificate verification error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

func TestFor_ClientSecretCredentialGetsTokensOfItsTenant(t *testing.T) {
	en := startEmulator(t)
	cs := en.credentials(en.config(en.secretTenant(0)))
	ti := en.info.Tenants[0]
	for _, scope := range []string{ScopeGraph, ScopeARM, ScopeIngestion} {
		tok, err := token(t, cs, ti.TenantID, scope)
		if err != nil {
			en.assertNoSecret(err)
			t.Fatalf("%s: %v", scope, err)
		}
		if cl := claims(t, tok.Token); cl["tid"] != ti.TenantID || cl["appid"] != ti.ClientID || cl["appidacr"] != "1" {
			t.Fatalf("%s: claims %v", scope, cl)
		}
	}
	// Token requests count against the tenant's token budget, never another key.
	want := throttle.Key{API: throttle.APIToken, Scope: strings.ToLower(ti.TenantID)}
	for _, k := range en.obs.Keys() {
		if k != want {
			t.Fatalf("a token request was counted against %s, want %s", k, want)
		}
	}
	if cs.Problems() != nil {
		t.Fatal(cs.Problems())
	}
}

func TestFor_ClientCertificateCredential(t *testing.T) {
	en := startEmulator(t)
	t1, t0 := en.info.Tenants[1], en.info.Tenants[0]
	tenant := config.Tenant{ID: t1.TenantID, Credential: config.Credential{ClientID: t1.ClientID, Certificate: t1.CertFile}}
	cs := en.credentials(en.config(tenant))
	tok, err := token(t, cs, t1.TenantID, ScopeGraph)
	if err != nil {
		t.Fatal(err)
	}
	if cl := claims(t, tok.Token); cl["tid"] != t1.TenantID || cl["appidacr"] != "2" {
		t.Fatalf("claims %v", cl)
	}

	// Another app's certificate is refused by Entra: degraded, with the code.
	tenant.Credential.Certificate = t0.CertFile
	_, err = token(t, en.credentials(en.config(tenant)), t1.TenantID, ScopeGraph)
	if kind, reason := Classify(err); kind != KindDegraded || !strings.HasPrefix(reason, "AADSTS700027") {
		t.Fatalf("foreign certificate: %s %q (%v)", kind, reason, err)
	}
}

func TestFor_SharedAppGetsTokensCarryingEachTenant(t *testing.T) {
	en := startEmulator(t)
	for _, app := range []string{"mssp", "mssp-cert"} {
		t.Run(app, func(t *testing.T) {
			cs := en.credentials(en.config(en.appTenant(0, app), en.appTenant(1, app), en.appTenant(2, app)))
			for _, ti := range en.info.Tenants {
				tok, err := token(t, cs, ti.TenantID, ScopeGraph)
				if err != nil {
					t.Fatalf("tenant %s: %v", ti.Name, err)
				}
				if cl := claims(t, tok.Token); cl["tid"] != ti.TenantID || cl["appid"] != en.info.MultiTenantApp.ClientID {
					t.Fatalf("tenant %s: claims %v", ti.Name, cl)
				}
			}
			// A tenant's credential never hands out another tenant's token (I8).
			cred, _ := cs.For(en.info.Tenants[0].TenantID)
			_, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{ScopeGraph}, TenantID: en.info.Tenants[1].TenantID})
			if !errors.Is(err, ErrOtherTenant) {
				t.Fatalf("asked for another tenant: %v", err)
			}
			if kind, _ := Classify(err); kind != KindDegraded {
				t.Fatalf("classified %s", kind)
			}
		})
	}
}

func TestFor_RevokedConsentIsDegradedWhileOtherTenantsGetTokens(t *testing.T) {
	en := startEmulator(t)
	cs := en.credentials(en.config(en.appTenant(0, "mssp"), en.appTenant(1, "mssp"), en.appTenant(2, "mssp")))
	revoked := en.info.Tenants[2]
	setConsent := func(granted bool) {
		body := fmt.Sprintf(`{"granted":%v,"client_id":%q}`, granted, en.info.MultiTenantApp.ClientID)
		resp, err := en.srv.Client().Post(en.srv.URL+"/_emulator/tenants/"+revoked.TenantID+"/consent", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("consent: %d", resp.StatusCode)
		}
	}
	setConsent(false)

	_, err := token(t, cs, revoked.TenantID, ScopeGraph)
	kind, reason := Classify(err)
	if kind != KindDegraded || !strings.HasPrefix(reason, "AADSTS7000229") || !strings.Contains(err.Error(), revoked.TenantID) {
		t.Fatalf("revoked consent: %s %q (%v)", kind, reason, err)
	}
	en.assertNoSecret(err)
	for _, ti := range en.info.Tenants[:2] {
		if _, err := token(t, cs, ti.TenantID, ScopeGraph); err != nil {
			t.Fatalf("tenant %s after another tenant's revocation: %v", ti.Name, err)
		}
	}
	setConsent(true)
	if _, err := token(t, cs, revoked.TenantID, ScopeGraph); err != nil {
		t.Fatalf("after consent was granted again: %v", err)
	}
}

func TestFor_WrongSecretIsDegradedAndNeverPrinted(t *testing.T) {
	en := startEmulator(t)
	const wrong = "wr0ng-Secret~Value.that-must-not-leak"
	en.vars["T0_SECRET"] = wrong
	cs := en.credentials(en.config(en.secretTenant(0), en.secretTenant(1)))
	_, err := token(t, cs, en.info.Tenants[0].TenantID, ScopeGraph)
	kind, reason := Classify(err)
	if kind != KindDegraded || !strings.HasPrefix(reason, "AADSTS7000215") {
		t.Fatalf("wrong secret: %s %q (%v)", kind, reason, err)
	}
	en.assertNoSecret(err, wrong)
	if _, err := token(t, cs, en.info.Tenants[1].TenantID, ScopeGraph); err != nil {
		t.Fatalf("other tenant: %v", err)
	}
}

func TestNew_CredentialThatCannotBeBuiltDegradesOnlyItsTenant(t *testing.T) {
	en := startEmulator(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"), 0o600)
	for _, tc := range []struct {
		name     string
		cred     config.Credential
		wantPath string
	}{
		{"secret reference not set", config.Credential{ClientID: en.info.Tenants[0].ClientID, ClientSecret: "env:NOT_SET"}, "tenants[0].credential"},
		{"certificate missing", config.Credential{ClientID: en.info.Tenants[0].ClientID, Certificate: filepath.Join(t.TempDir(), "none.pem")}, "tenants[0].credential"},
		{"certificate unreadable", config.Credential{ClientID: en.info.Tenants[0].ClientID, Certificate: garbage}, "tenants[0].credential"},
		{"certificate password not set", config.Credential{ClientID: en.info.Tenants[0].ClientID, Certificate: en.info.Tenants[0].CertFile, CertificatePassword: "env:NOT_SET"}, "tenants[0].credential"},
		{"unknown app", config.Credential{App: "nobody"}, "tenants[0].credential.app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := en.secretTenant(0)
			bad.Credential = tc.cred
			cs := en.credentials(en.config(bad, en.secretTenant(1)))
			_, err := cs.For(en.info.Tenants[0].TenantID)
			var cfg *ConfigError
			if !errors.As(err, &cfg) || cfg.Path != tc.wantPath || cfg.Tenant != en.info.Tenants[0].TenantID {
				t.Fatalf("got %v; want a *ConfigError at %s", err, tc.wantPath)
			}
			if kind, reason := Classify(err); kind != KindDegraded || !strings.Contains(reason, tc.wantPath) {
				t.Fatalf("classified %s %q", kind, reason)
			}
			if p := cs.Problems(); p == nil || !strings.Contains(p.Error(), tc.wantPath) {
				t.Fatalf("Problems() = %v", p)
			}
			en.assertNoSecret(err)
			if _, err := token(t, cs, en.info.Tenants[1].TenantID, ScopeGraph); err != nil {
				t.Fatalf("the other tenant: %v", err)
			}
		})
	}
}

func TestFor_ThrottledTokenEndpointIsThrottledNotDegraded(t *testing.T) {
	en := startEmulator(t)
	a, b := en.info.Tenants[0], en.info.Tenants[1]
	if err := en.e.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{{API: "token", Tenant: a.TenantID, Rate429: 1, RetryAfter: []int{60, 60}}}}); err != nil {
		t.Fatal(err)
	}
	cs := en.credentials(en.config(en.secretTenant(0), en.secretTenant(1)))
	_, err := token(t, cs, a.TenantID, ScopeGraph)
	var th *throttle.Throttled
	if !errors.As(err, &th) || th.Key != (throttle.Key{API: throttle.APIToken, Scope: strings.ToLower(a.TenantID)}) || th.Status != 429 {
		t.Fatalf("got %v; want a *throttle.Throttled on tenant A's token endpoint", err)
	}
	if kind, reason := Classify(err); kind != KindThrottled || !strings.Contains(reason, "429") {
		t.Fatalf("classified %s %q", kind, reason)
	}
	if _, err := token(t, cs, b.TenantID, ScopeGraph); err != nil {
		t.Fatalf("tenant B: %v", err)
	}
}

func TestFor_TokenEndpointServerErrorIsTransient(t *testing.T) {
	en := startEmulator(t)
	a := en.info.Tenants[0]
	if err := en.e.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{{API: "token", Method: "POST", Rate5xx: 1, Statuses: []int{500}}}}); err != nil {
		t.Fatal(err)
	}
	cs := en.credentials(en.config(en.secretTenant(0)))
	_, err := token(t, cs, a.TenantID, ScopeGraph)
	if kind, reason := Classify(err); kind != KindTransient || !strings.HasPrefix(reason, "AADSTS90033") {
		t.Fatalf("classified %s %q (%v)", kind, reason, err)
	}
}

func TestForward_CredentialOfTheCentralTenant(t *testing.T) {
	en := startEmulator(t)
	c := en.config(en.secretTenant(0))
	if cs := en.credentials(c); true {
		if _, err := cs.Forward(); !errors.Is(err, ErrNotConfigured) {
			t.Fatalf("forward off: %v", err)
		}
		if _, err := cs.For("00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrNotConfigured) {
			t.Fatalf("unknown tenant: %v", err)
		}
	}
	c.Forward = config.Forward{DCRImmutableID: en.info.LogsIngestion.DCRImmutableID, Stream: en.info.LogsIngestion.Stream,
		TenantID: en.info.HomeTenantID, Credential: config.Credential{App: "mssp"}}
	cred, err := en.credentials(c).Forward()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{ScopeIngestion}})
	if err != nil {
		t.Fatal(err)
	}
	if cl := claims(t, tok.Token); cl["tid"] != en.info.HomeTenantID || cl["aud"] != "https://monitor.azure.com" {
		t.Fatalf("claims %v", cl)
	}
}

func TestCloudConfig_DrivesAnARMPipeline(t *testing.T) {
	en := startEmulator(t)
	ti := en.info.Tenants[1]
	ws := ti.Sentinel[0]
	c := en.config(en.secretTenant(1))
	cs := en.credentials(c)
	cred, err := cs.For(ti.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	tr := en.transport(c)
	pl, err := armruntime.NewPipeline("socsync-test", "v0", cred, runtime.PipelineOptions{}, &arm.ClientOptions{
		ClientOptions:         policy.ClientOptions{Cloud: CloudConfig(c), Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableRPRegistration: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	u := fmt.Sprintf("%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s/providers/Microsoft.SecurityInsights/incidents?api-version=2025-12-01",
		CloudConfig(c).Services["resourceManager"].Endpoint, ws.SubscriptionID, ws.ResourceGroup, ws.Workspace)
	ctx := throttle.WithKey(context.Background(), throttle.Key{API: throttle.APIARMRead, Scope: ws.SubscriptionID})
	req, err := runtime.NewRequest(ctx, http.MethodGet, u)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := pl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestCloudConfig_AuthorityAndInstanceDiscovery(t *testing.T) {
	c := &config.Config{Cloud: config.Cloud{Authority: "https://login.example.test", ARM: "https://arm.example.test"}}
	cc := CloudConfig(c)
	if cc.ActiveDirectoryAuthorityHost != "https://login.example.test/" {
		t.Fatalf("authority %q", cc.ActiveDirectoryAuthorityHost)
	}
	if s := cc.Services["resourceManager"]; s.Endpoint != "https://arm.example.test" || s.Audience != "https://management.azure.com" {
		t.Fatalf("ARM %+v", s)
	}
	for host, want := range map[string]bool{
		"https://login.microsoftonline.com/": false,
		"https://LOGIN.microsoftonline.com/": false,
		"https://login.microsoftonline.us/":  true,
		"https://127.0.0.1:4443/":            true,
	} {
		if got := disableInstanceDiscovery(host); got != want {
			t.Errorf("disableInstanceDiscovery(%s) = %v", host, got)
		}
	}
	if _, err := New(&config.Config{Cloud: config.Cloud{Authority: "http://login.example.test"}}, nil, throttle.New(nil, throttle.Options{})); err == nil {
		t.Fatal("a plain-http authority was accepted")
	}
}
