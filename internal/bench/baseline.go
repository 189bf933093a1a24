package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/socsync/socsync/internal/emulator"
)

// baseline is the status-quo pattern socsync replaces: a Logic App per tenant that, every
// interval, lists the tenant's active Defender incidents through Graph (every page) and posts
// each one to a custom table through the Logs Ingestion API. It signs in as its own app (the
// MSSP's multi-tenant app), so its Graph budget is its own.
type baseline struct {
	clientID string
	graph    string
	ingest   string // ingestion URL of its stream
	http     *http.Client
	creds    map[string]azcore.TokenCredential // per tenant
	ingCred  azcore.TokenCredential

	mu      sync.Mutex
	n       int                    // Graph calls
	posts   map[string][]time.Time // tenant/Graph id → times it was posted
	lastRun time.Time              // when the last complete run started
}

// ranSince reports whether a complete run started at or after t.
func (b *baseline) ranSince(t time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.lastRun.Before(t)
}

func newBaseline(info emulator.Info, em *emulator.Emulator, stream string) (*baseline, error) {
	caPool, err := caPool(info.CAFile)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig(caPool), MaxIdleConnsPerHost: 64}}
	opts := func() *azidentity.ClientSecretCredentialOptions {
		return &azidentity.ClientSecretCredentialOptions{DisableInstanceDiscovery: true,
			ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: info.BaseURL + "/"}, Transport: hc,
				Retry: policy.RetryOptions{MaxRetries: 3}}}
	}
	b := &baseline{clientID: info.MultiTenantApp.ClientID, graph: info.BaseURL, http: hc, creds: map[string]azcore.TokenCredential{},
		posts:  map[string][]time.Time{},
		ingest: info.LogsIngestion.Endpoint + "/dataCollectionRules/" + info.LogsIngestion.DCRImmutableID + "/streams/" + stream + "?api-version=2023-01-01"}
	for _, t := range info.Tenants {
		c, err := azidentity.NewClientSecretCredential(t.TenantID, info.MultiTenantApp.ClientID, info.MultiTenantApp.ClientSecret, opts())
		if err != nil {
			return nil, err
		}
		b.creds[t.TenantID] = c
	}
	b.ingCred, err = azidentity.NewClientSecretCredential(info.LogsIngestion.TenantID, info.LogsIngestion.ClientID, info.LogsIngestion.ClientSecret, opts())
	return b, err
}

// resetCalls starts counting calls afresh (at the start of the measured run).
func (b *baseline) resetCalls() {
	b.mu.Lock()
	b.n = 0
	b.mu.Unlock()
}

func (b *baseline) calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// run repeats the Logic App's recurrence until ctx is done.
func (b *baseline) run(ctx context.Context, interval time.Duration, info emulator.Info) {
	for {
		start := time.Now()
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for _, t := range info.Tenants {
			if !t.Defender {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				b.runTenant(ctx, t.TenantID)
			}()
		}
		wg.Wait()
		if ctx.Err() == nil {
			b.mu.Lock()
			b.lastRun = start
			b.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(interval))):
		}
	}
}

// runTenant lists a tenant's active incidents and posts each.
func (b *baseline) runTenant(ctx context.Context, tenant string) {
	tok, err := b.creds[tenant].GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		return
	}
	next := b.graph + "/v1.0/security/incidents?" + url.Values{"$filter": {"status ne 'resolved'"}, "$top": {"50"}}.Encode()
	var rows []map[string]any
	for next != "" {
		var page struct {
			Value []map[string]any `json:"value"`
			Next  string           `json:"@odata.nextLink"`
		}
		if err := b.get(ctx, next, tok.Token, &page); err != nil {
			return
		}
		for _, inc := range page.Value {
			rows = append(rows, map[string]any{"TimeGenerated": time.Now().UTC().Format(time.RFC3339Nano), "TenantId_s": tenant,
				"IncidentId": inc["id"], "Title": inc["displayName"], "Status": inc["status"], "Severity": inc["severity"],
				"AssignedTo": inc["assignedTo"], "LastUpdate": inc["lastUpdateDateTime"]})
		}
		next = page.Next
	}
	for i := 0; i < len(rows); i += 500 {
		chunk := rows[i:min(i+500, len(rows))]
		if err := b.post(ctx, chunk); err != nil {
			return
		}
		at := time.Now()
		b.mu.Lock()
		for _, r := range chunk {
			k := tenant + "/" + fmt.Sprint(r["IncidentId"])
			b.posts[k] = append(b.posts[k], at)
		}
		b.mu.Unlock()
	}
}

// get fetches one page, waiting out a 429's Retry-After (as a Logic App's retry policy does).
func (b *baseline) get(ctx context.Context, u, token string, into any) error {
	for attempt := 0; attempt < 5; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := b.http.Do(req)
		b.mu.Lock()
		b.n++
		b.mu.Unlock()
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(max(ra, 1)) * time.Second):
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("graph: %d", resp.StatusCode)
		}
		return json.Unmarshal(body, into)
	}
	return fmt.Errorf("graph: throttled")
}

func (b *baseline) post(ctx context.Context, rows []map[string]any) error {
	tok, err := b.ingCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://monitor.azure.com/.default"}})
	if err != nil {
		return err
	}
	body, _ := json.Marshal(rows)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.ingest, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("ingestion: %d", resp.StatusCode)
	}
	return nil
}

// lags returns, for each change the baseline caught, the time from the change to the first
// post of the incident after it. It collects Defender incidents only: changes to
// Sentinel-only incidents are never posted.
func (b *baseline) lags(cs []change) []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []time.Duration
	for _, c := range cs {
		for _, t := range b.posts[c.tenant+"/"+c.remoteID] {
			if !t.Before(c.at) {
				out = append(out, t.Sub(c.at))
				break
			}
		}
	}
	return out
}
