package emulator

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// user is one entry of a tenant's directory.
type user struct {
	ObjectID    string `json:"object_id"`
	UPN         string `json:"upn"`
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
}

// app is an app registration. A single-tenant app lives in its home tenant only; the
// multi-tenant app has a service principal (consent) in every tenant.
type app struct {
	ClientID string
	Secret   string
	Name     string
	Multi    bool
	Home     *tenant

	// Certificate credential, generated on first use (see certificate).
	certWanted bool
	cert       *x509.Certificate
	certPEM    []byte // certificate followed by the PKCS#8 private key
}

// grant is an app's consent (service principal) in a tenant.
type grant struct {
	Granted bool
	Roles   []string
}

// Application roles an app can hold in a tenant.
var allRoles = []string{"SecurityIncident.ReadWrite.All", "SecurityAlert.ReadWrite.All"}

type tenant struct {
	Idx        int // -1 for the home (MSSP) tenant
	ID         string
	Name       string
	Domain     string
	App        *app
	Defender   bool
	Workspaces []*workspace
	Users      []*user
	grants     map[string]*grant // client id → consent
	// sentinelRoles is each app's role on the tenant's workspaces, by lower-case client id
	// (absent: contributor).
	sentinelRoles map[string]string

	incidents   []*incident
	byGraphID   map[string]*incident
	alerts      map[string]*alert // by Graph id and by Sentinel systemAlertId
	nextGraphID int
	alertSeq    int
}

type workspace struct {
	Tenant     *tenant
	Sub        string
	RG         string
	Name       string
	CustomerID string
	byName     map[string]*incident
	nextNumber int
}

func (w *workspace) armID() string {
	return "/subscriptions/" + w.Sub + "/resourceGroups/" + w.RG +
		"/providers/Microsoft.OperationalInsights/workspaces/" + w.Name
}

// incident is one remote incident. A Defender incident mirrored into Sentinel is one incident
// with both a Graph id and a Sentinel name (two views of one object, as Microsoft's connector
// keeps them).
type incident struct {
	seq     int
	t       *tenant
	graphID string     // "" when not in Defender
	ws      *workspace // nil when not in Sentinel
	name    string     // Sentinel incident name (GUID)
	number  int        // Sentinel incidentNumber

	provider    string // Sentinel providerName
	providerID  string // Sentinel providerIncidentId
	providerURL string // Sentinel additionalData.providerIncidentUrl

	title, description, summary string
	severity                    string // Graph vocabulary
	status                      string // Graph vocabulary
	class                       string // Sentinel vocabulary ("" = unset)
	reason                      string // Sentinel classificationReason
	determination               string // Graph vocabulary
	classComment                string // Graph resolvingComment = Sentinel classificationComment
	owner                       owner
	tags                        []string // Graph customTags = Sentinel User labels
	autoLabels                  []string // Sentinel AutoAssigned labels
	systemTags                  []string
	redirectTo                  string
	priority                    int // -1: null
	created, updated            time.Time
	firstAct, lastAct           time.Time
	modifiedBy                  string
	version                     int
	comments                    []*comment
	alerts                      []*alert
	ruleIDs                     []string
	commentSeq                  int
}

type owner struct {
	UPN, ObjectID, Name, Email string
}

func (o owner) empty() bool { return o == owner{} }

type comment struct {
	name                             string // Sentinel comment name
	text                             string
	authorName, authorUPN, authorOID string
	authorEmail                      string
	created, modified                time.Time
	version                          int
	byApp                            bool
}

type alert struct {
	id, sysID       string
	inc             *incident
	title           string
	description     string
	category        string
	severity        string // Graph vocabulary
	status          string // new, inProgress, resolved, dismissed
	classification  string // Graph vocabulary
	determination   string
	serviceSource   string
	detectionSource string
	detectorID      string
	created         time.Time
	updated         time.Time
	resolved        time.Time
	firstAct        time.Time
	lastAct         time.Time
	mitre           []string
	assignedTo      string
}

// dcr is the sample data collection rule of the central workspace.
type dcr struct {
	ImmutableID string
	Tenant      *tenant
	Streams     []string
	rows        map[string][]jsonRaw
	total       map[string]int // rows received per stream, including dropped ones
}

type jsonRaw = json.RawMessage

// HistoryEntry is one change of one field of a remote incident or alert, as any remote
// writer (an API client, an analyst, the connector, correlation) made it.
type HistoryEntry struct {
	Seq        int       `json:"seq"`
	Time       time.Time `json:"time"`
	Tenant     string    `json:"tenant"`
	GraphID    string    `json:"graph_id,omitempty"`
	SentinelID string    `json:"sentinel_id,omitempty"`
	AlertID    string    `json:"alert_id,omitempty"`
	Source     string    `json:"source"` // graph, sentinel, admin, scenario, correlation, connector
	Actor      string    `json:"actor"`
	Field      string    `json:"field"`
	Old        string    `json:"old"`
	New        string    `json:"new"`
	Version    int       `json:"version"`
}

// etag is the Sentinel etag of the incident's current version.
func (inc *incident) etag(seed uint64) string {
	return fmt.Sprintf("\"%08x-0000-0000-0000-%012x\"", uint32(seed)^uint32(inc.seq*2654435761), inc.version)
}

func (c *comment) etag(inc *incident) string {
	return fmt.Sprintf("%08x-0000-0000-0000-%04x%08x", uint32(inc.seq*40503), c.version, len(c.name)+c.version*7919)
}

func (inc *incident) webURL() string {
	return "https://security.microsoft.com/incident2/" + inc.graphID + "/overview?tid=" + inc.t.ID
}

func (inc *incident) armID() string {
	return inc.ws.armID() + "/providers/Microsoft.SecurityInsights/incidents/" + inc.name
}

// ownerOf resolves an owner from the tenant's directory by object id, UPN or e-mail.
func (t *tenant) lookupUser(key string) *user {
	if key == "" {
		return nil
	}
	for _, u := range t.Users {
		if strings.EqualFold(u.ObjectID, key) || strings.EqualFold(u.UPN, key) || strings.EqualFold(u.Email, key) {
			return u
		}
	}
	return nil
}

func ownerFromUser(u *user) owner {
	return owner{UPN: u.UPN, ObjectID: u.ObjectID, Name: u.DisplayName, Email: u.Email}
}

// addAlert attaches a to inc and indexes it.
func (t *tenant) indexAlert(a *alert) {
	t.alerts[a.id] = a
	t.alerts[strings.ToLower(a.sysID)] = a
}

func (t *tenant) findAlert(id string) *alert {
	if a, ok := t.alerts[id]; ok {
		return a
	}
	return t.alerts[strings.ToLower(id)]
}

// findIncident finds an incident by Graph id or Sentinel name.
func (t *tenant) findIncident(id string) *incident {
	if inc, ok := t.byGraphID[id]; ok {
		return inc
	}
	for _, w := range t.Workspaces {
		if inc, ok := w.byName[strings.ToLower(id)]; ok {
			return inc
		}
	}
	return nil
}

func (t *tenant) workspace(name string) *workspace {
	for _, w := range t.Workspaces {
		if strings.EqualFold(w.Name, name) {
			return w
		}
	}
	return nil
}

func (t *tenant) newGraphID() string {
	t.nextGraphID++
	return strconv.Itoa(t.nextGraphID)
}

// tactics lists the MITRE tactics of the incident's alerts (Sentinel additionalData.tactics).
func (inc *incident) tactics() []string {
	out := []string{}
	for _, a := range inc.alerts {
		if a.category != "" && !slices.Contains(out, a.category) {
			out = append(out, a.category)
		}
	}
	return out
}

func (inc *incident) productNames() []string {
	out := []string{}
	for _, a := range inc.alerts {
		if p := productName(a.serviceSource); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// closedSentinel reports whether the Sentinel view shows the incident as Closed.
func (inc *incident) closedSentinel() bool { return sentinelStatus(inc.status) == "Closed" }

// sentinelClass is the classification the Sentinel view prints ("" = absent).
func (inc *incident) sentinelClass() string {
	if inc.class == "" && inc.closedSentinel() {
		return "Undetermined"
	}
	return inc.class
}

func cloneStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string{}, s...)
}

func itoa(i int) string { return strconv.Itoa(i) }

func itoa64(i uint64) string { return strconv.FormatUint(i, 10) }
