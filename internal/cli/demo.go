package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emuconfig"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/web"
)

// cmdDemo runs the emulator and a hub in one process, with sample tenants and a scenario of
// remote activity: the newcomer's first command. It needs nothing but Go.
func cmdDemo(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "demo")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the hub's web UI and API")
	tenants := fs.Int("tenants", 3, "number of sample customer tenants")
	data := fs.String("data", "", "directory for the database and generated files (default: a temporary one, removed at exit)")
	seed := fs.Int64("seed", 1, "seed of the sample data")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *tenants < 1 || *tenants > 1000 {
		fmt.Fprintf(e.stderr, "socsync demo: --tenants: want 1 to 1000, got %d\n", *tenants)
		return exitUsage
	}
	dir := *data
	if dir == "" {
		d, err := os.MkdirTemp("", "socsync-demo-")
		if err != nil {
			fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
			return exitFailure
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: --data: %v\n", err)
		return exitUsage
	}
	log := newLogger(e, config.Log{Level: "warn", Format: "text"})

	em, err := emulator.New(emulator.Options{Tenants: *tenants, Seed: *seed, CertTenants: -1})
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	defer em.Close()
	srv, err := emulator.Start(ctx, em, "127.0.0.1:0", filepath.Join(dir, "emulator"))
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: emulator: %v\n", err)
		return exitFailure
	}
	defer srv.Close()

	cfgPath := filepath.Join(dir, "socsync.yaml")
	info := em.Info(srv.URL, srv.CAFile)
	hookToken, err := newPassword()
	if err == nil {
		err = emuconfig.Write(cfgPath, emuconfig.Params{Info: info, Listen: *listen,
			Database: "sqlite:socsync.db", Idle: "10s", Hot: "2s", AlertRefresh: "30s", Extra: demoWebhookConfig(info)})
	}
	if err == nil {
		// emuconfig.Write made the secrets directory; the webhook's token goes beside the others.
		err = os.WriteFile(filepath.Join(dir, demoWebhookTokenFile), []byte(hookToken+"\n"), 0o600)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	cfg, err := config.Load(cfgPath, e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	st, err := store.Open(ctx, hub.DatabaseDSN(cfg), store.Options{})
	if err == nil {
		_, err = st.Migrate(ctx)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: database: %v\n", err)
		return exitFailure
	}
	login, err := demoLogin(ctx, st)
	var botToken string
	if err == nil {
		botToken, err = demoBot(ctx, st, info)
	}
	st.Close()
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}

	h, err := hub.New(ctx, cfg, hub.Options{Log: log, Getenv: e.getenv, Version: version})
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	defer h.Close()
	// Remote activity: new incidents, analysts' edits, merges and alert changes.
	if err := em.StartScenario(emulator.ScenarioConfig{NewIncidentsPerMin: 6, EditsPerMin: 12, MergesPerMin: 1, AlertResolutionsPerMin: 4}); err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: scenario: %v\n", err)
		return exitFailure
	}
	defer em.StopScenario()

	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- h.Run(ctx, ready) }()
	var act demoActivity
	defer act.stop()
	select {
	case addr := <-ready:
		// Hub-side activity: Splunk's webhook alert action posting alerts, and an analyst
		// (demo-bot) editing incidents in the hub, whose edits socsync writes to the remotes.
		act.start(ctx, demoHub{base: "http://" + addr, hookToken: hookToken, botToken: botToken, info: info, seed: *seed, log: log})
		fmt.Fprintf(e.stdout, `socsync demo is running with %d sample tenants (emulated Microsoft APIs at %s).

  Web UI:   http://%s/
  %s
  API:      curl -H "Authorization: Bearer %s" http://%s/api/v1/incidents

Files (configuration, database, emulator CA) are in %s.
Remote analysts are at work: new incidents, edits, merges and alert changes keep coming.
Splunk posts webhook alerts for %s to http://%s/api/v1/webhooks/%s (its token is in %s).
The analyst %s edits incidents in the hub; socsync writes the edits to Defender and Sentinel.
Press Ctrl-C to stop.
`, *tenants, srv.URL, addr, login.text, login.token, addr, dir, info.Tenants[0].Name, addr, demoWebhook, demoWebhookTokenFile, demoBotName)
	case err := <-errc:
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	err = <-errc
	act.stop()
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(e.stdout, "socsync demo stopped.")
	return exitOK
}

// demoCredentials is how the demo's user signs in.
type demoCredentials struct {
	text  string // what to print about signing in to the UI
	token string // an admin API token
}

// demoLogin creates the demo's admin user for the web UI (admin, or admin-N when an earlier
// run kept in --data has one) with a generated password, and an admin API token.
func demoLogin(ctx context.Context, st *store.Store) (demoCredentials, error) {
	tok, err := newToken()
	if err != nil {
		return demoCredentials{}, err
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	if err := st.CreateToken(ctx, &store.Token{Name: "demo-" + suffix, Role: httpapi.RoleAdmin}, tok); err != nil {
		return demoCredentials{}, err
	}
	password, err := newPassword()
	if err != nil {
		return demoCredentials{}, err
	}
	hash, err := web.HashPassword(password)
	if err != nil {
		return demoCredentials{}, err
	}
	u := &store.User{Name: "admin", PasswordHash: hash, Role: httpapi.RoleAdmin}
	if err := st.CreateUser(ctx, u); errors.Is(err, store.ErrConflict) {
		u.Name = "admin-" + suffix[len(suffix)-6:]
		err = st.CreateUser(ctx, u)
		if err != nil {
			return demoCredentials{}, err
		}
	} else if err != nil {
		return demoCredentials{}, err
	}
	return demoCredentials{text: fmt.Sprintf("Sign in:  user %s, password %s", u.Name, password), token: tok}, nil
}

// The demo's Splunk webhook: Splunk's webhook alert action of the first tenant's SOC posts to
// /api/v1/webhooks/splunk with the token in the URL, as Splunk can (it cannot set headers).
const (
	demoWebhook          = "splunk"
	demoWebhookTokenFile = "secrets/splunk-webhook.token" // relative to the configuration
)

// demoWebhookConfig is the webhooks section of the demo's configuration: the token by file
// reference, never inline.
func demoWebhookConfig(info emulator.Info) string {
	return fmt.Sprintf(`webhooks:
  - name: %s
    kind: splunk
    tenant: %s
    token: file:%s
`, demoWebhook, info.Tenants[0].TenantID, demoWebhookTokenFile)
}

// demoBotName is the scripted analyst who edits incidents in the hub, through the API with an
// analyst token of that name: the audit names it (token:demo-bot).
const demoBotName = "demo-bot"

// demoBot creates the scripted analyst's API token: an analyst of every tenant, named demo-bot
// (demo-bot-N when an earlier run kept in --data has one).
func demoBot(ctx context.Context, st *store.Store, info emulator.Info) (string, error) {
	tok, err := newToken()
	if err != nil {
		return "", err
	}
	var ids []string
	for _, t := range info.Tenants {
		ids = append(ids, strings.ToLower(t.TenantID))
	}
	t := &store.Token{Name: demoBotName, Role: httpapi.RoleAnalyst, Tenants: ids}
	err = st.CreateToken(ctx, t, tok)
	if errors.Is(err, store.ErrConflict) {
		t.Name = fmt.Sprintf("%s-%d", demoBotName, time.Now().UnixNano()%1000000)
		err = st.CreateToken(ctx, t, tok)
	}
	return tok, err
}

// demoHub is what the hub-side activity needs to know about the running demo.
type demoHub struct {
	base      string // the hub's URL, http://host:port
	hookToken string
	botToken  string // demo-bot's API token
	info      emulator.Info
	seed      int64
	log       *slog.Logger
}

// demoPace is how often the hub-side activity acts: each about every interval (between half
// and one and a half of it, at random), the first soon after the start.
var demoPace = struct {
	First       time.Duration // before the first of each
	SplunkEvery time.Duration // a Splunk webhook alert
	EditEvery   time.Duration // an edit by demo-bot in the hub
}{First: 3 * time.Second, SplunkEvery: 30 * time.Second, EditEvery: 20 * time.Second}

// demoActivity runs the hub side of the demo's scenario until stopped.
type demoActivity struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (a *demoActivity) start(ctx context.Context, h demoHub) {
	ctx, a.cancel = context.WithCancel(ctx)
	client := &http.Client{Timeout: 10 * time.Second}
	a.loop(ctx, demoPace.First, demoPace.SplunkEvery, uint64(h.seed)*2+1, func(r *rand.Rand, n int) {
		h.postSplunkAlert(ctx, client, r, n)
	})
	a.loop(ctx, 2*demoPace.First, demoPace.EditEvery, uint64(h.seed)*2+2, func(r *rand.Rand, n int) {
		h.botEdit(ctx, client, r)
	})
}

// stop ends the activity and waits for it (a no-op when it never started).
func (a *demoActivity) stop() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
}

// loop calls act after first and then about every interval until ctx ends.
func (a *demoActivity) loop(ctx context.Context, first, every time.Duration, seed uint64, act func(r *rand.Rand, n int)) {
	r := rand.New(rand.NewPCG(seed, 0x50c5))
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		wait := first
		for n := 1; ; n++ {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			act(r, n)
			wait = every/2 + time.Duration(r.Int64N(int64(every)))
		}
	}()
}

// splunkSearch is a saved search whose alert action posts to the demo's webhook.
type splunkSearch struct {
	name, app, owner string
	result           func(r *rand.Rand) map[string]any
}

func demoIP(r *rand.Rand, prefix string) string {
	return fmt.Sprintf("%s.%d.%d", prefix, r.IntN(255), 1+r.IntN(254))
}

var splunkSearches = []splunkSearch{
	{"Access - Excessive Failed Logins - Rule", "SplunkEnterpriseSecuritySuite", "nobody", func(r *rand.Rand) map[string]any {
		return map[string]any{"src": demoIP(r, "10.20"), "user": []string{"svc-backup", "j.doe", "administrator"}[r.IntN(3)],
			"app": "win:remote", "failure": fmt.Sprint(20 + r.IntN(200)), "urgency": "high"}
	}},
	{"Threat - Outbound Traffic to Known Malicious IP - Rule", "SplunkEnterpriseSecuritySuite", "nobody", func(r *rand.Rand) map[string]any {
		return map[string]any{"src": demoIP(r, "10.40"), "dest": demoIP(r, "185.220"), "dest_port": "443",
			"bytes_out": fmt.Sprint(10000 + r.IntN(5000000)), "threat_collection": "ip_intel", "urgency": "critical"}
	}},
	{"Endpoint - Suspicious PowerShell Encoded Command", "search", "admin", func(r *rand.Rand) map[string]any {
		return map[string]any{"host": fmt.Sprintf("WS-%04d", r.IntN(10000)), "user": "CORP\\j.doe", "process": "powershell.exe",
			"process_exec": "powershell.exe -NoP -W Hidden -enc SQBFAFgA…", "severity": "4", "count": fmt.Sprint(1 + r.IntN(5))}
	}},
	{"Web - Abnormally High Number of HTTP 404 Errors", "SplunkEnterpriseSecuritySuite", "nobody", func(r *rand.Rand) map[string]any {
		return map[string]any{"src": demoIP(r, "203.0"), "dest": "www.example.com", "count": fmt.Sprint(500 + r.IntN(5000)), "urgency": "low"}
	}},
	{"Network - Unusual Volume of DNS TXT Queries", "search", "soc-splunk", func(r *rand.Rand) map[string]any {
		return map[string]any{"src": demoIP(r, "10.60"), "query_count": fmt.Sprint(300 + r.IntN(3000)), "urgency": "medium"}
	}},
}

// splunkDelivery is the body of the nth delivery of Splunk's webhook alert action: the first
// result row's fields in result, the search job id (sid), a link to the results, the saved
// search's name, owner and app.
func splunkDelivery(r *rand.Rand, n int, now time.Time) map[string]any {
	s := splunkSearches[r.IntN(len(splunkSearches))]
	at := now.Add(-time.Duration(30+r.IntN(240)) * time.Second)
	sid := fmt.Sprintf("scheduler__%s__%s__RMD5%016x_at_%d_%d", s.owner, s.app, r.Uint64(), now.Unix(), 1000+n)
	result := s.result(r)
	result["_time"] = fmt.Sprintf("%d.000", at.Unix())
	return map[string]any{
		"result":       result,
		"sid":          sid,
		"results_link": "https://splunk.example.net:8000/app/" + s.app + "/@go?sid=" + sid,
		"search_name":  s.name,
		"owner":        s.owner,
		"app":          s.app,
	}
}

// postSplunkAlert delivers one Splunk webhook alert to the hub.
func (h demoHub) postSplunkAlert(ctx context.Context, client *http.Client, r *rand.Rand, n int) {
	body, _ := json.Marshal(splunkDelivery(r, n, time.Now()))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		h.base+"/api/v1/webhooks/"+demoWebhook+"?token="+url.QueryEscape(h.hookToken), bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("demo: the Splunk webhook alert was not delivered", "err", err)
		}
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		h.log.Warn("demo: the hub refused the Splunk webhook alert", "status", resp.StatusCode)
	}
}

// demoIncident is what demo-bot reads of an incident in the queue.
type demoIncident struct {
	ID         string   `json:"id"`
	TenantID   string   `json:"tenant_id"`
	Status     string   `json:"status"`
	Severity   string   `json:"severity"`
	Owner      string   `json:"owner"`
	Tags       []string `json:"tags"`
	Sources    []string `json:"sources"`
	MergedInto string   `json:"merged_into"`
}

// call makes one API request as demo-bot and decodes a 2xx answer into out (if not nil).
func (h demoHub) call(ctx context.Context, client *http.Client, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+h.botToken)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// botEdit is one edit by demo-bot of an open Defender or Sentinel incident in the hub, through
// the hub's API (as an analyst in the web UI would make it): raise or lower the severity, take
// it for one of the tenant's analysts, tag it, or comment. socsync then writes it to the remote.
func (h demoHub) botEdit(ctx context.Context, client *http.Client, r *rand.Rand) {
	var list struct {
		Items []demoIncident `json:"items"`
	}
	if err := h.call(ctx, client, http.MethodGet, "/api/v1/incidents?limit=200", nil, &list); err != nil {
		if ctx.Err() == nil {
			h.log.Warn("demo: demo-bot could not read the queue", "err", err)
		}
		return
	}
	var open []demoIncident
	for _, in := range list.Items {
		remote := slices.Contains(in.Sources, "defender") || slices.Contains(in.Sources, "sentinel")
		if remote && in.MergedInto == "" && (in.Status == "new" || in.Status == "active" || in.Status == "in_progress") {
			open = append(open, in)
		}
	}
	if len(open) == 0 {
		return // nothing collected yet
	}
	in := open[r.IntN(len(open))]
	var users []string
	for _, t := range h.info.Tenants {
		if strings.EqualFold(t.TenantID, in.TenantID) {
			for _, u := range t.Users {
				if u.UPN != "" && !strings.EqualFold(u.UPN, in.Owner) {
					users = append(users, u.UPN)
				}
			}
		}
	}
	path := "/api/v1/incidents/" + url.PathEscape(in.ID)
	var err error
	switch k := r.IntN(4); {
	case k == 0 && len(users) > 0:
		err = h.call(ctx, client, http.MethodPatch, path, map[string]any{"owner": users[r.IntN(len(users))], "status": "in_progress"}, nil)
	case k == 1:
		tag := []string{"Hub-triaged", "Customer-contacted", "Needs-forensics"}[r.IntN(3)]
		if !slices.Contains(in.Tags, tag) {
			err = h.call(ctx, client, http.MethodPatch, path, map[string]any{"tags": append(slices.Clone(in.Tags), tag)}, nil)
			break
		}
		fallthrough
	case k == 2:
		note := []string{"correlated with the customer's change calendar", "asked the customer to confirm the sign-ins",
			"isolation of the device requested", "no lateral movement seen in the last 24 h"}[r.IntN(4)]
		err = h.call(ctx, client, http.MethodPost, path+"/comments", map[string]any{"text": "Triage from the MSSP queue: " + note + "."}, nil)
	default:
		sevs := slices.DeleteFunc([]string{"high", "medium", "low"}, func(s string) bool { return s == in.Severity })
		err = h.call(ctx, client, http.MethodPatch, path, map[string]any{"severity": sevs[r.IntN(len(sevs))]}, nil)
	}
	if err != nil && ctx.Err() == nil {
		// An incident that changed or merged meanwhile is refused; the next edit picks another.
		h.log.Info("demo: demo-bot's edit was not taken", "incident", in.ID, "err", err)
	}
}
