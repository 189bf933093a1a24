package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/web"
)

// chromiumPath returns the Chromium the browser tests drive: $SOCSYNC_CHROMIUM, or Debian's
// /usr/bin/chromium. Without it the test fails (CI installs it: .ci/run), unless
// SOCSYNC_SKIP_BROWSER=1 asks to skip it on a machine without Chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("SOCSYNC_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("SOCSYNC_SKIP_BROWSER") == "1" {
			t.Skipf("browser test skipped: no Chromium at %s and SOCSYNC_SKIP_BROWSER=1", path)
		}
		t.Fatalf("no Chromium at %s (%v): install it (apt-get install -y chromium; .ci/run does), set SOCSYNC_CHROMIUM, "+
			"or set SOCSYNC_SKIP_BROWSER=1 to skip the browser tests on this machine", path, err)
	}
	return path
}

// newChrome starts a headless Chromium for the test, closed when the test ends.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// artifact writes a test artifact (a screenshot) to $SOCSYNC_ARTIFACTS, or to the test's
// temporary directory when it is not set.
func artifact(t *testing.T, name string, data []byte) {
	t.Helper()
	dir := os.Getenv("SOCSYNC_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact: %s", path)
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// navigate runs an action that loads a new page (a click on a link or a submit button) and
// waits until the page has loaded.
func navigate(t *testing.T, ctx context.Context, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.Status != 200 {
		t.Fatalf("%s: the page loaded with status %d", what, resp.Status)
	}
}

// choose selects an option of a select element as a user does: the value changes and the
// element fires input and change, which htmx listens for. It acts on the live element of the
// page, never on a node that chromedp's copy of the DOM may still hold while htmx swaps a part
// of the page (that copy lags the page, and a value set on a removed node is lost).
func choose(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const el = document.getElementById(%q);
		el.value = %q;
		if (el.value !== %q) throw new Error("no option %s in #%s");
		el.dispatchEvent(new Event("input", {bubbles: true}));
		el.dispatchEvent(new Event("change", {bubbles: true}));
	})()`, id, value, value, value, id))
}

// text returns the text of the live element matching a CSS selector ("" if there is none).
func text(selector string) chromedp.Action[string] {
	return chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, selector))
}

// values returns a value of each live element matching a CSS selector, by a JavaScript
// expression on "e".
func values(selector, expr string) chromedp.Action[[]string] {
	return chromedp.Evaluate[[]string](fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => %s)`, selector, expr))
}

// TestBrowser_AnalystTriagesAcrossTenantsAndTheCloseReachesDefender drives a real headless
// Chromium against a hub and the emulator: sign in, the queue of two tenants (not the third),
// filter to one tenant, open an incident, close it as a true positive with a comment; the
// emulator receives the PATCH and the comment, and the page shows every link in sync.
func TestBrowser_AnalystTriagesAcrossTenantsAndTheCloseReachesDefender(t *testing.T) {
	ctx := newChrome(t)
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	// Two tenants with Sentinel workspaces are the analyst's; another one is not.
	var withSentinel, others []emulator.TenantInfo
	for _, ti := range env.Info.Tenants {
		if len(ti.Sentinel) > 0 && ti.Defender {
			withSentinel = append(withSentinel, ti)
		} else {
			others = append(others, ti)
		}
	}
	if len(withSentinel) < 2 {
		t.Fatalf("the emulator's sample has %d tenants with Sentinel, want 2", len(withSentinel))
	}
	ordered := append(withSentinel, others...)
	t0, t1, t2 := ordered[0], ordered[1], ordered[2]
	mdeAlert := emulator.NewAlert{Title: "Ransomware behavior detected", Severity: "high", ServiceSource: "microsoftDefenderForEndpoint",
		DetectionSource: "antivirus", Category: "Ransomware"}
	created := map[string]emulator.Created{}
	for _, in := range []struct {
		tenant string
		inc    emulator.NewIncident
	}{
		{t0.TenantID, emulator.NewIncident{Title: "Ransomware on FIN-WS-042", Severity: "high", Where: "defender+sentinel",
			Description: "Files encrypted on a finance workstation.", Alerts: []emulator.NewAlert{mdeAlert,
				{Title: "Suspicious PowerShell command line", Severity: "medium", ServiceSource: "microsoftDefenderForEndpoint"}}}},
		{t0.TenantID, emulator.NewIncident{Title: "Phishing mail reported by a user", Severity: "low", Where: "defender"}},
		{t1.TenantID, emulator.NewIncident{Title: "Impossible travel for a sales account", Severity: "medium", Where: "defender+sentinel",
			Alerts: []emulator.NewAlert{{Title: "Impossible travel activity", Severity: "medium", ServiceSource: "microsoftDefenderForCloudApps"}}}},
		{t1.TenantID, emulator.NewIncident{Title: "Brute force against the VPN gateway", Severity: "high", Where: "sentinel"}},
		{t2.TenantID, emulator.NewIncident{Title: "Hidden tenant incident", Severity: "high", Where: "defender"}},
	} {
		c, err := env.Emulator.CreateIncident(in.tenant, in.inc)
		if err != nil {
			t.Fatal(err)
		}
		created[in.inc.Title] = c
	}
	r := env.Start(t, hub.Options{})
	st := r.Hub.Store()
	hubtest.Eventually(t, "the hub has collected every incident", func() bool {
		items, _ := st.ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 100)
		return len(items) >= 5
	})
	hash, err := web.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(context.Background(), &store.User{Name: "ana@mssp.example", PasswordHash: hash,
		Role: httpapi.RoleAnalyst, Tenants: []string{t0.TenantID, t1.TenantID}}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + r.Addr

	// Sign in: the queue sends an unauthenticated browser to the sign-in page first.
	do(t, ctx, "open the queue", chromedp.Navigate(base+"/incidents"), chromedp.WaitVisible(chromedp.ID("login")))
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/login?next=%2Fincidents") {
		t.Errorf("unauthenticated queue went to %s, want the sign-in page", loc)
	}
	do(t, ctx, "fill in the sign-in form",
		chromedp.SendKeys(chromedp.ID("name"), "ana@mssp.example"),
		chromedp.SendKeys(chromedp.ID("password"), password))
	navigate(t, ctx, "sign in", chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
	do(t, ctx, "wait for the queue", chromedp.WaitVisible(chromedp.ID("filters")))

	// The queue shows both of the analyst's tenants, and nothing of the third.
	queue := run(t, ctx, "read the queue", text("table.queue tbody"))
	for _, want := range []string{t0.Name, t1.Name, "Ransomware on FIN-WS-042", "Brute force against the VPN gateway"} {
		if !strings.Contains(queue, want) {
			t.Errorf("the queue lacks %q:\n%s", want, queue)
		}
	}
	if strings.Contains(queue, "Hidden tenant incident") || strings.Contains(queue, t2.Name) {
		t.Errorf("the queue shows another tenant's incident:\n%s", queue)
	}
	artifact(t, "queue.png", run(t, ctx, "screenshot the queue", chromedp.FullScreenshot(100)))

	// Filter to one tenant: htmx swaps the queue in place and records the filter in the URL.
	do(t, ctx, "filter to one tenant", choose("f-tenant", strings.ToLower(t0.TenantID)))
	hubtest.Eventually(t, "the queue shows only "+t0.Name, func() bool {
		q := run(t, ctx, "read the queue", text("table.queue tbody"))
		return strings.Contains(q, "Ransomware on FIN-WS-042") && strings.Contains(q, "Phishing mail") && !strings.Contains(q, t1.Name)
	})
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "tenant="+strings.ToLower(t0.TenantID)) {
		t.Errorf("the filtered queue's URL is %s, want the tenant in it", loc)
	}

	// Open the incident.
	found, err := st.ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{Text: "Ransomware on FIN-WS-042"}, store.ListPage{}, 2)
	if err != nil || len(found) != 1 {
		t.Fatalf("the hub incident: %v, %v", found, err)
	}
	incidentID := found[0].ID
	navigate(t, ctx, "open the incident", chromedp.Click(chromedp.CSS(`td.title a[href="/incidents/`+incidentID+`"]`)))
	do(t, ctx, "wait for the triage form", chromedp.WaitVisible(chromedp.ID("triage")))
	page := run(t, ctx, "read the incident", text("#main"))
	for _, want := range []string{"Ransomware behavior detected", "Defender XDR", "Sentinel", "Files encrypted on a finance workstation."} {
		if !strings.Contains(page, want) {
			t.Errorf("the incident page lacks %q", want)
		}
	}

	// Close it as a true positive, with a comment. The classification narrows the
	// determinations to those of a true positive.
	do(t, ctx, "fill in the triage form", choose("status", "resolved"), choose("classification", "true_positive"))
	hubtest.Eventually(t, "the determinations fit a true positive", func() bool {
		opts := run(t, ctx, "read the determinations", values("#determination option", "e.value"))
		return slices.Contains(opts, "malware") && !slices.Contains(opts, "not_malicious")
	})
	const comment = "Confirmed ransomware; FIN-WS-042 isolated and reimaged by the SOC."
	do(t, ctx, "choose the determination and write the comment",
		choose("determination", "malware"),
		chromedp.SendKeys(chromedp.ID("triage-comment"), comment))
	navigate(t, ctx, "save", chromedp.Click(chromedp.ID("save")))
	do(t, ctx, "wait for the saved page", chromedp.WaitVisible(chromedp.ID("flash")))

	// The emulator receives the PATCH and the comment: Defender has the close and the comment.
	graphID := created["Ransomware on FIN-WS-042"].GraphID
	waitFor(t, "Defender has the close and the comment", func() bool {
		g := env.Views(t, t0.TenantID, graphID)["graph"]
		return g["status"] == "resolved" && g["classification"] == "truePositive" && g["determination"] == "malware" &&
			strings.Contains(fmt.Sprint(g["comments"]), comment)
	}, func() string {
		return fmt.Sprintf("graph view: %v\nhub: %s", env.Views(t, t0.TenantID, graphID)["graph"], hubState(st, t0.TenantID, incidentID))
	})
	writes := env.Writes()
	patches, comments := 0, 0
	for k, n := range writes {
		if strings.HasPrefix(k, "graph PATCH") {
			patches += n
		}
		if strings.HasPrefix(k, "graph POST") && strings.Contains(k, "comments") {
			comments += n
		}
	}
	if patches < 1 || comments != 1 {
		t.Errorf("emulator writes %v: want a Graph PATCH and one comment POST", writes)
	}

	// The page shows every link in sync (the sync panel refreshes itself while it settles).
	hubtest.Eventually(t, "the page shows every link in sync", func() bool {
		states := run(t, ctx, "read the links", values("#sync tr.link", "e.dataset.state"))
		return run(t, ctx, "read the sync state", text("#sync h2 .sync")) == "in sync" &&
			slices.Equal(states, []string{"in_sync", "in_sync"})
	})
	page = run(t, ctx, "read the incident", text("#main"))
	for _, want := range []string{comment, "ana@mssp.example", "resolved"} {
		if !strings.Contains(page, want) {
			t.Errorf("the incident page after the close lacks %q", want)
		}
	}
	artifact(t, "incident.png", run(t, ctx, "screenshot the incident", chromedp.FullScreenshot(100)))

	// The hub audited the close under the analyst's name.
	history, _ := st.History(context.Background(), strings.ToLower(t0.TenantID), incidentID)
	byAnalyst := 0
	for _, e := range history {
		if e.Actor == "ana@mssp.example" {
			byAnalyst++
		}
	}
	if byAnalyst < 4 { // status, classification, determination, comment
		t.Errorf("%d audit entries name the analyst, want at least 4: %+v", byAnalyst, history)
	}
}

// waitFor is hubtest.Eventually that says, when it gives up, what it saw.
func waitFor(t *testing.T, what string, cond func() bool, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s; %s", what, diag())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hubState describes a hub incident for a failure message: its fields, links and history.
func hubState(st *store.Store, tenant, id string) string {
	ctx := context.Background()
	si, err := st.Incident(ctx, tenant, id)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "incident %+v sync=%s\n", si.Fields, si.SyncState)
	links, _ := st.Links(ctx, tenant, id)
	for _, l := range links {
		fmt.Fprintf(&b, "link %s %s state=%s err=%q\n", l.Kind, l.ExternalID, l.SyncState, l.LastError)
	}
	history, _ := st.History(ctx, tenant, id)
	for _, e := range history {
		fmt.Fprintf(&b, "audit %s %s %s %s→%s %s %s %s\n", e.Actor, e.Action, e.Field, e.Before, e.After, e.Link, e.Result, e.Detail)
	}
	return b.String()
}
