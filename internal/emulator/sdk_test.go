package emulator

// Conformance tests that drive the emulator, served by Start over real HTTPS, through the
// official Azure SDK for Go clients: azidentity, armsecurityinsights/v2 (forced to api-version
// 2025-12-01) and azlogs.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/securityinsights/armsecurityinsights/v2"
)

type sdkEnv struct {
	e    *Emulator
	srv  *Server
	info Info
}

func startSDKEnv(t *testing.T, opts Options) *sdkEnv {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testBase }
	}
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, e, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Close()
		e.Close()
	})
	return &sdkEnv{e: e, srv: srv, info: e.Info(srv.URL, srv.CAFile)}
}

// clientOptions points every SDK at the emulator and trusts its CA file (read from disk, as a
// user would).
func (s *sdkEnv) clientOptions(t *testing.T) azcore.ClientOptions {
	t.Helper()
	pemData, err := os.ReadFile(s.info.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(pemData, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("CA file %s holds no certificate", s.info.CAFile)
	}
	return azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: s.srv.URL + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager:       {Endpoint: s.srv.URL, Audience: "https://management.azure.com"},
				azlogs.ServiceNameIngestion: {Audience: "https://monitor.azure.com/"},
			},
		},
		Transport: s.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond},
	}
}

func (s *sdkEnv) secretCred(t *testing.T, tenantID, clientID, secret string, allowed ...string) *azidentity.ClientSecretCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: s.clientOptions(t), DisableInstanceDiscovery: true, AdditionallyAllowedTenants: allowed,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// tokenClaims decodes an access token's payload.
func tokenClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
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

// graphGet calls Graph with a token and returns the status.
func (s *sdkEnv) graphGet(t *testing.T, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.srv.URL+"/v1.0/security/incidents?$top=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSDK_Azidentity_ClientSecretCredential(t *testing.T) {
	s := startSDKEnv(t, Options{})
	ti := s.info.Tenants[0]
	cred := s.secretCred(t, ti.TenantID, ti.ClientID, ti.ClientSecret)
	ctx := context.Background()
	for _, scope := range []string{"https://graph.microsoft.com/.default", "https://management.azure.com/.default", "https://monitor.azure.com//.default"} {
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil {
			t.Fatalf("%s: %v", scope, err)
		}
		cl := tokenClaims(t, tok.Token)
		if cl["tid"] != ti.TenantID || cl["appid"] != ti.ClientID {
			t.Errorf("%s: claims %v", scope, cl)
		}
		if life := int64(cl["exp"].(float64)) - testBase.Unix(); life < 3600 || life > 5400 {
			t.Errorf("%s: lifetime %d s, want 60–90 min on the emulator clock", scope, life)
		}
	}
	tok, _ := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if status := s.graphGet(t, tok.Token); status != 200 {
		t.Fatalf("Graph with the SDK's token: %d", status)
	}

	bad := s.secretCred(t, ti.TenantID, ti.ClientID, "wrong")
	_, err := bad.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != 401 || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestSDK_Azidentity_ClientCertificateCredential(t *testing.T) {
	s := startSDKEnv(t, Options{})
	ti := s.info.Tenants[1]
	if ti.CertFile == "" {
		t.Fatal("Start wrote no certificate for the tenant's app")
	}
	data, err := os.ReadFile(ti.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	certs, key, err := azidentity.ParseCertificates(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, chain := range []bool{false, true} {
		cred, err := azidentity.NewClientCertificateCredential(ti.TenantID, ti.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
			ClientOptions: s.clientOptions(t), DisableInstanceDiscovery: true, SendCertificateChain: chain,
		})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
		if err != nil {
			t.Fatalf("certificate credential (x5c %v): %v", chain, err)
		}
		if cl := tokenClaims(t, tok.Token); cl["appidacr"] != "2" || cl["tid"] != ti.TenantID {
			t.Errorf("claims %v", cl)
		}
		if status := s.graphGet(t, tok.Token); status != 200 {
			t.Fatalf("Graph with a certificate token: %d", status)
		}
	}

	// Another tenant's certificate is not registered on this app.
	other, err := os.ReadFile(s.info.Tenants[0].CertFile)
	if err != nil {
		t.Fatal(err)
	}
	oc, ok, _ := azidentity.ParseCertificates(other, nil)
	cred, _ := azidentity.NewClientCertificateCredential(ti.TenantID, ti.ClientID, oc, ok, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions: s.clientOptions(t), DisableInstanceDiscovery: true,
	})
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Fatalf("unregistered certificate: %v", err)
	}
}

func TestSDK_Azidentity_MultiTenantApp(t *testing.T) {
	s := startSDKEnv(t, Options{})
	app := s.info.MultiTenantApp
	cred := s.secretCred(t, app.HomeTenantID, app.ClientID, app.ClientSecret, "*")
	ctx := context.Background()
	for _, ti := range s.info.Tenants {
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}, TenantID: ti.TenantID})
		if err != nil {
			t.Fatalf("tenant %s: %v", ti.Name, err)
		}
		if cl := tokenClaims(t, tok.Token); cl["tid"] != ti.TenantID || cl["appid"] != app.ClientID {
			t.Fatalf("tenant %s: claims %v", ti.Name, cl)
		}
		if status := s.graphGet(t, tok.Token); status != 200 {
			t.Fatalf("tenant %s: Graph %d", ti.Name, status)
		}
	}
	// Revoked consent in one tenant: AADSTS7000229 there, the others unaffected.
	revoked := s.info.Tenants[2].TenantID
	if err := s.e.SetConsent(revoked, app.ClientID, false, nil); err != nil {
		t.Fatal(err)
	}
	fresh := s.secretCred(t, app.HomeTenantID, app.ClientID, app.ClientSecret, "*")
	_, err := fresh.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}, TenantID: revoked})
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000229") {
		t.Fatalf("revoked consent: %v", err)
	}
	if _, err := fresh.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}, TenantID: s.info.Tenants[0].TenantID}); err != nil {
		t.Fatalf("other tenant after revocation: %v", err)
	}
	// A multi-tenant app certificate works as well.
	data, err := os.ReadFile(app.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	certs, key, _ := azidentity.ParseCertificates(data, nil)
	cc, _ := azidentity.NewClientCertificateCredential(app.HomeTenantID, app.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions: s.clientOptions(t), DisableInstanceDiscovery: true, AdditionallyAllowedTenants: []string{"*"},
	})
	if _, err := cc.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}, TenantID: s.info.Tenants[1].TenantID}); err != nil {
		t.Fatalf("multi-tenant certificate: %v", err)
	}
}

// reencodeQuery is what a Sentinel client must do with nextLinks: their query is not
// percent-encoded, so parse it and encode it again before sending.
type reencodeQuery struct{}

func (reencodeQuery) Do(req *policy.Request) (*http.Response, error) {
	u := req.Raw().URL
	if strings.ContainsAny(u.RawQuery, " '") {
		u.RawQuery = strings.ReplaceAll(u.Query().Encode(), "+", "%20")
	}
	return req.Next()
}

func (s *sdkEnv) sentinelClients(t *testing.T, tenant int, reencode bool) (*armsecurityinsights.IncidentsClient, *armsecurityinsights.IncidentCommentsClient, WorkspaceInfo) {
	t.Helper()
	ti := s.info.Tenants[tenant]
	cred := s.secretCred(t, ti.TenantID, ti.ClientID, ti.ClientSecret)
	co := s.clientOptions(t)
	co.APIVersion = "2025-12-01"
	if reencode {
		co.PerCallPolicies = []policy.Policy{reencodeQuery{}}
	}
	opts := &arm.ClientOptions{ClientOptions: co, DisableRPRegistration: true}
	ws := ti.Sentinel[0]
	ic, err := armsecurityinsights.NewIncidentsClient(ws.SubscriptionID, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := armsecurityinsights.NewIncidentCommentsClient(ws.SubscriptionID, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ic, cc, ws
}

func TestSDK_Sentinel_ListPagesGetUpdateConflictAndComments(t *testing.T) {
	s := startSDKEnv(t, Options{})
	for range 7 {
		s.e.Advance(time.Second)
		if _, err := s.e.CreateIncident("1", NewIncident{Title: "paged", Severity: "high"}); err != nil {
			t.Fatal(err)
		}
	}
	ic, cc, ws := s.sentinelClients(t, 1, true)
	ctx := context.Background()

	// List with a filter and order, 3 per page, following the nextLinks.
	pager := ic.NewListPager(ws.ResourceGroup, ws.Workspace, &armsecurityinsights.IncidentsClientListOptions{
		Filter:  to.Ptr("properties/severity eq 'High' and properties/status ne 'Closed'"),
		Orderby: to.Ptr("properties/createdTimeUtc asc"),
		Top:     to.Ptr[int32](3),
	})
	var names []string
	pages := 0
	var last time.Time
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		for _, inc := range page.Value {
			names = append(names, *inc.Name)
			if *inc.Properties.Severity != armsecurityinsights.IncidentSeverityHigh {
				t.Errorf("filter let %s through", *inc.Properties.Severity)
			}
			if inc.Properties.CreatedTimeUTC.Before(last) {
				t.Error("not in $orderby order")
			}
			last = *inc.Properties.CreatedTimeUTC
		}
	}
	if len(names) < 7 || pages != (len(names)+2)/3 {
		t.Fatalf("listed %d incidents in %d pages", len(names), pages)
	}

	// Get, then update through PUT with the etag.
	got, err := ic.Get(ctx, ws.ResourceGroup, ws.Workspace, names[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Properties.ProviderName != "Microsoft XDR" || got.Properties.ProviderIncidentID == nil {
		t.Errorf("mirrored incident: provider %v id %v", *got.Properties.ProviderName, got.Properties.ProviderIncidentID)
	}
	oldEtag := *got.Etag
	users := s.info.Tenants[1].Users
	upd := got.Incident
	upd.Properties.Status = to.Ptr(armsecurityinsights.IncidentStatusActive)
	upd.Properties.Owner = &armsecurityinsights.IncidentOwnerInfo{ObjectID: to.Ptr(users[1].ObjectID)}
	upd.Properties.Labels = []*armsecurityinsights.IncidentLabel{{LabelName: to.Ptr("from-sdk")}}
	s.e.Advance(time.Minute)
	res, err := ic.CreateOrUpdate(ctx, ws.ResourceGroup, ws.Workspace, names[0], upd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *res.Etag == oldEtag || *res.Properties.Status != armsecurityinsights.IncidentStatusActive {
		t.Errorf("update: etag %s (was %s), status %s", *res.Etag, oldEtag, *res.Properties.Status)
	}
	if o := res.Properties.Owner; o == nil || *o.UserPrincipalName != users[1].UPN || *o.AssignedTo != users[1].DisplayName || *o.Email != users[1].Email {
		t.Errorf("owner not filled from the directory: %+v", o)
	}
	// The Defender side of the mirrored incident shows the change.
	g := s.e.graphView(t, 1, *got.Properties.ProviderIncidentID)
	if g["status"] != "inProgress" || g["assignedTo"] != users[1].UPN || !slices.Contains(g["customTags"].([]any), any("from-sdk")) {
		t.Errorf("Graph view after Sentinel PUT: status %v assignedTo %v tags %v", g["status"], g["assignedTo"], g["customTags"])
	}

	// The old etag is stale now: 409 Conflict with the observed message.
	upd.Etag = to.Ptr(oldEtag)
	_, err = ic.CreateOrUpdate(ctx, ws.ResourceGroup, ws.Workspace, names[0], upd, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 409 || re.ErrorCode != "Conflict" ||
		!strings.Contains(err.Error(), fmt.Sprintf("Newer version of resource '%s' exists. Data was not saved", names[0])) {
		t.Fatalf("stale etag: %v", err)
	}
	// Without an etag the write is accepted (last writer wins).
	upd.Etag = nil
	upd.Properties.Severity = to.Ptr(armsecurityinsights.IncidentSeverityLow)
	if _, err := ic.CreateOrUpdate(ctx, ws.ResourceGroup, ws.Workspace, names[0], upd, nil); err != nil {
		t.Fatalf("no etag: %v", err)
	}

	// Comments: PUT with a client-chosen id, list, get, delete.
	cid := "4bb36b7b-26ff-4d1c-9cbe-0d8ab3da0014"
	cr, err := cc.CreateOrUpdate(ctx, ws.ResourceGroup, ws.Workspace, names[0], cid,
		armsecurityinsights.IncidentComment{Properties: &armsecurityinsights.IncidentCommentProperties{Message: to.Ptr("from the hub")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *cr.Name != cid || cr.Properties.Author == nil || *cr.Properties.Author.Name != "socsync" || strings.HasPrefix(*cr.Etag, `"`) {
		t.Errorf("comment: %+v etag %s", cr.Properties, *cr.Etag)
	}
	cpager := cc.NewListPager(ws.ResourceGroup, ws.Workspace, names[0], nil)
	found := false
	for cpager.More() {
		p, err := cpager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Value {
			found = found || *c.Name == cid
		}
	}
	if !found {
		t.Error("comment not listed")
	}
	if _, err := cc.Get(ctx, ws.ResourceGroup, ws.Workspace, names[0], cid, nil); err != nil {
		t.Fatal(err)
	}
	if g := s.e.graphView(t, 1, *got.Properties.ProviderIncidentID); len(g["comments"].([]any)) != 1 {
		t.Errorf("Graph view comments %v", g["comments"])
	}
	if _, err := cc.Delete(ctx, ws.ResourceGroup, ws.Workspace, names[0], cid, nil); err != nil {
		t.Fatal(err)
	}
	_, err = cc.Get(ctx, ws.ResourceGroup, ws.Workspace, names[0], cid, nil)
	if !errors.As(err, &re) || re.StatusCode != 404 {
		t.Fatalf("deleted comment: %v", err)
	}

	// Alerts of the incident.
	al, err := ic.ListAlerts(ctx, ws.ResourceGroup, ws.Workspace, names[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(al.Value) == 0 {
		t.Fatal("no alerts")
	}
	if a := al.Value[0]; a.Properties == nil || a.Properties.Status == nil || a.Properties.SystemAlertID == nil {
		t.Fatalf("alert %+v", a)
	}
}

// Sentinel nextLinks carry their query unescaped. Sent verbatim they are refused (400, as
// HTTP.sys refuses a request line with spaces); azcore's APIVersion policy happens to
// re-encode the query, so the SDK forced to 2025-12-01 follows them fine.
func TestSDK_Sentinel_UnescapedNextLink_VerbatimFails_SDKWithAPIVersionFollows(t *testing.T) {
	s := startSDKEnv(t, Options{})
	ic, _, ws := s.sentinelClients(t, 1, false)
	filter := "properties/status ne 'Deleted' and properties/createdTimeUtc ge 2020-01-01T00:00:00Z"
	pager := ic.NewListPager(ws.ResourceGroup, ws.Workspace, &armsecurityinsights.IncidentsClientListOptions{
		Filter: to.Ptr(filter), Top: to.Ptr[int32](1),
	})
	ctx := context.Background()
	first, err := pager.NextPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := *first.NextLink
	if !strings.Contains(next, "$filter="+filter) {
		t.Fatalf("nextLink %q does not carry the filter unescaped", next)
	}
	u, err := url.Parse(next)
	if err != nil || u.Query().Get("$filter") != filter || u.Query().Get("$skipToken") == "" {
		t.Fatalf("Go's URL parser does not recover the query of %q: %v %v", next, u, err)
	}
	n := len(first.Value)
	for pager.More() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("SDK following nextLink: %v", err)
		}
		n += len(p.Value)
	}
	if n != 4 {
		t.Fatalf("listed %d incidents, want 4", n)
	}
	// The same link, sent verbatim by a plain client.
	cred := s.secretCred(t, s.info.Tenants[1].TenantID, s.info.Tenants[1].ClientID, s.info.Tenants[1].ClientSecret)
	tok, _ := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	req, _ := http.NewRequest("GET", next, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "Bad Request - Invalid URL") {
		t.Fatalf("verbatim nextLink: %d %s", resp.StatusCode, body)
	}
	// Re-encoded, it works.
	u.RawQuery = u.Query().Encode()
	req, _ = http.NewRequest("GET", u.String(), nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err = s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("re-encoded nextLink: %d", resp.StatusCode)
	}
}

func TestSDK_Azlogs_UploadGzipAndOversize(t *testing.T) {
	s := startSDKEnv(t, Options{})
	li := s.info.LogsIngestion
	cred := s.secretCred(t, li.TenantID, li.ClientID, li.ClientSecret)
	client, err := azlogs.NewClient(li.Endpoint, cred, &azlogs.ClientOptions{ClientOptions: s.clientOptions(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.Upload(ctx, li.DCRImmutableID, li.Stream, []byte(`[{"IncidentKey":"a","Version":1}]`), nil); err != nil {
		t.Fatalf("upload: %v", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`[{"IncidentKey":"b","Version":2},{"IncidentKey":"c","Version":3}]`))
	zw.Close()
	if _, err := client.Upload(ctx, li.DCRImmutableID, li.Stream, gz.Bytes(), &azlogs.UploadOptions{ContentEncoding: to.Ptr("gzip")}); err != nil {
		t.Fatalf("gzip upload: %v", err)
	}
	rows := s.e.Ingested(li.Stream)
	if len(rows) != 3 {
		t.Fatalf("ingested %d rows, want 3", len(rows))
	}
	big := []byte(`[{"x":"` + strings.Repeat("a", 1<<20) + `"}]`)
	_, err = client.Upload(ctx, li.DCRImmutableID, li.Stream, big, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 413 || re.ErrorCode != "ContentLengthLimitExceeded" {
		t.Fatalf("oversize: %v", err)
	}
	if n := len(s.e.Ingested(li.Stream)); n != 3 {
		t.Fatalf("oversize upload stored rows: %d", n)
	}
}
