package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/config"
)

var (
	demoTokenRE    = regexp.MustCompile(`Bearer (ssk_[a-z0-9]+)" http://([0-9.:]+)/`)
	demoSignInRE   = regexp.MustCompile(`Sign in:  user (\S+), password (\S+)`)
	demoEmulatorRE = regexp.MustCompile(`emulated Microsoft APIs at (https://[0-9.:]+)\)`)
	queueTenantRE  = regexp.MustCompile(`<td class="tenant">([^<]*)</td>`)
	loginHiddenRE  = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// demoClient reads the running demo: the hub's API with the printed token, and the emulator's
// admin API.
type demoClient struct {
	hub      string // http://host:port
	token    string
	emulator string // https://host:port
	emu      *http.Client
}

// getJSON fetches url with client (and the token, for the hub) and decodes the answer; it
// reports whether that worked, leaving errors to the caller's bounded wait.
func (d demoClient) getJSON(client *http.Client, u string, out any) bool {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if strings.HasPrefix(u, d.hub) {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	return json.NewDecoder(resp.Body).Decode(out) == nil
}

type demoHistoryEntry struct {
	Seq        int    `json:"seq"`
	Tenant     string `json:"tenant"`
	GraphID    string `json:"graph_id"`
	SentinelID string `json:"sentinel_id"`
	Source     string `json:"source"`
	Field      string `json:"field"`
	New        string `json:"new"`
}

// history is the emulator's change history after seq.
func (d demoClient) history(since int) []demoHistoryEntry {
	var h struct {
		History []demoHistoryEntry `json:"history"`
	}
	d.getJSON(d.emu, fmt.Sprintf("%s/_emulator/history?since=%d", d.emulator, since), &h)
	return h.History
}

type demoDetail struct {
	ID       string   `json:"id"`
	TenantID string   `json:"tenant_id"`
	Title    string   `json:"title"`
	Severity string   `json:"severity"`
	Owner    string   `json:"owner"`
	Sources  []string `json:"sources"`
	Links    []struct {
		Kind       string `json:"kind"`
		ExternalID string `json:"external_id"`
		URL        string `json:"url"`
	} `json:"links"`
	Comments []demoComment `json:"comments"`
	History  []struct {
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Field  string `json:"field"`
		After  string `json:"after"`
	} `json:"history"`
}

type demoComment struct {
	Origin string `json:"origin"`
	Author string `json:"author"`
	Text   string `json:"text"`
}

// anyEdit reports whether match holds for one of the emulator's changes after since of
// severity, owner, tags or a comment that pick chooses, given the hub's incident linked to the
// changed remote incident (each read once).
func (d demoClient) anyEdit(since int, pick func(demoHistoryEntry) bool, match func(demoHistoryEntry, demoDetail) bool) bool {
	byIncident := map[string][]demoHistoryEntry{}
	for _, e := range d.history(since) {
		if pick(e) && slices.Contains([]string{"severity", "owner", "tags", "comment"}, e.Field) {
			k := e.Tenant + "/" + e.GraphID + "/" + e.SentinelID
			byIncident[k] = append(byIncident[k], e)
		}
	}
	for _, es := range byIncident {
		det, ok := d.hubIncident(es[0])
		if !ok {
			continue // not collected yet
		}
		for _, e := range es {
			if match(e, det) {
				return true
			}
		}
	}
	return false
}

// hubIncident returns the hub's incident linked to a remote incident of the emulator's history
// (its Graph id, else its Sentinel name), with its detail.
func (d demoClient) hubIncident(e demoHistoryEntry) (demoDetail, bool) {
	id := e.GraphID
	if id == "" {
		id = e.SentinelID
	}
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	q := url.Values{"tenant": {e.Tenant}, "remote_id": {id}}
	if !d.getJSON(http.DefaultClient, d.hub+"/api/v1/incidents?"+q.Encode(), &list) || len(list.Items) != 1 {
		return demoDetail{}, false
	}
	var det demoDetail
	ok := d.getJSON(http.DefaultClient, d.hub+"/api/v1/incidents/"+list.Items[0].ID, &det)
	return det, ok
}

// waitFor calls cond until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", bound, what)
		}
	}
}

// The demo, run as the README says, shows every tenant's incidents in the API and in the web UI
// to the printed user; its scenario's edits flow both ways (a remote analyst's to the hub,
// demo-bot's from the hub to Defender or Sentinel), Splunk's webhook alerts become incidents,
// and Ctrl-C stops it, keeping the --data directory.
func TestDemo_ShowsIncidentsOfEveryTenantAndStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := t.TempDir()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--data", data}, func(string) string { return "" }, &stdout, &stderr)
	}()
	var m []string
	for deadline := time.Now().Add(60 * time.Second); m == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not start: %s %s", stdout.String(), stderr.String())
		}
		m = demoTokenRE.FindStringSubmatch(stdout.String())
	}
	if !strings.Contains(stdout.String(), "Sign in:  user admin, password ") {
		t.Errorf("the demo does not print how to sign in: %s", stdout.String())
	}
	tenantsSeen := func() int {
		req, _ := http.NewRequest("GET", "http://"+m[2]+"/api/v1/incidents?limit=500", nil)
		req.Header.Set("Authorization", "Bearer "+m[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var list struct {
			Items []struct {
				TenantID string `json:"tenant_id"`
			} `json:"items"`
		}
		json.NewDecoder(resp.Body).Decode(&list)
		seen := map[string]bool{}
		for _, it := range list.Items {
			seen[it.TenantID] = true
		}
		return len(seen)
	}
	for deadline := time.Now().Add(60 * time.Second); tenantsSeen() < 3; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the demo's queue does not show 3 tenants; stderr: %s", stderr.String())
		}
	}

	// The generated configuration has the Splunk webhook, its token by reference only.
	cfgPath := filepath.Join(data, "socsync.yaml")
	cfg, err := config.Load(cfgPath, func(string) string { return "" })
	if err != nil {
		t.Fatalf("the demo's configuration: %v", err)
	}
	if len(cfg.Webhooks) != 1 || cfg.Webhooks[0].Kind != "splunk" || !strings.HasPrefix(string(cfg.Webhooks[0].Token), "file:") {
		t.Fatalf("the demo's configuration should have one Splunk webhook with a file: token, has %+v", cfg.Webhooks)
	}
	hookToken, err := cfg.Resolve(cfg.Webhooks[0].Token, nil)
	if text, _ := os.ReadFile(cfgPath); err != nil || hookToken == "" || strings.Contains(string(text), hookToken) {
		t.Errorf("the webhook's token should resolve from its file and not be inline (resolve: %v)", err)
	}

	pem, err := os.ReadFile(cfg.Path(cfg.Cloud.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	em := demoEmulatorRE.FindStringSubmatch(stdout.String())
	if em == nil {
		t.Fatalf("the demo does not print the emulator's address: %s", stdout.String())
	}
	d := demoClient{hub: "http://" + m[2], token: m[1], emulator: em[1],
		emu: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	var tenants struct {
		Tenants []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"tenants"`
	}
	if !d.getJSON(http.DefaultClient, d.hub+"/api/v1/tenants", &tenants) || len(tenants.Tenants) != 3 {
		t.Fatalf("tenants: %+v", tenants)
	}
	start := d.history(0)
	since := 0
	if len(start) > 0 {
		since = start[len(start)-1].Seq
	}

	// The checks of the running demo wait side by side, each bounded.
	t.Run("activity", func(t *testing.T) {
		t.Run("the queue page shows the printed user incidents of every tenant", func(t *testing.T) {
			t.Parallel()
			login := demoSignInRE.FindStringSubmatch(stdout.String())
			if login == nil {
				t.Fatalf("no sign-in line: %s", stdout.String())
			}
			jar, _ := cookiejar.New(nil)
			b := &http.Client{Jar: jar, Timeout: 10 * time.Second}
			resp, err := b.Get(d.hub + "/login")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			form := url.Values{"name": {login[1]}, "password": {login[2]}}
			for _, h := range loginHiddenRE.FindAllStringSubmatch(string(page), -1) {
				form.Set(h[1], html.UnescapeString(h[2]))
			}
			resp, err = b.PostForm(d.hub+"/login", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/incidents" {
				t.Fatalf("signing in with the printed credentials: %d at %s", resp.StatusCode, resp.Request.URL)
			}
			var shown []string
			waitFor(t, 30*time.Second, "the queue page shows incidents of all 3 tenants", func() bool {
				resp, err := b.Get(d.hub + "/incidents")
				if err != nil {
					return false
				}
				page, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				shown = shown[:0]
				for _, c := range queueTenantRE.FindAllStringSubmatch(string(page), -1) {
					shown = append(shown, html.UnescapeString(c[1]))
				}
				for _, tn := range tenants.Tenants {
					if !slices.Contains(shown, tn.Name) {
						return false
					}
				}
				return true
			})
		})

		t.Run("a remote analyst's edit reaches the hub", func(t *testing.T) {
			t.Parallel()
			waitFor(t, 90*time.Second, "an edit by the emulator's scenario shows in the hub", func() bool {
				return d.anyEdit(since, func(e demoHistoryEntry) bool { return e.Source == "scenario" }, func(e demoHistoryEntry, det demoDetail) bool {
					switch e.Field {
					case "severity":
						return strings.EqualFold(det.Severity, e.New)
					case "owner":
						return strings.EqualFold(det.Owner, e.New)
					case "comment":
						return slices.ContainsFunc(det.Comments, func(c demoComment) bool { return c.Origin != "hub" && c.Text == e.New })
					}
					return false
				})
			})
		})

		t.Run("demo-bot's hub edit reaches Defender or Sentinel", func(t *testing.T) {
			t.Parallel()
			bot := "token:" + demoBotName
			// Only socsync writes through Graph and the Sentinel API: such a change that carries
			// what demo-bot set in the hub is demo-bot's edit, written back.
			written := func(e demoHistoryEntry) bool { return e.Source == "graph" || e.Source == "sentinel" }
			waitFor(t, 90*time.Second, "an edit by demo-bot in the hub is written to the emulator", func() bool {
				return d.anyEdit(0, written, func(e demoHistoryEntry, det demoDetail) bool {
					if e.Field == "comment" {
						return slices.ContainsFunc(det.Comments, func(c demoComment) bool { return c.Author == bot && strings.Contains(e.New, c.Text) })
					}
					for _, h := range det.History {
						if h.Actor != bot || h.Action != "edit" || h.Field != e.Field {
							continue
						}
						switch h.Field {
						case "severity", "owner":
							if strings.EqualFold(h.After, e.New) {
								return true
							}
						case "tags":
							if h.After != "" && !slices.ContainsFunc(strings.Split(h.After, ", "), func(tag string) bool { return !strings.Contains(e.New, `"`+tag+`"`) }) {
								return true
							}
						}
					}
					return false
				})
			})
		})

		t.Run("a Splunk webhook alert becomes an incident of the webhook's tenant", func(t *testing.T) {
			t.Parallel()
			var det demoDetail
			waitFor(t, 60*time.Second, "a webhook incident in the queue", func() bool {
				var list struct {
					Items []struct {
						ID string `json:"id"`
					} `json:"items"`
				}
				if !d.getJSON(http.DefaultClient, d.hub+"/api/v1/incidents?source=webhook", &list) || len(list.Items) == 0 {
					return false
				}
				return d.getJSON(http.DefaultClient, d.hub+"/api/v1/incidents/"+list.Items[0].ID, &det)
			})
			if !strings.EqualFold(det.TenantID, cfg.Webhooks[0].Tenant) || !slices.Equal(det.Sources, []string{"webhook"}) {
				t.Errorf("webhook incident of tenant %s with sources %v, want %s and [webhook]", det.TenantID, det.Sources, cfg.Webhooks[0].Tenant)
			}
			if !slices.ContainsFunc(splunkSearches, func(s splunkSearch) bool { return s.name == det.Title }) {
				t.Errorf("webhook incident titled %q, want a Splunk search's name", det.Title)
			}
			if len(det.Links) != 1 || det.Links[0].Kind != "webhook" || !strings.HasPrefix(det.Links[0].ExternalID, "scheduler__") ||
				!strings.Contains(det.Links[0].URL, "sid="+det.Links[0].ExternalID) {
				t.Errorf("webhook incident's links %+v, want one webhook link with the sid and results link", det.Links)
			}
		})
	})

	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(stdout.String(), "stopped") {
			t.Errorf("demo exited %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop")
	}
	if _, err := os.Stat(cfgPath); err != nil {
		t.Errorf("the --data directory was not kept: %v", err)
	}
}
