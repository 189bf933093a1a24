package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// TestR6_TokenExpiryAndAThrottledTokenEndpoint_RefreshBackOffNoTokenInLogs (R6): half of one
// tenant's token requests get 429 (Retry-After 1–2 s) from the start, then every token
// expires at once (the emulator's clock jumps two hours ahead, past the 60–90 minute
// lifetimes, while the SDK's cache still holds them by the wall clock). socsync backs off
// without calling the token endpoint before its Retry-After, gets new tokens, collects and
// writes everything, and no log line — debug level included — holds a token or a secret.
// Revoked consent is R6's third case: TestHub_RevokedConsentDegradesOneTenantOnly.
func TestR6_TokenExpiryAndAThrottledTokenEndpoint_RefreshBackOffNoTokenInLogs(t *testing.T) {
	t.Parallel()
	env := hubtest.New(t, hubtest.Options{Tenants: 3, Emulator: emulator.Options{MaxRequestHistory: 1_000_000}})
	throttled := env.Info.Tenants[1].TenantID
	if err := env.Emulator.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{{API: "token", Tenant: throttled, Rate429: 0.5, RetryAfter: []int{1, 2}}}}); err != nil {
		t.Fatal(err)
	}
	for _, ti := range env.Info.Tenants {
		if _, err := env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: "r6-before-" + ti.Name, Where: where(ti)}); err != nil {
			t.Fatal(err)
		}
	}
	f := startHub(t, env, hub.Options{})
	f.collected(3)
	f.settle()
	token429 := count(f.requests(), func(r emulator.RequestRecord) bool { return r.API == "token" && r.Status == 429 })
	if token429 == 0 {
		t.Error("the token endpoint never answered 429; the test did not test it")
	}
	f.faults()

	// Every token expires: the remote's clock moves two hours on.
	env.Emulator.Advance(2 * time.Hour)
	mark := len(f.requests())
	var ids []string
	for _, ti := range env.Info.Tenants {
		c := f.create(ti.TenantID, emulator.NewIncident{Title: "r6-after-" + ti.Name, Where: where(ti)})
		ids = append(ids, f.hubID(ti.TenantID, c.GraphID))
	}
	for i, id := range ids {
		f.edit(id, fmt.Sprintf(`{"severity":"high","owner":%q}`, env.Info.Tenants[i].Users[0].UPN))
		f.comment(id, "after the tokens expired")
	}
	f.collected(6)
	f.settle()
	recs := f.requests()
	expired := count(recs[mark:], func(r emulator.RequestRecord) bool { return r.Status == 401 })
	tokens := count(recs[mark:], func(r emulator.RequestRecord) bool { return r.API == "token" && r.Status == 200 })
	if tokens == 0 {
		t.Error("no new token was issued after the old ones expired")
	}
	f.checkAll(check.Options{})
	srcs, _ := f.store().Sources(context.Background(), store.AllTenants())
	for _, s := range srcs {
		if s.Degraded != "" {
			t.Errorf("source %s degraded: %s", s.ID, s.Degraded)
		}
	}
	var secrets []string
	for _, ti := range env.Info.Tenants {
		secrets = append(secrets, ti.ClientSecret)
	}
	secrets = append(secrets, env.Info.MultiTenantApp.ClientSecret, env.Info.LogsIngestion.ClientSecret)
	noTokensIn(t, "the hub's debug log", f.logs.String(), secrets...)
	t.Logf("R6 figures: %d token 429s absorbed; after expiry %d calls answered 401 before %d new tokens; %d requests; %d log bytes checked for tokens and %d secrets",
		token429, expired, tokens, len(recs), len(f.logs.String()), len(secrets))
}
