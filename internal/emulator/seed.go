package emulator

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

var tenantNames = []string{"Contoso", "Fabrikam", "Northwind Traders", "Adventure Works", "Tailspin Toys",
	"Woodgrove Bank", "Litware", "Proseware", "Wingtip Toys", "Alpine Ski House"}

var userNames = []string{"Alex Wilber", "Megan Bowen", "Lynne Robbins", "Diego Siciliani"}

var defenderTitles = []string{
	"Multi-stage incident involving Execution & Command and control on one endpoint",
	"Suspicious PowerShell activity on multiple endpoints",
	"Phishing campaign targeting multiple users",
	"Ransomware activity on one endpoint",
	"Suspicious sign-in from an anonymous IP address",
	"Credential access incident involving one user",
	"Email messages containing malicious URL removed after delivery",
	"Suspicious inbox manipulation rule",
}

var cloudTitles = []string{
	"Suspicious process executed on a virtual machine",
	"Access from a suspicious IP address to a storage account",
	"Unusual access to a key vault",
	"Anomalous resource deployment in a subscription",
	"Suspicious login activity on a SQL server",
}

var categories = []string{"Execution", "CommandAndControl", "DefenseEvasion", "Persistence", "CredentialAccess",
	"InitialAccess", "LateralMovement", "Exfiltration"}

// build creates the sample tenants, apps, directory, workspaces, data collection rule and
// incidents. It runs once, from New.
func (e *Emulator) build() {
	e.home = e.newTenant(-1)
	e.home.Name = "Socsync MSSP (home)"
	e.home.Domain = "socsyncmssp.onmicrosoft.com"
	e.byTenant[e.home.Domain] = e.home
	e.multi = &app{
		ClientID:   e.guid("app", "multi-tenant"),
		Secret:     e.secret("app-secret", "multi-tenant"),
		Name:       "socsync (multi-tenant)",
		Multi:      true,
		Home:       e.home,
		certWanted: true,
	}
	e.apps[e.multi.ClientID] = e.multi
	e.home.App = e.multi
	e.home.grants[e.multi.ClientID] = &grant{Granted: true, Roles: allRoles}

	for i := range e.opts.Tenants {
		t := e.newTenant(i)
		t.Defender = true
		slug := slugOf(t.Name)
		switch i % 3 {
		case 1:
			sub := e.guid("subscription", t.ID, "0")
			e.subs[sub] = t
			t.Workspaces = append(t.Workspaces, e.newWorkspace(t, sub, "rg-sentinel-"+slug, "law-"+slug))
		case 2:
			sub := e.guid("subscription", t.ID, "0")
			e.subs[sub] = t
			t.Workspaces = append(t.Workspaces,
				e.newWorkspace(t, sub, "rg-sentinel-"+slug, "law-"+slug+"-soc"),
				e.newWorkspace(t, sub, "rg-sentinel-"+slug, "law-"+slug+"-cloud"))
		}
		t.App = &app{
			ClientID:   e.guid("app", t.ID),
			Secret:     e.secret("app-secret", t.ID),
			Name:       "socsync",
			Home:       t,
			certWanted: i < e.opts.CertTenants,
		}
		e.apps[t.App.ClientID] = t.App
		t.grants[t.App.ClientID] = &grant{Granted: true, Roles: allRoles}
		t.grants[e.multi.ClientID] = &grant{Granted: true, Roles: allRoles}
		e.tenants = append(e.tenants, t)
	}

	dcrID := fmt.Sprintf("dcr-%x", e.bytes(16, "dcr"))
	e.dcr = &dcr{ImmutableID: dcrID, Tenant: e.home, Streams: e.opts.IngestionStreams, rows: map[string][]jsonRaw{}, total: map[string]int{}}

	now := e.now()
	for _, t := range e.tenants {
		e.seedIncidents(t, now)
	}
}

func (e *Emulator) newTenant(i int) *tenant {
	key := "home"
	if i >= 0 {
		key = strconv.Itoa(i)
	}
	t := &tenant{
		Idx:       i,
		ID:        e.guid("tenant", key),
		grants:    map[string]*grant{},
		byGraphID: map[string]*incident{},
		alerts:    map[string]*alert{},
	}
	// Graph incident ids are per tenant; every tenant starts at the same number, so different
	// tenants have incidents with equal ids (as real tenants do).
	t.nextGraphID = 1000 + e.rng("graph-id-base").IntN(9000)
	if i >= 0 {
		t.Name = tenantNames[i%len(tenantNames)]
		if n := i / len(tenantNames); n > 0 {
			t.Name += " " + strconv.Itoa(n+1)
		}
		t.Domain = slugOf(t.Name) + ".onmicrosoft.com"
		for k, n := range userNames {
			first, last, _ := strings.Cut(n, " ")
			upn := strings.ToLower(first+last[:1]) + "@" + t.Domain
			t.Users = append(t.Users, &user{
				ObjectID:    e.guid("user", t.ID, strconv.Itoa(k)),
				UPN:         upn,
				DisplayName: n,
				Email:       upn,
			})
		}
		e.byTenant[t.Domain] = t
	}
	e.byTenant[t.ID] = t
	return t
}

func (e *Emulator) newWorkspace(t *tenant, sub, rg, name string) *workspace {
	return &workspace{
		Tenant:     t,
		Sub:        sub,
		RG:         rg,
		Name:       name,
		CustomerID: e.guid("workspace", sub, rg, name),
		byName:     map[string]*incident{},
		nextNumber: 100 + e.rng("incident-number", sub, name).IntN(900),
	}
}

// secret returns an Entra-style client secret value.
func (e *Emulator) secret(parts ...string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
	r := e.rng(parts...)
	b := make([]byte, 40)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	copy(b[3:], "8Q~")
	return string(b)
}

func slugOf(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, " ", ""))
}

// seedIncidents creates the sample incidents of one tenant, spread over the last days.
func (e *Emulator) seedIncidents(t *tenant, now time.Time) {
	n := e.opts.IncidentsPerTenant
	for k := range n {
		r := e.rng("seed-incident", t.ID, strconv.Itoa(k))
		at := now.Add(-time.Duration(n-k)*97*time.Minute - time.Duration(r.IntN(3600))*time.Second)
		sev := []string{"high", "medium", "low", "medium", "informational"}[r.IntN(5)]
		req := NewIncident{Severity: sev, Where: "defender"}
		if len(t.Workspaces) > 0 {
			req.Where = "defender+sentinel"
		}
		cloud := len(t.Workspaces) == 2 && k%2 == 1
		if cloud {
			req.Where = "sentinel"
			req.Workspace = t.Workspaces[(k/2)%2].Name
			req.Title = cloudTitles[r.IntN(len(cloudTitles))]
			req.Alerts = []NewAlert{{Title: req.Title, Severity: sev, ServiceSource: "microsoftDefenderForCloud",
				DetectionSource: "microsoftDefenderForCloud"}}
		} else {
			req.Title = defenderTitles[r.IntN(len(defenderTitles))]
			for j := range 1 + r.IntN(3) {
				src := []string{"microsoftDefenderForEndpoint", "microsoftDefenderForOffice365", "microsoftDefenderForIdentity"}[(k+j)%3]
				req.Alerts = append(req.Alerts, NewAlert{Severity: sev, ServiceSource: src})
			}
		}
		inc, err := e.createIncident(t, req, at, "seed", "Microsoft 365 Defender")
		if err != nil {
			panic("emulator: seeding: " + err.Error()) // the sample requests are valid by construction
		}
		// Give the samples a realistic spread of states.
		switch k % 4 {
		case 1:
			inc.status = "inProgress"
			inc.owner = ownerFromUser(t.Users[r.IntN(len(t.Users))])
		case 2:
			inc.owner = ownerFromUser(t.Users[r.IntN(len(t.Users))])
			inc.tags = []string{"Demo"}
		case 3:
			inc.status = "resolved"
			inc.owner = ownerFromUser(t.Users[r.IntN(len(t.Users))])
			inc.class, inc.reason, inc.determination = "TruePositive", "SuspiciousActivity", "malware"
			inc.classComment = "Contained by the SOC."
			for _, a := range inc.alerts {
				a.status, a.resolved = "resolved", at
			}
		}
		if !inc.owner.empty() {
			inc.modifiedBy = inc.owner.UPN
		}
	}
}

// NewIncident is the body of POST /_emulator/tenants/{tenant}/incidents: an incident as the
// remote product would create it.
type NewIncident struct {
	Title       string `json:"title"`
	Severity    string `json:"severity,omitempty"`
	Description string `json:"description,omitempty"`
	// Where is "defender", "defender+sentinel" or "sentinel" (default: defender, mirrored into
	// the tenant's first workspace if it has one).
	Where string `json:"where,omitempty"`
	// Workspace names the Sentinel workspace (default: the tenant's first).
	Workspace string     `json:"workspace,omitempty"`
	Alerts    []NewAlert `json:"alerts,omitempty"`
}

// NewAlert is one alert of a NewIncident.
type NewAlert struct {
	Title           string `json:"title,omitempty"`
	Severity        string `json:"severity,omitempty"`
	Status          string `json:"status,omitempty"`
	ServiceSource   string `json:"serviceSource,omitempty"`
	DetectionSource string `json:"detectionSource,omitempty"`
	Category        string `json:"category,omitempty"`
}

// Created is the answer to an incident creation.
type Created struct {
	GraphID    string   `json:"graph_id,omitempty"`
	SentinelID string   `json:"sentinel_id,omitempty"`
	AlertIDs   []string `json:"alert_ids,omitempty"`
}

type badRequest struct{ msg string }

func (b *badRequest) Error() string { return b.msg }

func badf(format string, a ...any) error { return &badRequest{msg: fmt.Sprintf(format, a...)} }

func parseSeverity(in string) (string, bool) {
	if g, ok := canon(gSeverity, in); ok && g != "unknownFutureValue" {
		return g, true
	}
	return "", false
}

// createIncident creates an incident in t as the remote product does. Callers hold e.mu.
func (e *Emulator) createIncident(t *tenant, req NewIncident, at time.Time, source, actor string) (*incident, error) {
	if strings.TrimSpace(req.Title) == "" {
		return nil, badf("title is required")
	}
	sev := "medium"
	if req.Severity != "" {
		s, ok := parseSeverity(req.Severity)
		if !ok {
			return nil, badf("severity %q is not one of informational, low, medium, high", req.Severity)
		}
		sev = s
	}
	where := strings.ToLower(req.Where)
	if where == "" {
		where = "defender"
		if len(t.Workspaces) > 0 {
			where = "defender+sentinel"
		}
	}
	var ws *workspace
	switch where {
	case "defender":
	case "defender+sentinel", "sentinel":
		if len(t.Workspaces) == 0 {
			return nil, badf("tenant %s has no Sentinel workspace", t.ID)
		}
		ws = t.Workspaces[0]
		if req.Workspace != "" {
			if ws = t.workspace(req.Workspace); ws == nil {
				return nil, badf("tenant %s has no workspace %q", t.ID, req.Workspace)
			}
		}
	default:
		return nil, badf("where must be defender, defender+sentinel or sentinel, not %q", req.Where)
	}
	if where != "sentinel" && !t.Defender {
		return nil, badf("tenant %s has no Defender XDR", t.ID)
	}
	if len(req.Alerts) > 150 {
		return nil, badf("an incident holds at most 150 alerts")
	}
	e.seq++
	inc := &incident{
		seq: e.seq, t: t, title: req.Title, description: req.Description, severity: sev,
		status: "active", determination: "unknown", priority: -1,
		created: at, updated: at, version: 1, modifiedBy: "Microsoft 365 Defender",
	}
	r := e.rng("incident", t.ID, strconv.Itoa(e.seq))
	if where != "sentinel" {
		inc.graphID = t.newGraphID()
		t.byGraphID[inc.graphID] = inc
		inc.priority = r.IntN(101)
		inc.summary = "Microsoft Defender XDR correlated the alerts of this incident; investigate it as usual."
	}
	if ws != nil {
		inc.ws = ws
		ws.nextNumber++
		inc.number = ws.nextNumber
		inc.name = e.guid("sentinel-incident", ws.armID(), strconv.Itoa(inc.number))
		ws.byName[inc.name] = inc
		if inc.graphID != "" {
			inc.provider, inc.providerID, inc.providerURL = "Microsoft XDR", inc.graphID, inc.webURL()
		} else {
			inc.provider, inc.providerID = "Azure Sentinel", strconv.Itoa(inc.number)
			inc.modifiedBy = "Microsoft Sentinel"
			inc.ruleIDs = []string{ws.armID() + "/providers/Microsoft.SecurityInsights/alertRules/" +
				e.guid("alert-rule", ws.armID(), strconv.Itoa(r.IntN(8)))}
		}
	}
	t.incidents = append(t.incidents, inc)
	alerts := req.Alerts
	if len(alerts) == 0 {
		alerts = []NewAlert{{}}
	}
	for _, na := range alerts {
		if _, err := e.newAlert(inc, na, at); err != nil {
			e.removeIncident(inc)
			return nil, err
		}
	}
	inc.firstAct, inc.lastAct = at.Add(-10*time.Minute), at.Add(-time.Minute)
	m := e.mutate(inc, source, actor)
	m.at = at
	m.note("created", "", inc.title)
	m.flush()
	return inc, nil
}

// removeIncident undoes a failed creation.
func (e *Emulator) removeIncident(inc *incident) {
	t := inc.t
	for _, a := range inc.alerts {
		delete(t.alerts, a.id)
		delete(t.alerts, strings.ToLower(a.sysID))
	}
	if inc.graphID != "" {
		delete(t.byGraphID, inc.graphID)
	}
	if inc.ws != nil {
		delete(inc.ws.byName, inc.name)
	}
	for i, x := range t.incidents {
		if x == inc {
			t.incidents = append(t.incidents[:i], t.incidents[i+1:]...)
			break
		}
	}
}

// newAlert creates an alert in inc.
func (e *Emulator) newAlert(inc *incident, na NewAlert, at time.Time) (*alert, error) {
	t := inc.t
	if len(inc.alerts) >= 150 {
		return nil, badf("an incident holds at most 150 alerts")
	}
	t.alertSeq++
	r := e.rng("alert", t.ID, strconv.Itoa(t.alertSeq))
	a := &alert{
		inc: inc, severity: inc.severity, status: "new", classification: "unknown", determination: "unknown",
		created: at, updated: at, firstAct: at.Add(-10 * time.Minute), lastAct: at.Add(-time.Minute),
		sysID: e.guid("alert-system-id", t.ID, strconv.Itoa(t.alertSeq)),
	}
	a.id = fmt.Sprintf("da%018d_%d", r.Uint64()%1_000_000_000_000_000_000, -int64(r.Uint32()>>1))
	if na.Severity != "" {
		s, ok := parseSeverity(na.Severity)
		if !ok {
			return nil, badf("alert severity %q is not one of informational, low, medium, high", na.Severity)
		}
		a.severity = s
	}
	if na.Status != "" {
		s, ok := parseAlertStatus(na.Status)
		if !ok {
			return nil, badf("alert status %q is not one of new, inProgress, resolved, dismissed", na.Status)
		}
		a.status = s
		if s == "resolved" || s == "dismissed" {
			a.resolved = at
		}
	}
	a.serviceSource = "microsoftDefenderForEndpoint"
	if inc.graphID == "" {
		a.serviceSource = "microsoftDefenderForCloud"
	}
	if na.ServiceSource != "" {
		s, ok := canon(gServiceSource, na.ServiceSource)
		if !ok || s == "unknownFutureValue" {
			return nil, badf("alert serviceSource %q is not a Graph serviceSource member", na.ServiceSource)
		}
		a.serviceSource = s
	}
	a.detectionSource = defaultDetection(a.serviceSource)
	if na.DetectionSource != "" {
		s, ok := canon(gDetectionSource, na.DetectionSource)
		if !ok || s == "unknownFutureValue" {
			return nil, badf("alert detectionSource %q is not a Graph detectionSource member", na.DetectionSource)
		}
		a.detectionSource = s
	}
	a.category = na.Category
	if a.category == "" {
		a.category = categories[r.IntN(len(categories))]
	}
	a.title = na.Title
	if a.title == "" {
		a.title = alertTitle(a.serviceSource, r.IntN(4))
	}
	a.description = "An alert raised by " + productName(a.serviceSource) + ": " + a.title + "."
	a.detectorID = e.guid("detector", a.serviceSource, a.title)
	a.mitre = []string{fmt.Sprintf("T1%03d", 1+r.IntN(600))}
	inc.alerts = append(inc.alerts, a)
	t.indexAlert(a)
	return a, nil
}

func defaultDetection(serviceSource string) string {
	switch serviceSource {
	case "microsoftDefenderForEndpoint":
		return "microsoftDefenderForEndpoint"
	case "microsoftDefenderForOffice365":
		return "microsoftDefenderForOffice365"
	case "microsoftDefenderForIdentity":
		return "microsoftDefenderForIdentity"
	case "microsoftDefenderForCloudApps":
		return "cloudAppSecurity"
	case "azureAdIdentityProtection":
		return "azureAdIdentityProtection"
	case "microsoftDefenderForCloud":
		return "microsoftDefenderForCloud"
	case "microsoftSentinel":
		return "scheduledAlerts"
	default:
		return "microsoft365Defender"
	}
}

func alertTitle(serviceSource string, k int) string {
	titles := map[string][]string{
		"microsoftDefenderForEndpoint":  {"Suspicious execution of hidden file", "Suspicious PowerShell command line", "Malware was detected", "Suspicious scheduled task"},
		"microsoftDefenderForOffice365": {"Email messages containing malicious URL removed after delivery", "User reported a phishing email", "Suspicious email sending patterns detected", "Malicious attachment delivered"},
		"microsoftDefenderForIdentity":  {"Suspected brute-force attack", "Suspected DCSync attack", "Account enumeration reconnaissance", "Suspected overpass-the-hash attack"},
		"microsoftDefenderForCloud":     {"Suspicious process executed", "Access from a suspicious IP address", "Unusual key vault access pattern", "Suspicious authentication activity"},
	}
	if ts, ok := titles[serviceSource]; ok {
		return ts[k%len(ts)]
	}
	return []string{"Suspicious activity detected", "Unusual behaviour detected", "Policy violation", "Anomalous activity"}[k%4]
}

// tenantByKey finds a tenant by id, domain, index ("0") or name. Callers hold e.mu.
func (e *Emulator) tenantByKey(key string) (*tenant, error) {
	if t, ok := e.byTenant[strings.ToLower(key)]; ok {
		return t, nil
	}
	if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(e.tenants) {
		return e.tenants[i], nil
	}
	for _, t := range e.tenants {
		if strings.EqualFold(t.Name, key) {
			return t, nil
		}
	}
	if strings.EqualFold(key, "home") {
		return e.home, nil
	}
	return nil, errors.New("unknown tenant " + strconv.Quote(key))
}
