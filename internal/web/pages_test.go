package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/socsync/socsync/internal/store"
)

func TestQueue_ShowsThePrincipalsTenantsNewestFirstFilteredAndSorted(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t, "admin")
	page := admin.get("/incidents").body
	rows := rowIDs(page)
	want := []string{f.ids[tenantB][1], f.ids[tenantB][0], f.ids[tenantA][2], f.ids[tenantA][1], f.ids[tenantA][0]}
	if strings.Join(rows, ",") != strings.Join(want, ",") {
		t.Errorf("admin's queue %v, want every tenant newest first %v", rows, want)
	}
	for _, s := range []string{">Alpha<", ">Beta<", "badge sev sev-high", "src-defender", "sync-in_sync"} {
		if !strings.Contains(page, s) {
			t.Errorf("queue lacks %q", s)
		}
	}
	if rows := rowIDs(admin.get("/incidents?tenant=" + tenantA).body); len(rows) != 3 {
		t.Errorf("filtered to tenant A: %d rows", len(rows))
	}
	if rows := rowIDs(admin.get("/incidents?severity=low").body); len(rows) != 1 || rows[0] != f.ids[tenantA][1] {
		t.Errorf("filtered to low severity: %v", rows)
	}
	if rows := rowIDs(admin.get("/incidents?q=CANARY-BBBB").body); len(rows) != 2 {
		t.Errorf("title filter: %v", rows)
	}
	bySev := rowIDs(admin.get("/incidents?sort=severity&dir=asc").body)
	if len(bySev) != 5 || bySev[0] != f.ids[tenantA][1] {
		t.Errorf("lowest severity first: %v", bySev)
	}
	if r := admin.get("/incidents?status=open"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "status: invalid status") {
		t.Errorf("bad status filter: %d", r.status)
	}

	analyst := f.login(t, "analyst-a")
	page = analyst.get("/incidents").body
	if rows := rowIDs(page); len(rows) != 3 || strings.Contains(page, "Beta") || strings.Contains(page, "canary-bbbb") {
		t.Errorf("analyst of A sees %v (or B's name)", rows)
	}
	// Asking for B by filter shows nothing of B.
	if rows := rowIDs(analyst.get("/incidents?tenant=" + tenantB).body); len(rows) != 0 {
		t.Errorf("tenant filter crossed the scope: %v", rows)
	}
}

func TestQueue_PagesByPositionCoveringEveryIncidentOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 120 {
		f.clock.Advance(1)
		if err := f.store.InTx(ctx, func(tx *store.Tx) error {
			inc := newIncident(tenantA, i)
			_, err := tx.CreateIncident(ctx, inc, "bulk:"+inc.Title, store.Change{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	b := f.login(t, "analyst-a")
	seen := map[string]bool{}
	next := "/incidents?sort=severity"
	pages := 0
	for next != "" {
		page := b.get(next).body
		pages++
		for _, id := range rowIDs(page) {
			if seen[id] {
				t.Fatalf("incident %s on two pages", id)
			}
			seen[id] = true
		}
		next = ""
		if m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(page); m != nil {
			next = htmlUnescape(m[1])
		}
	}
	if len(seen) != 123 || pages != 3 {
		t.Errorf("%d incidents over %d pages, want 123 over 3", len(seen), pages)
	}
	if r := b.get("/incidents?sort=updated&after=" + url.QueryEscape("garbage")); r.status != http.StatusBadRequest {
		t.Errorf("a malformed position: %d, want 400", r.status)
	}
}

func TestIncident_ShowsTriageCommentsAlertsLinksAndHistory(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "analyst-a")
	id := f.ids[tenantA][0]
	page := b.get("/incidents/" + id)
	if page.status != 200 {
		t.Fatalf("incident page: %d", page.status)
	}
	for _, s := range []string{`id="triage"`, `id="comment-form"`, "device ws-0.contoso.com (malicious)", "Defender XDR",
		`href="https://security.microsoft.com/incidents/0"`, "Open in the Defender portal", `id="history"`, ">Alpha<"} {
		if !strings.Contains(page.body, s) {
			t.Errorf("incident page lacks %q", s)
		}
	}
}

func TestIncident_AnotherTenantsIncidentIsNotFoundByURLAPIAndFormPost(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "analyst-a")
	other, missing := f.ids[tenantB][0], "00000000-0000-7000-8000-000000000000"
	csrf := b.csrf()
	probe := func(id string) []response {
		return []response{
			b.get("/incidents/" + id),
			b.post("/incidents/"+id, url.Values{"csrf": {csrf}, "severity": {"low"}, "status": {"resolved"}, "classification": {"false_positive"}}),
			b.post("/incidents/"+id+"/comments", url.Values{"csrf": {csrf}, "text": {"probe"}}),
			b.api(http.MethodGet, "/api/v1/incidents/"+id, ""),
			b.api(http.MethodPatch, "/api/v1/incidents/"+id, `{"severity":"low"}`, "X-CSRF-Token", csrf),
			b.api(http.MethodPost, "/api/v1/incidents/"+id+"/comments", `{"text":"probe"}`, "X-CSRF-Token", csrf),
			b.api(http.MethodGet, "/api/v1/incidents/"+id, "", "Authorization", "Bearer tok-analyst-a"),
		}
	}
	for i, pair := range zip(probe(other), probe(missing)) {
		o, m := pair[0], pair[1]
		if o.status != http.StatusNotFound || m.status != http.StatusNotFound {
			t.Errorf("probe %d: another tenant's incident %d, a missing one %d; want 404 both", i, o.status, m.status)
		}
		if o.body != m.body {
			t.Errorf("probe %d: the answers differ:\n%s\n---\n%s", i, o.body, m.body)
		}
	}
	si, err := f.store.Incident(context.Background(), tenantB, other)
	if err != nil || si.Severity != "high" || si.Version != 1 {
		t.Errorf("B's incident changed: %+v %v", si.Incident, err)
	}
	if got := f.queue.queued(); len(got) != 0 {
		t.Errorf("probes queued %v", got)
	}
}

func TestViewer_CannotChangeAnything(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "viewer-b")
	id := f.ids[tenantB][0]
	page := b.get("/incidents/" + id).body
	if strings.Contains(page, `id="triage"`) || strings.Contains(page, `id="comment-form"`) || !strings.Contains(page, "may read incidents but not change them") {
		t.Error("a viewer's incident page offers forms")
	}
	csrf := b.csrf()
	for i, r := range []response{
		b.post("/incidents/"+id, url.Values{"csrf": {csrf}, "severity": {"low"}}),
		b.post("/incidents/"+id+"/comments", url.Values{"csrf": {csrf}, "text": {"x"}}),
		b.post("/incidents/"+f.ids[tenantA][0], url.Values{"csrf": {csrf}, "severity": {"low"}}),
		b.api(http.MethodPatch, "/api/v1/incidents/"+id, `{"severity":"low"}`, "X-CSRF-Token", csrf),
		b.api(http.MethodPost, "/api/v1/incidents/"+id+"/comments", `{"text":"x"}`, "X-CSRF-Token", csrf),
	} {
		if r.status != http.StatusForbidden {
			t.Errorf("viewer change %d: %d, want 403", i, r.status)
		}
	}
	si, _ := f.store.Incident(context.Background(), tenantB, id)
	comments, _ := f.store.Comments(context.Background(), tenantB, id)
	if si.Version != 1 || si.Severity != "high" || len(comments) != 0 || len(f.queue.queued()) != 0 {
		t.Errorf("a viewer changed something: version %d, severity %s, %d comments", si.Version, si.Severity, len(comments))
	}
}

func TestForms_WithoutTheSessionsCSRFTokenAreForbidden(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "analyst-a")
	other := f.login(t, "admin")
	id := f.ids[tenantA][0]
	for _, token := range []string{"", "forged", other.csrf()} { // missing, invalid, another session's
		for _, path := range []string{"/incidents/" + id, "/incidents/" + id + "/comments", "/logout"} {
			form := url.Values{"severity": {"low"}, "text": {"x"}}
			if token != "" {
				form.Set("csrf", token)
			}
			if r := b.post(path, form); r.status != http.StatusForbidden {
				t.Errorf("POST %s with token %.8q: %d, want 403", path, token, r.status)
			}
		}
		if r := b.api(http.MethodPatch, "/api/v1/incidents/"+id, `{"severity":"low"}`, "X-CSRF-Token", token); r.status != http.StatusForbidden {
			t.Errorf("API PATCH by session with token %.8q: %d, want 403", token, r.status)
		}
	}
	// A request the browser marks cross-site is refused even with the right token.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/incidents/"+id, strings.NewReader(url.Values{"csrf": {b.csrf()}, "severity": {"low"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := b.do(req); r.status != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", r.status)
	}
	if si, _ := f.store.Incident(context.Background(), tenantA, id); si.Version != 1 {
		t.Errorf("a refused form changed the incident (version %d)", si.Version)
	}
	// With its token, the session may use the API.
	if r := b.api(http.MethodPatch, "/api/v1/incidents/"+id, `{"severity":"low"}`, "X-CSRF-Token", b.csrf()); r.status != http.StatusOK {
		t.Errorf("API PATCH by session with its token: %d %s", r.status, r.body)
	}
}

func TestEdit_ClosesAsTruePositiveWithACommentAuditedUnderTheUser(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "analyst-a")
	id := f.ids[tenantA][0]
	form := hidden(t, b.get("/incidents/"+id).body, "triage")
	form.Set("status", "resolved")
	form.Set("severity", "high") // unchanged
	form.Set("owner", "")        // unchanged
	form.Set("classification", "true_positive")
	form.Set("determination", "malware")
	form.Set("classification_reason", "suspicious_activity")
	form.Set("tags", "ransomware, Phishing")
	form.Set("comment", "Confirmed: host isolated.")
	r := b.post("/incidents/"+id, form)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/incidents/"+id+"?saved=1" {
		t.Fatalf("save: %d %s\n%s", r.status, r.header.Get("Location"), r.body)
	}
	ctx := context.Background()
	si, _ := f.store.Incident(ctx, tenantA, id)
	if si.Status != "resolved" || si.Classification != "true_positive" || si.Determination != "malware" ||
		si.ClassificationReason != "suspicious_activity" || len(si.Tags) != 2 || si.SyncState != "pending" {
		t.Errorf("after save: %+v sync %s", si.Fields, si.SyncState)
	}
	history, _ := f.store.History(ctx, tenantA, id)
	fields := map[string]bool{}
	for _, e := range history {
		if e.Actor != "analyst-a" {
			t.Errorf("audit entry by %q, want the user's name", e.Actor)
		}
		fields[e.Field+e.Action] = true
	}
	for _, want := range []string{"statusedit", "classificationedit", "determinationedit", "classification_reasonedit", "tagsedit", "comment"} {
		if !fields[want] {
			t.Errorf("no audit entry %q in %v", want, fields)
		}
	}
	if fields["severityedit"] || fields["owneredit"] {
		t.Error("unchanged fields were audited as edits")
	}
	comments, _ := f.store.Comments(ctx, tenantA, id)
	if len(comments) != 1 || comments[0].Author != "analyst-a" || comments[0].Origin != "hub" {
		t.Errorf("comments %+v", comments)
	}
	if q := f.queue.queued(); len(q) < 1 || q[0].ID != id {
		t.Errorf("queued %v, want the incident for the reconciler", q)
	}
	page := b.get("/incidents/" + id + "?saved=1").body
	for _, s := range []string{"Saved.", "Confirmed: host isolated.", "analyst-a", "sync-pending", `hx-trigger="every 2s"`} {
		if !strings.Contains(page, s) {
			t.Errorf("page after save lacks %q", s)
		}
	}
}

func TestEdit_AStaleFormDoesNotOverwriteAChangeMadeElsewhere(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "analyst-a")
	id := f.ids[tenantA][0]
	form := hidden(t, b.get("/incidents/"+id).body, "triage")
	// Meanwhile another analyst assigns the incident.
	token := f.browser(t)
	if r := token.api(http.MethodPatch, "/api/v1/incidents/"+id, `{"owner":"bob@contoso.com"}`, "Authorization", "Bearer tok-analyst-a"); r.status != 200 {
		t.Fatalf("concurrent edit: %d", r.status)
	}
	form.Set("status", "active")
	form.Set("severity", "high")
	form.Set("owner", "") // as the stale page showed it
	form.Set("classification", "")
	if r := b.post("/incidents/"+id, form); r.status != http.StatusSeeOther {
		t.Fatalf("save: %d", r.status)
	}
	si, _ := f.store.Incident(context.Background(), tenantA, id)
	if si.Owner != "bob@contoso.com" || si.Status != "active" {
		t.Errorf("owner %q status %q: the stale form overwrote the owner or lost the status", si.Owner, si.Status)
	}
}

func TestEdit_InvalidInputIsNamedAndTheFormKeepsTheValues(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "analyst-a")
	id := f.ids[tenantA][0]
	form := hidden(t, b.get("/incidents/"+id).body, "triage")
	form.Set("status", "resolved") // without a classification
	form.Set("owner", "ana@contoso.com")
	r := b.post("/incidents/"+id, form)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "classification: required to close an incident") ||
		!strings.Contains(r.body, `value="ana@contoso.com"`) || !strings.Contains(r.body, `<label class="invalid">Classification`) {
		t.Errorf("invalid close: %d\n%s", r.status, r.body)
	}
	form.Set("status", "new")
	form.Set("owner", "not an owner")
	if r := b.post("/incidents/"+id, form); r.status != http.StatusBadRequest || !strings.Contains(r.body, "owner: want a user principal name") {
		t.Errorf("invalid owner: %d", r.status)
	}
	if r := b.post("/incidents/"+id+"/comments", url.Values{"csrf": {form.Get("csrf")}, "text": {"   "}}); r.status != http.StatusBadRequest {
		t.Errorf("empty comment: %d", r.status)
	}
	if si, _ := f.store.Incident(context.Background(), tenantA, id); si.Version != 1 {
		t.Errorf("an invalid form changed the incident")
	}
}

func TestRefinements_OfferOnlyTheChoicesThatFitTheClassification(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "analyst-a")
	r := b.get("/refinements?classification=false_positive&determination=malware&classification_reason=inaccurate_data")
	for _, s := range []string{`value="not_malicious"`, `value="inaccurate_data" selected`, `value="incorrect_alert_logic"`} {
		if !strings.Contains(r.body, s) {
			t.Errorf("false positive choices lack %q:\n%s", s, r.body)
		}
	}
	if strings.Contains(r.body, `value="malware"`) || strings.Contains(r.body, "<html") {
		t.Errorf("false positive choices offer malware, or a whole page:\n%s", r.body)
	}
	page := b.get("/incidents/" + f.ids[tenantA][0]).body
	if !strings.Contains(page, `<optgroup label="true positive">`) {
		t.Error("without JavaScript the page should offer every classification's choices, grouped")
	}
}

func TestTenants_ShowHealthToAllAndConsentAndChecksToAdmins(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t, "admin").get("/tenants").body
	wantConsent := `https://login.microsoftonline.com/` + tenantA + `/adminconsent?client_id=55555555-5555-5555-5555-555555555555&amp;redirect_uri=http%3A%2F%2Fsocsync.example%2Ftenants`
	for _, s := range []string{"Alpha", "Beta", "never polled", wantConsent, "client_id=66666666-6666-6666-6666-666666666666",
		"Credential: entra: credential of tenant " + tenantB, "not polled yet", "Sentinel"} {
		if !strings.Contains(admin, s) {
			t.Errorf("admin's tenants page lacks %q", s)
		}
	}
	viewer := f.login(t, "viewer-b").get("/tenants").body
	if strings.Contains(viewer, "Alpha") || strings.Contains(viewer, "adminconsent") || strings.Contains(viewer, "Checks") || !strings.Contains(viewer, "Beta") {
		t.Error("a viewer of B sees another tenant, the consent link or the checks")
	}
	consent := f.login(t, "admin").get("/tenants?admin_consent=True&tenant=" + tenantA).body
	if !strings.Contains(consent, "Admin consent granted for tenant "+tenantA) {
		t.Error("the consent outcome is not shown")
	}
}

func TestPages_CarrySecurityHeadersAndNoInlineScriptOrStyle(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "admin")
	id := f.ids[tenantA][0]
	if r := b.get("/static/"); r.status != http.StatusNotFound {
		t.Errorf("/static/ lists the assets: %d", r.status)
	}
	paths := []string{"/login", "/incidents", "/incidents?sort=severity", "/incidents/" + id, "/tenants", "/nope",
		"/incidents/00000000-0000-7000-8000-000000000000", "/static/htmx.min.js", "/static/socsync.css"}
	for _, path := range paths {
		r := b.get(path)
		h := r.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP allows unsafe sources: %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", path, h)
		}
		if strings.HasPrefix(path, "/static/") {
			continue
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, h.Get("Cache-Control"))
		}
		for _, problem := range inlineCode(t, r.body) {
			t.Errorf("%s: %s", path, problem)
		}
		if strings.Contains(r.body, "tok-analyst-a") || strings.Contains(r.body, "$argon2id$") {
			t.Errorf("%s: a secret is in the page", path)
		}
	}
}

// inlineCode lists what a CSP without 'unsafe-inline' would block: script elements without
// src, style elements, style attributes and on* handler attributes, javascript: URLs.
func inlineCode(t *testing.T, page string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			hasSrc := false
			for _, a := range n.Attr {
				switch {
				case a.Key == "src":
					hasSrc = true
				case a.Key == "style", strings.HasPrefix(a.Key, "on"), strings.HasPrefix(a.Key, "hx-on"):
					out = append(out, "inline attribute "+a.Key+" on <"+n.Data+">")
				case strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:"):
					out = append(out, "javascript: URL on <"+n.Data+">")
				}
			}
			if n.Data == "script" && !hasSrc {
				out = append(out, "inline <script>")
			}
			if n.Data == "style" {
				out = append(out, "inline <style>")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

func TestHTMXConfig_DisablesInlineStylesAndEval(t *testing.T) {
	f := newFixture(t)
	page := f.browser(t).get("/login").body
	m := regexp.MustCompile(`<meta name="htmx-config" content='([^']+)'>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no htmx-config meta element")
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(m[1]), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["includeIndicatorStyles"] != false || cfg["allowEval"] != false || cfg["historyCacheSize"] != float64(0) {
		t.Errorf("htmx config %v: htmx would inject styles, eval code or keep pages in localStorage", cfg)
	}
}

func rowIDs(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<tr class="incident-row" data-id="([^"]+)">`).FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

func zip(a, b []response) [][2]response {
	out := make([][2]response, len(a))
	for i := range a {
		out[i] = [2]response{a[i], b[i]}
	}
	return out
}

func TestIncident_MergedLinksBothWaysAndRefusesChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	target := f.ids[tenantA][1]
	var merged string
	if err := f.store.InTx(ctx, func(tx *store.Tx) error {
		inc := newIncident(tenantA, 1)
		inc.Title, inc.Status, inc.MergedInto = "the merged one", "merged", target
		_, err := tx.CreateIncident(ctx, inc, "graph:merged", store.Change{})
		merged = inc.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b := f.login(t, "analyst-a")
	page := b.get("/incidents/" + merged).body
	if !strings.Contains(page, `id="merged-into"`) || !strings.Contains(page, `href="/incidents/`+target+`"`) || strings.Contains(page, `id="triage"`) {
		t.Errorf("merged incident's page: want a link to its target and no triage form")
	}
	if page := b.get("/incidents/" + target).body; !strings.Contains(page, `id="merged-from"`) || !strings.Contains(page, "the merged one") {
		t.Error("the target's page does not list the incident merged into it")
	}
	r := b.post("/incidents/"+merged, url.Values{"csrf": {b.csrf()}, "severity": {"low"}})
	if r.status != http.StatusConflict || !strings.Contains(r.body, "merged into another") {
		t.Errorf("editing a merged incident: %d", r.status)
	}
}
