package sentinel_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/sentinel"
	"github.com/socsync/socsync/internal/throttle"
)

// listAll follows every page from since and returns the incidents and the pages' sizes.
func listAll(t *testing.T, c *sentinel.Client, since time.Time) ([]incident.Observation, []int) {
	t.Helper()
	var all []incident.Observation
	var sizes []int
	next := ""
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("paging does not end")
		}
		p, err := c.ListChanged(context.Background(), since, next)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Bad) > 0 {
			t.Fatalf("emulator incidents refused: %v", p.Bad[0].Err)
		}
		all = append(all, p.Incidents...)
		sizes = append(sizes, len(p.Incidents))
		if p.Next == "" {
			return all, sizes
		}
		next = p.Next
	}
}

func create(t *testing.T, v *env, tenant int, in emulator.NewIncident) emulator.Created {
	t.Helper()
	if in.Title == "" {
		in.Title = "Suspicious activity"
	}
	c, err := v.e.CreateIncident(v.tenant(tenant).TenantID, in)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Tenant 1 of the emulator mirrors Defender into one workspace; tenant 2 also has
// Sentinel-only incidents.
const (
	mirroredTenant = 1
	sentinelTenant = 2
)

func TestListChanged_PagesBeyondTopFollowingUnescapedNextLinks(t *testing.T) {
	v := newEnv(t, emulator.Options{})
	const extra = 21
	for i := range extra {
		create(t, v, mirroredTenant, emulator.NewIncident{Title: "Incident " + strconv.Itoa(i)})
	}
	rec := &recorder{}
	c := v.client(t, mirroredTenant, 0, rec, &sentinel.Options{PageSize: 10})
	got, sizes := listAll(t, c, testBase.Add(-30*24*time.Hour))

	if want := extra + 4; len(got) != want { // + the tenant's 4 sample incidents
		t.Fatalf("listed %d incidents, want %d (pages %v)", len(got), want, sizes)
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Errorf("page sizes %v", sizes)
	}
	seen := map[string]bool{}
	for i, o := range got {
		if seen[o.ExternalID] {
			t.Errorf("incident %s listed twice", o.ExternalID)
		}
		seen[o.ExternalID] = true
		if i > 0 && o.UpdatedAt.Before(got[i-1].UpdatedAt) {
			t.Errorf("not in ascending change order at %d", i)
		}
	}
	sent := rec.all()
	if len(sent) != 3 {
		t.Fatalf("%d requests for 3 pages", len(sent))
	}
	for i, s := range sent {
		if s.Status != http.StatusOK || strings.ContainsAny(s.RawQuery, " '\"") {
			t.Errorf("page %d: %d for query %q", i+1, s.Status, s.RawQuery)
		}
		q, err := url.ParseQuery(s.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		if q.Get("$filter") != "properties/lastModifiedTimeUtc ge 2026-01-30T12:00:00Z" ||
			q.Get("$orderby") != "properties/lastModifiedTimeUtc asc" || q.Get("$top") != "10" || q.Get("api-version") != "2025-12-01" {
			t.Errorf("page %d query %v", i+1, q)
		}
		if i > 0 && q.Get("$skipToken") == "" {
			t.Errorf("page %d did not follow the nextLink", i+1)
		}
	}
	if bad := v.armRequests()[http.StatusBadRequest]; bad != 0 {
		t.Errorf("%d requests refused as bad", bad)
	}
}

func TestListChanged_ReturnsOnlyIncidentsChangedSinceTheCursor(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	create(t, v, mirroredTenant, emulator.NewIncident{Title: "old, untouched"})
	edited := create(t, v, mirroredTenant, emulator.NewIncident{Title: "old, edited later"})
	v.e.Advance(10 * time.Minute)
	cursor := v.e.Now().Add(-time.Minute)
	fresh := create(t, v, mirroredTenant, emulator.NewIncident{Title: "new"})
	if err := v.e.PatchIncident(v.tenant(mirroredTenant).TenantID, edited.SentinelID, []byte(`{"severity":"High"}`)); err != nil {
		t.Fatal(err)
	}
	c := v.client(t, mirroredTenant, 0, nil, nil)
	got, _ := listAll(t, c, cursor)
	var ids []string
	for _, o := range got {
		ids = append(ids, o.ExternalID)
	}
	if !slices.Equal(ids, []string{fresh.SentinelID, edited.SentinelID}) && !slices.Equal(ids, []string{edited.SentinelID, fresh.SentinelID}) {
		t.Errorf("listed %v, want %s and %s", ids, fresh.SentinelID, edited.SentinelID)
	}
}

func TestMirroredIncident_NamesItsDefenderIncidentAndSharesAlertIDs(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	cr := create(t, v, mirroredTenant, emulator.NewIncident{Where: "defender+sentinel", Alerts: []emulator.NewAlert{{}, {Status: "inProgress"}}})
	c := v.client(t, mirroredTenant, 0, nil, nil)
	o, inc, err := c.Get(context.Background(), cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Mirrored || o.ProviderIncidentID != cr.GraphID || o.ProviderURL == "" || o.MergedInto != "" {
		t.Errorf("mirrored %v, provider incident %q (want %q), provider URL %q", o.Mirrored, o.ProviderIncidentID, cr.GraphID, o.ProviderURL)
	}
	if inc.ETag == "" || o.ETag != inc.ETag || o.AlertCount != 2 || o.URL == "" {
		t.Errorf("etag %q/%q, %d alerts, url %q", o.ETag, inc.ETag, o.AlertCount, o.URL)
	}
	alerts, err := c.Alerts(context.Background(), cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range alerts {
		ids = append(ids, a.RemoteID)
	}
	if !slices.Equal(ids, cr.AlertIDs) {
		t.Errorf("alert ids %v, want the Graph alert ids %v", ids, cr.AlertIDs)
	}
}

func TestAlerts_ReadsDefenderForCloudStatuses(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	statuses := []string{"new", "inProgress", "resolved", "dismissed"}
	var in []emulator.NewAlert
	for _, s := range statuses {
		in = append(in, emulator.NewAlert{Status: s, ServiceSource: "microsoftDefenderForCloud"})
	}
	cr := create(t, v, sentinelTenant, emulator.NewIncident{Where: "sentinel", Workspace: v.tenant(sentinelTenant).Sentinel[1].Workspace, Alerts: in})
	rec := &recorder{}
	c := v.client(t, sentinelTenant, 1, rec, nil)
	alerts, err := c.Alerts(context.Background(), cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	want := []incident.AlertStatus{incident.AlertNew, incident.AlertInProgress, incident.AlertResolved, incident.AlertDismissed}
	if len(alerts) != len(want) {
		t.Fatalf("%d alerts", len(alerts))
	}
	for i, a := range alerts {
		if a.Status != want[i] || a.RemoteID != cr.AlertIDs[i] || a.TenantID != v.tenant(sentinelTenant).TenantID ||
			a.Version.IsZero() || a.CreatedAt.IsZero() || len(a.Raw) == 0 {
			t.Errorf("alert %d: %+v", i, a.Alert)
		}
	}
	if s := rec.last(t); s.Method != http.MethodPost || !strings.HasSuffix(strings.SplitN(s.URL, "?", 2)[0], "/alerts") {
		t.Errorf("sent %s %s", s.Method, s.URL)
	}
	// A Defender for Cloud alert's status change gives it a later version.
	v.e.Advance(5 * time.Minute)
	if err := v.e.SetAlertStatus(v.tenant(sentinelTenant).TenantID, cr.AlertIDs[0], "resolved", ""); err != nil {
		t.Fatal(err)
	}
	again, err := c.Alerts(context.Background(), cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Status != incident.AlertResolved || !again[0].Version.After(alerts[0].Version) || !again[1].Version.Equal(alerts[1].Version) {
		t.Errorf("after a status change: %s, version %s (was %s)", again[0].Status, again[0].Version, alerts[0].Version)
	}
}

func TestPut_GetModifyPutReturnsTheNewVersionAndAStaleEtagIsErrConflict(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	ti := v.tenant(sentinelTenant)
	cr := create(t, v, sentinelTenant, emulator.NewIncident{Where: "sentinel", Severity: "low"})
	rec := &recorder{}
	c := v.client(t, sentinelTenant, 0, rec, &sentinel.Options{Owners: v.owners(t, sentinelTenant)})
	ctx := context.Background()

	_, inc, err := c.Get(ctx, cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	stale := inc
	if un := sentinel.Apply(&inc, sentinel.Changes{
		Severity: sentinel.Set(incident.SeverityHigh),
		Owner:    sentinel.Set(ti.Users[1].UPN),
		Tags:     sentinel.Set([]string{"from-hub"}),
	}, v.owners(t, sentinelTenant)); len(un) != 0 {
		t.Fatalf("unwritten: %v", un)
	}
	o, after, err := c.Put(ctx, cr.SentinelID, inc)
	if err != nil {
		t.Fatal(err)
	}
	if o.Severity != incident.SeverityHigh || o.Owner != strings.ToLower(ti.Users[1].UPN) || !slices.Equal(o.Tags, []string{"from-hub"}) {
		t.Errorf("after PUT: %+v", o.Fields)
	}
	if after.ETag == "" || after.ETag == stale.ETag || o.ETag != after.ETag {
		t.Errorf("etag %q after PUT (was %q)", after.ETag, stale.ETag)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.last(t).Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["etag"] != stale.ETag {
		t.Errorf("PUT sent etag %v, want %q", body["etag"], stale.ETag)
	}

	stale.Properties.Severity = "Informational"
	_, _, err = c.Put(ctx, cr.SentinelID, stale)
	var se *sentinel.Error
	if !errors.Is(err, sentinel.ErrConflict) || !errors.As(err, &se) || !strings.Contains(se.Message, "Newer version") {
		t.Fatalf("PUT with a stale etag: got %v, want ErrConflict", err)
	}
	o, _, err = c.Get(ctx, cr.SentinelID)
	if err != nil || o.Severity != incident.SeverityHigh {
		t.Errorf("the refused PUT changed the incident: %v %s", err, o.Severity)
	}
}

func TestPut_KeepsTheOwnerWhenTheChangeDoesNotNameIt(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	ti := v.tenant(sentinelTenant)
	cr := create(t, v, sentinelTenant, emulator.NewIncident{Where: "sentinel"})
	owner := ti.Users[2]
	if err := v.e.PatchIncident(ti.TenantID, cr.SentinelID, []byte(`{"owner":{"objectId":"`+owner.ObjectID+`"}}`)); err != nil {
		t.Fatal(err)
	}
	c := v.client(t, sentinelTenant, 0, nil, nil) // no owner map at all
	ctx := context.Background()
	_, inc, err := c.Get(ctx, cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	if un := sentinel.Apply(&inc, sentinel.Changes{Severity: sentinel.Set(incident.SeverityHigh)}, incident.Owners{}); len(un) != 0 {
		t.Fatal(un)
	}
	o, _, err := c.Put(ctx, cr.SentinelID, inc)
	if err != nil {
		t.Fatal(err)
	}
	if o.Owner != strings.ToLower(owner.UPN) {
		t.Errorf("owner %q after a severity change, want %q (reset to unassigned?)", o.Owner, owner.UPN)
	}
	// An owner the map does not know is refused, and the current one stays.
	un := sentinel.Apply(&inc, sentinel.Changes{Owner: sentinel.Set(ti.Users[0].UPN)}, incident.Owners{})
	if len(un) != 1 || un[0].Field != "owner" || inc.Properties.Owner.ObjectID != owner.ObjectID {
		t.Errorf("unwritten %v, owner %+v", un, inc.Properties.Owner)
	}
}

func TestPut_ClosingWithoutClassificationOrReasonIsABadRequest(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	cr := create(t, v, sentinelTenant, emulator.NewIncident{Where: "sentinel"})
	c := v.client(t, sentinelTenant, 0, nil, nil)
	ctx := context.Background()
	_, inc, err := c.Get(ctx, cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ classification, message string }{
		{"", "must have classification"},
		{"BenignPositive", "classification 'BenignPositive' must have classificationReason"},
	} {
		bad := inc
		bad.Properties.Status, bad.Properties.Classification, bad.Properties.ClassificationReason = "Closed", tc.classification, ""
		_, _, err := c.Put(ctx, cr.SentinelID, bad)
		var se *sentinel.Error
		if !errors.Is(err, sentinel.ErrBadRequest) || !errors.As(err, &se) || !strings.Contains(se.Message, tc.message) {
			t.Errorf("closing as %q: got %v, want a bad request saying %q", tc.classification, err, tc.message)
		}
	}
	// Apply fills in what Sentinel needs.
	if un := sentinel.Apply(&inc, sentinel.Changes{Status: sentinel.Set(incident.StatusResolved),
		Classification: sentinel.Set(incident.ClassificationBenignPositive)}, incident.Owners{}); len(un) != 0 {
		t.Fatal(un)
	}
	o, _, err := c.Put(ctx, cr.SentinelID, inc)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != incident.StatusResolved || o.Classification != incident.ClassificationBenignPositive ||
		o.ClassificationReason != incident.ReasonSuspiciousButExpected {
		t.Errorf("closed: %+v", o.Fields)
	}
}

func TestPutComment_ReplayWithTheSameIDIsANoOp(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	cr := create(t, v, mirroredTenant, emulator.NewIncident{})
	if err := v.e.PatchIncident(v.tenant(mirroredTenant).TenantID, cr.GraphID, []byte(`{"comment":"analyst note"}`)); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c := v.client(t, mirroredTenant, 0, rec, nil)
	ctx := context.Background()
	const id = "6f1c3d0e-socsync-0001"
	for i, want := range []int{http.StatusCreated, http.StatusOK} {
		cm, err := c.PutComment(ctx, cr.SentinelID, id, "from socsync")
		if err != nil {
			t.Fatal(err)
		}
		if cm.ID != id || cm.Text != "from socsync" || cm.Author == "" || cm.CreatedAt.IsZero() {
			t.Errorf("put %d: %+v", i, cm)
		}
		if s := rec.last(t); s.Status != want || s.Method != http.MethodPut {
			t.Errorf("put %d: %s answered %d, want %d", i, s.Method, s.Status, want)
		}
	}
	cs, err := c.Comments(ctx, cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	var mine int
	for _, cm := range cs {
		if cm.ID == id {
			mine++
		}
	}
	if len(cs) != 2 || mine != 1 || cs[0].Text != "analyst note" {
		t.Errorf("comments %+v", cs)
	}
}

func TestMergedIncident_IsMergedIntoTheTargetsDefenderIncident(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	ti := v.tenant(mirroredTenant)
	src := create(t, v, mirroredTenant, emulator.NewIncident{Title: "source"})
	dst := create(t, v, mirroredTenant, emulator.NewIncident{Title: "target"})
	if err := v.e.Merge(ti.TenantID, src.GraphID, dst.GraphID); err != nil {
		t.Fatal(err)
	}
	c := v.client(t, mirroredTenant, 0, nil, nil)
	o, inc, err := c.Get(context.Background(), src.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != incident.StatusMerged || o.MergedInto != dst.GraphID || o.AlertCount != 0 {
		t.Errorf("source: status %s, merged into %q (want %q), %d alerts", o.Status, o.MergedInto, dst.GraphID, o.AlertCount)
	}
	// providerIncidentId now names the target: it must not link the source to it.
	if o.ProviderIncidentID != "" || !o.Mirrored {
		t.Errorf("provider incident %q, mirrored %v", o.ProviderIncidentID, o.Mirrored)
	}
	if !incident.HasLabel(inc.Properties.Labels, "Redirected") || slices.Contains(o.Tags, "Redirected") {
		t.Errorf("labels %v, tags %v", inc.Properties.Labels, o.Tags)
	}
	// Writing a merged incident back keeps its service-assigned label.
	if un := sentinel.Apply(&inc, sentinel.Changes{Tags: sentinel.Set([]string{"x"})}, incident.Owners{}); len(un) != 0 {
		t.Fatal(un)
	}
	if !incident.HasLabel(inc.Properties.Labels, "Redirected") {
		t.Error("Apply dropped the Redirected label")
	}
}

func TestMissingIncidentOrWorkspace_IsErrNotFound(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	c := v.client(t, mirroredTenant, 0, nil, nil)
	ctx := context.Background()
	const name = "00000000-0000-4000-8000-000000000000"
	_, _, getErr := c.Get(ctx, name)
	_, comErr := c.Comments(ctx, name)
	_, putErr := c.PutComment(ctx, name, "c1", "x")
	_, alertErr := c.Alerts(ctx, name)
	ws := v.workspace(mirroredTenant, 0)
	ws.Workspace = "no-such-workspace"
	other := v.clientWith(t, v.credential(t, mirroredTenant), v.tenant(mirroredTenant).TenantID, ws, nil, nil)
	_, listErr := other.ListChanged(ctx, time.Time{}, "")
	for op, err := range map[string]error{"get": getErr, "comments": comErr, "put comment": putErr, "alerts": alertErr, "list in a missing workspace": listErr} {
		if !errors.Is(err, sentinel.ErrNotFound) {
			t.Errorf("%s: got %v, want ErrNotFound", op, err)
		}
	}
}

func TestRequests_CarryTheirBudgetKeyAndUserAgent(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	cr := create(t, v, mirroredTenant, emulator.NewIncident{})
	rec := &recorder{}
	c := v.client(t, mirroredTenant, 0, rec, nil)
	ctx := context.Background()
	if _, err := c.ListChanged(ctx, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	_, inc, err := c.Get(ctx, cr.SentinelID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Put(ctx, cr.SentinelID, inc); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutComment(ctx, cr.SentinelID, "c1", "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Comments(ctx, cr.SentinelID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Alerts(ctx, cr.SentinelID); err != nil {
		t.Fatal(err)
	}
	sub := v.workspace(mirroredTenant, 0).SubscriptionID
	for _, s := range rec.all() {
		want := throttle.Key{API: "arm-read", Scope: sub}
		switch path := strings.SplitN(s.URL, "?", 2)[0]; {
		case s.Method == http.MethodPut:
			want.API = "sentinel-write"
		case strings.HasSuffix(path, "/comments") || strings.HasSuffix(path, "/alerts"):
			want.API = "sentinel-read"
		}
		if !s.HasKey || s.Key != want {
			t.Errorf("%s %s: budget key %v, want %v", s.Method, s.URL, s.Key, want)
		}
		if s.Header.Get("User-Agent") != "socsync/1.2.3-test" || !strings.HasPrefix(s.Header.Get("Authorization"), "Bearer ") {
			t.Errorf("%s %s: User-Agent %q", s.Method, s.URL, s.Header.Get("User-Agent"))
		}
		if q, _ := url.ParseQuery(s.RawQuery); q.Get("api-version") != sentinel.DefaultAPIVersion {
			t.Errorf("%s %s: api-version %q", s.Method, s.URL, q.Get("api-version"))
		}
	}
}

func TestNextLinkToAnotherHostOrWorkspace_IsRefusedWithoutSendingTheToken(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	var sentAnything bool
	tr := transportFunc(func(req *http.Request) (*http.Response, error) {
		sentAnything = true
		return v.srv.Client().Do(req)
	})
	ti := v.tenant(mirroredTenant)
	c, err := sentinel.New(v.srv.URL, v.credential(t, mirroredTenant), tr, ti.TenantID, v.workspace(mirroredTenant, 0), &sentinel.Options{Now: v.e.Now})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(v.srv.URL)
	ws := ti.Sentinel[0]
	path := "/subscriptions/" + ws.SubscriptionID + "/resourceGroups/" + ws.ResourceGroup +
		"/providers/Microsoft.OperationalInsights/workspaces/" + ws.Workspace + "/providers/Microsoft.SecurityInsights/incidents"
	other := v.tenant(sentinelTenant).Sentinel[0]
	for _, link := range []string{
		"https://management.example.com" + path + "?api-version=2025-12-01&$skipToken=x",
		"https://" + u.Hostname() + ":1" + path + "?$skipToken=x",
		"http://" + u.Host + path + "?$skipToken=x",
		v.srv.URL + "/subscriptions/" + other.SubscriptionID + "/resourceGroups/" + other.ResourceGroup +
			"/providers/Microsoft.OperationalInsights/workspaces/" + other.Workspace + "/providers/Microsoft.SecurityInsights/incidents?$skipToken=x",
	} {
		_, err := c.ListChanged(context.Background(), time.Time{}, link)
		if !errors.Is(err, sentinel.ErrForeignHost) {
			t.Errorf("%s: got %v, want ErrForeignHost", link, err)
		}
	}
	if sentAnything {
		t.Error("a request was sent for a refused nextLink")
	}
}

func TestCredentialOfAnotherTenant_IsRefused(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	t1 := v.tenant(mirroredTenant).TenantID
	ws := v.workspace(mirroredTenant, 0)

	t.Run("a single-tenant credential cannot get the client's tenant a token", func(t *testing.T) {
		before := v.armRequests()
		c := v.clientWith(t, v.credential(t, 0), t1, ws, nil, nil)
		_, err := c.ListChanged(context.Background(), time.Time{}, "")
		if !errors.Is(err, sentinel.ErrUnauthorized) {
			t.Errorf("got %v, want ErrUnauthorized", err)
		}
		after := v.armRequests()
		if after[http.StatusOK] != before[http.StatusOK] || after[http.StatusUnauthorized] != before[http.StatusUnauthorized] {
			t.Errorf("ARM requests were sent: %v → %v", before, after)
		}
	})
	t.Run("ARM refuses another tenant's token for the subscription", func(t *testing.T) {
		c := v.clientWith(t, otherTenantCredential{v.credential(t, 0)}, t1, ws, nil, nil)
		_, err := c.ListChanged(context.Background(), time.Time{}, "")
		var se *sentinel.Error
		if !errors.Is(err, sentinel.ErrUnauthorized) || !errors.As(err, &se) || se.Code != "InvalidAuthenticationTokenTenant" {
			t.Errorf("got %v, want ErrUnauthorized InvalidAuthenticationTokenTenant", err)
		}
	})
}

func TestThrottling_ThrottledFromTheTransportPassesThrough(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	tr := transportFunc(func(req *http.Request) (*http.Response, error) {
		k, _ := throttle.KeyFrom(req.Context())
		return nil, &throttle.Throttled{Key: k, NotBefore: testBase.Add(time.Minute)}
	})
	ti := v.tenant(mirroredTenant)
	c, err := sentinel.New(v.srv.URL, v.credential(t, mirroredTenant), tr, ti.TenantID, v.workspace(mirroredTenant, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PutComment(context.Background(), "00000000-0000-4000-8000-000000000000", "c", "m")
	var th *throttle.Throttled
	if !errors.As(err, &th) || th.Key.API != "sentinel-write" {
		t.Errorf("got %v, want the transport's *throttle.Throttled", err)
	}
}

func TestNew_RefusesUnsafeConfiguration(t *testing.T) {
	ws := sentinel.Workspace{SubscriptionID: "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0", ResourceGroup: "rg", Workspace: "ws1"}
	cred := otherTenantCredential{}
	for name, tc := range map[string]struct {
		endpoint string
		ws       sentinel.Workspace
		opts     *sentinel.Options
	}{
		"plain http":              {"http://management.azure.com", ws, nil},
		"a page over 1000":        {"https://management.azure.com", ws, &sentinel.Options{PageSize: 1001}},
		"a workspace with a path": {"https://management.azure.com", sentinel.Workspace{SubscriptionID: ws.SubscriptionID, ResourceGroup: "rg", Workspace: "a/../b"}, nil},
		"no subscription":         {"https://management.azure.com", sentinel.Workspace{ResourceGroup: "rg", Workspace: "ws1"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := sentinel.New(tc.endpoint, cred, nil, "t", tc.ws, tc.opts); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// flaky answers the first request matching its method with status (after the emulator has
// served it, when forward is set), like a lost answer; every other request goes through.
type flaky struct {
	next    http.RoundTripper
	method  string
	status  int
	forward bool
	mu      sync.Mutex
	hits    int
}

func (f *flaky) Do(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	first := req.Method == f.method && f.hits == 0
	if req.Method == f.method {
		f.hits++
	}
	f.mu.Unlock()
	if !first {
		return f.next.RoundTrip(req)
	}
	if f.forward {
		resp, err := f.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
	}
	return &http.Response{StatusCode: f.status, Status: http.StatusText(f.status), Header: http.Header{},
		Body: io.NopCloser(strings.NewReader(`{"error":{"code":"ServerError","message":"lost"}}`)), Request: req}, nil
}

// The alerts POST only reads: socsync's throttle transport may re-send it after a 5xx.
func TestAlerts_IsRetriedAfterA5xxThroughTheThrottleTransport(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	cr := create(t, v, mirroredTenant, emulator.NewIncident{Alerts: []emulator.NewAlert{{}}})
	f := &flaky{next: v.srv.Client().Transport, method: http.MethodPost, status: http.StatusServiceUnavailable}
	tr := throttle.New(f, throttle.Options{
		Now:   v.e.Now,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Rand:  func() float64 { return 0 },
	})
	ti := v.tenant(mirroredTenant)
	c, err := sentinel.New(v.srv.URL, v.credential(t, mirroredTenant), tr, ti.TenantID, v.workspace(mirroredTenant, 0), &sentinel.Options{Now: v.e.Now})
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := c.Alerts(context.Background(), cr.SentinelID)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts %d, %v", len(alerts), err)
	}
	if f.hits != 2 {
		t.Errorf("%d POSTs, want the failed one and its retry", f.hits)
	}
}

// TestExpiredToken_IsReplacedAfterTheRemoteRefusesIt: after ARM refuses an expired token
// (ExpiredAuthenticationToken, 401) the next request gets a new one rather than the SDK's
// cached one. (Found by the chaos suite's R6.)
func TestExpiredToken_IsReplacedAfterTheRemoteRefusesIt(t *testing.T) {
	v := newEnv(t, emulator.Options{Tenants: 2, IncidentsPerTenant: -1})
	c := v.client(t, 1, 0, nil, nil)
	ctx := context.Background()
	if _, err := c.ListChanged(ctx, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	v.e.Advance(2 * time.Hour)
	if _, err := c.ListChanged(ctx, time.Time{}, ""); !errors.Is(err, sentinel.ErrUnauthorized) {
		t.Fatalf("with the expired token: %v, want ErrUnauthorized", err)
	}
	if _, err := c.ListChanged(ctx, time.Time{}, ""); err != nil {
		t.Fatalf("after the 401: %v, want a new token and the page", err)
	}
}

// The client rides on azcore's ARM pipeline with resource provider registration off: a
// subscription where Microsoft.SecurityInsights is not registered answers 409
// MissingSubscriptionRegistration, and the client reports it — it never tries to register
// the provider in the customer's subscription.
func TestMissingProviderRegistration_IsReportedAndNeverRegistered(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	var mu sync.Mutex
	var sentReqs []string
	tr := transportFunc(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		sentReqs = append(sentReqs, req.Method+" "+req.URL.Path)
		mu.Unlock()
		body := `{"error":{"code":"MissingSubscriptionRegistration","message":"The subscription is not registered to use namespace 'Microsoft.SecurityInsights'."}}`
		return &http.Response{StatusCode: http.StatusConflict, Status: "409 Conflict", Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
	})
	ti := v.tenant(mirroredTenant)
	c, err := sentinel.New(v.srv.URL, v.credential(t, mirroredTenant), tr, ti.TenantID, v.workspace(mirroredTenant, 0), &sentinel.Options{Now: v.e.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListChanged(context.Background(), time.Time{}, "")
	var se *sentinel.Error
	if !errors.As(err, &se) || se.Code != "MissingSubscriptionRegistration" {
		t.Errorf("got %v, want the 409 MissingSubscriptionRegistration", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sentReqs) != 1 {
		t.Errorf("%d requests %v, want the list alone (no provider registration)", len(sentReqs), sentReqs)
	}
}
