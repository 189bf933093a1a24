package emulator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/emulator/odata"
)

// fmtTime prints a timestamp as Graph and ARM do: UTC, up to 7 fractional digits.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.9999999Z") }

func timeOrNull(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := fmtTime(t)
	return &s
}

func strOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// graphError writes Graph's error envelope.
func (c *call) graphError(status int, code, msg string) {
	c.graphErrorBody(status, obj{{"code", code}, {"message", msg}, {"innerError", c.graphInner()}})
}

func (c *call) graphInner() obj {
	rid := c.requestID()
	crid := c.r.Header.Get("client-request-id")
	if crid == "" {
		crid = rid
	}
	c.w.Header().Set("request-id", rid)
	c.w.Header().Set("client-request-id", crid)
	return obj{{"date", c.start.Format("2006-01-02T15:04:05")}, {"request-id", rid}, {"client-request-id", crid}}
}

func (c *call) graphErrorBody(status int, body obj) {
	c.json(status, obj{{"error", body}})
}

// graphQueryError writes the error Graph's OData layer gives for an invalid query: an empty
// code, details and innerError (as observed for $top=100).
func (c *call) graphQueryError(msg string) {
	c.graphErrorBody(http.StatusBadRequest, obj{
		{"code", ""}, {"message", "The query specified in the URI is not valid. " + msg},
		{"details", []any{}}, {"innerError", c.graphInner()},
	})
}

func (c *call) preferUnknown() bool {
	for _, v := range c.r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "include-unknown-enum-members") {
				c.w.Header().Set("Preference-Applied", "include-unknown-enum-members")
				return true
			}
		}
	}
	return false
}

// Graph wire shapes (field order as in the 2026 samples).
type gComment struct {
	Comment              string `json:"comment"`
	CreatedByDisplayName string `json:"createdByDisplayName"`
	CreatedDateTime      string `json:"createdDateTime"`
}

type gIncident struct {
	Context            string       `json:"@odata.context,omitempty"`
	ID                 string       `json:"id"`
	TenantID           string       `json:"tenantId"`
	Status             string       `json:"status"`
	IncidentWebURL     string       `json:"incidentWebUrl"`
	RedirectIncidentID *string      `json:"redirectIncidentId"`
	DisplayName        string       `json:"displayName"`
	CreatedDateTime    string       `json:"createdDateTime"`
	LastUpdateDateTime string       `json:"lastUpdateDateTime"`
	AssignedTo         *string      `json:"assignedTo"`
	Classification     string       `json:"classification"`
	Determination      string       `json:"determination"`
	Severity           string       `json:"severity"`
	CustomTags         []string     `json:"customTags"`
	SystemTags         []string     `json:"systemTags"`
	Description        *string      `json:"description"`
	LastModifiedBy     *string      `json:"lastModifiedBy"`
	ResolvingComment   *string      `json:"resolvingComment"`
	Summary            *string      `json:"summary"`
	PriorityScore      *int         `json:"priorityScore"`
	Comments           []gComment   `json:"comments"`
	Alerts             *[]gAlert    `json:"alerts,omitempty"`
	times              [2]time.Time // created, updated (for $filter and ordering)
	inc                *incident
}

type gAlert struct {
	ODataType          string     `json:"@odata.type"`
	Context            string     `json:"@odata.context,omitempty"`
	ID                 string     `json:"id"`
	ProviderAlertID    string     `json:"providerAlertId"`
	IncidentID         string     `json:"incidentId"`
	Status             string     `json:"status"`
	Severity           string     `json:"severity"`
	Classification     string     `json:"classification"`
	Determination      string     `json:"determination"`
	ServiceSource      string     `json:"serviceSource"`
	DetectionSource    string     `json:"detectionSource"`
	ProductName        string     `json:"productName"`
	DetectorID         string     `json:"detectorId"`
	TenantID           string     `json:"tenantId"`
	Title              string     `json:"title"`
	Description        string     `json:"description"`
	RecommendedActions string     `json:"recommendedActions"`
	Category           string     `json:"category"`
	AssignedTo         *string    `json:"assignedTo"`
	AlertWebURL        string     `json:"alertWebUrl"`
	IncidentWebURL     string     `json:"incidentWebUrl"`
	ActorDisplayName   *string    `json:"actorDisplayName"`
	ThreatDisplayName  *string    `json:"threatDisplayName"`
	ThreatFamilyName   *string    `json:"threatFamilyName"`
	MitreTechniques    []string   `json:"mitreTechniques"`
	CreatedDateTime    string     `json:"createdDateTime"`
	LastUpdateDateTime string     `json:"lastUpdateDateTime"`
	ResolvedDateTime   *string    `json:"resolvedDateTime"`
	FirstActivity      string     `json:"firstActivityDateTime"`
	LastActivity       string     `json:"lastActivityDateTime"`
	SystemTags         []string   `json:"systemTags"`
	Comments           []gComment `json:"comments"`
	Evidence           []any      `json:"evidence"`
	times              [2]time.Time
	a                  *alert
}

func (e *Emulator) graphComments(inc *incident) []gComment {
	out := make([]gComment, 0, len(inc.comments))
	for _, c := range inc.comments {
		by := c.authorUPN
		if c.byApp || by == "" {
			by = c.authorName
		}
		out = append(out, gComment{Comment: c.text, CreatedByDisplayName: by, CreatedDateTime: fmtTime(c.created)})
	}
	return out
}

func (e *Emulator) graphIncident(inc *incident, prefer, expand bool) gIncident {
	g := gIncident{
		ID:                 inc.graphID,
		TenantID:           inc.t.ID,
		Status:             visible(gIncidentStatus, inc.status, prefer),
		IncidentWebURL:     inc.webURL(),
		RedirectIncidentID: strOrNull(inc.redirectTo),
		DisplayName:        inc.title,
		CreatedDateTime:    fmtTime(inc.created),
		LastUpdateDateTime: fmtTime(inc.updated),
		Classification:     graphClassification(inc.class),
		Determination:      visible(gDetermination, inc.determination, prefer),
		Severity:           visible(gSeverity, inc.severity, prefer),
		CustomTags:         cloneStrings(inc.tags),
		SystemTags:         cloneStrings(inc.systemTags),
		Description:        strOrNull(inc.description),
		LastModifiedBy:     strOrNull(inc.modifiedBy),
		ResolvingComment:   strOrNull(inc.classComment),
		Summary:            strOrNull(inc.summary),
		Comments:           e.graphComments(inc),
		times:              [2]time.Time{inc.created, inc.updated},
	}
	if a := inc.owner.UPN; a != "" {
		g.AssignedTo = &a
	} else if inc.owner.Name != "" {
		g.AssignedTo = strOrNull(inc.owner.Name)
	}
	if inc.priority >= 0 {
		p := inc.priority
		g.PriorityScore = &p
	}
	if expand {
		alerts := make([]gAlert, 0, len(inc.alerts))
		for _, a := range inc.alerts {
			alerts = append(alerts, e.graphAlert(a, prefer, true))
		}
		g.Alerts = &alerts
	}
	return g
}

func (e *Emulator) graphAlert(a *alert, prefer, withEvidence bool) gAlert {
	inc := a.inc
	t := inc.t
	g := gAlert{
		ODataType:          "#microsoft.graph.security.alert",
		ID:                 a.id,
		ProviderAlertID:    a.id,
		IncidentID:         inc.graphID,
		Status:             visible(gAlertStatus, graphAlertStatus(a.status), prefer),
		Severity:           visible(gSeverity, a.severity, prefer),
		Classification:     a.classification,
		Determination:      visible(gDetermination, a.determination, prefer),
		ServiceSource:      visible(gServiceSource, a.serviceSource, prefer),
		DetectionSource:    visible(gDetectionSource, a.detectionSource, prefer),
		ProductName:        productName(a.serviceSource),
		DetectorID:         a.detectorID,
		TenantID:           t.ID,
		Title:              a.title,
		Description:        a.description,
		RecommendedActions: "Collect artifacts and determine scope\n-\tReview the device timeline for suspicious activities.\n-\tLook for the presence of related artifacts on other systems.",
		Category:           a.category,
		AssignedTo:         strOrNull(a.assignedTo),
		AlertWebURL:        "https://security.microsoft.com/alerts/" + a.id + "?tid=" + t.ID,
		IncidentWebURL:     inc.webURL(),
		MitreTechniques:    cloneStrings(a.mitre),
		CreatedDateTime:    fmtTime(a.created),
		LastUpdateDateTime: fmtTime(a.updated),
		ResolvedDateTime:   timeOrNull(a.resolved),
		FirstActivity:      fmtTime(a.firstAct),
		LastActivity:       fmtTime(a.lastAct),
		SystemTags:         []string{},
		Comments:           []gComment{},
		Evidence:           []any{},
		times:              [2]time.Time{a.created, a.updated},
	}
	if withEvidence {
		g.Evidence = e.evidence(a)
	}
	return g
}

// Filter schemas, by whether the caller opted into evolvable enum members.
var graphIncidentSchemas, graphAlertSchemas [2]*odata.Schema

func init() {
	for i, prefer := range []bool{false, true} {
		graphIncidentSchemas[i] = &odata.Schema{EntityType: "microsoft.graph.security.incident", Fields: map[string]odata.Field{
			"assignedTo":         {Type: odata.TString, Nullable: true, FoldCase: true},
			"classification":     {Type: odata.TEnum, Members: visibleMembers(gClassification, prefer)},
			"createdDateTime":    {Type: odata.TDateTime},
			"determination":      {Type: odata.TEnum, Members: visibleMembers(gDetermination, prefer)},
			"lastUpdateDateTime": {Type: odata.TDateTime},
			"severity":           {Type: odata.TEnum, Members: visibleMembers(gSeverity, prefer)},
			"status":             {Type: odata.TEnum, Members: visibleMembers(gIncidentStatus, prefer)},
		}}
		graphAlertSchemas[i] = &odata.Schema{EntityType: "microsoft.graph.security.alert", Fields: map[string]odata.Field{
			"assignedTo":         {Type: odata.TString, Nullable: true, FoldCase: true},
			"classification":     {Type: odata.TEnum, Members: visibleMembers(gClassification, prefer)},
			"createdDateTime":    {Type: odata.TDateTime},
			"determination":      {Type: odata.TEnum, Members: visibleMembers(gDetermination, prefer)},
			"lastUpdateDateTime": {Type: odata.TDateTime},
			"severity":           {Type: odata.TEnum, Members: visibleMembers(gSeverity, prefer)},
			"status":             {Type: odata.TEnum, Members: visibleMembers(gAlertStatus, prefer)},
			"serviceSource":      {Type: odata.TEnum, Members: visibleMembers(gServiceSource, prefer)},
			"detectionSource":    {Type: odata.TEnum, Members: visibleMembers(gDetectionSource, prefer)},
		}}
	}
}

func schemaFor(s [2]*odata.Schema, prefer bool) *odata.Schema {
	if prefer {
		return s[1]
	}
	return s[0]
}

func (g *gIncident) value(path string) odata.Value {
	switch path {
	case "assignedTo":
		if g.AssignedTo == nil {
			return odata.Value{Null: true}
		}
		return odata.Value{Str: *g.AssignedTo}
	case "classification":
		return odata.Value{Str: g.Classification}
	case "determination":
		return odata.Value{Str: g.Determination}
	case "severity":
		return odata.Value{Str: g.Severity}
	case "status":
		return odata.Value{Str: g.Status}
	case "createdDateTime":
		return odata.Value{Time: g.times[0]}
	case "lastUpdateDateTime":
		return odata.Value{Time: g.times[1]}
	}
	return odata.Value{Null: true}
}

func (g *gAlert) value(path string) odata.Value {
	switch path {
	case "assignedTo":
		if g.AssignedTo == nil {
			return odata.Value{Null: true}
		}
		return odata.Value{Str: *g.AssignedTo}
	case "classification":
		return odata.Value{Str: g.Classification}
	case "determination":
		return odata.Value{Str: g.Determination}
	case "severity":
		return odata.Value{Str: g.Severity}
	case "status":
		return odata.Value{Str: g.Status}
	case "serviceSource":
		return odata.Value{Str: g.ServiceSource}
	case "detectionSource":
		return odata.Value{Str: g.DetectionSource}
	case "createdDateTime":
		return odata.Value{Time: g.times[0]}
	case "lastUpdateDateTime":
		return odata.Value{Time: g.times[1]}
	}
	return odata.Value{Null: true}
}

// listQuery is a parsed Graph collection query.
type listQuery struct {
	filter  odata.Expr
	order   []odata.OrderTerm
	top     int
	topSet  bool
	skip    int
	count   bool
	expand  bool
	orig    url.Values
	schema  *odata.Schema
	context string
}

var graphQueryOptions = []string{"$filter", "$top", "$skip", "$count", "$expand", "$orderby", "$select"}

// parseGraphQuery validates the OData options of a list request; it writes the 400 and
// returns false on a bad one.
func (c *call) parseGraphQuery(schema *odata.Schema, maxTop int, expandable bool) (*listQuery, bool) {
	q := c.r.URL.Query()
	lq := &listQuery{orig: q, schema: schema, top: 50}
	for k := range q {
		if strings.HasPrefix(k, "$") && !slices.Contains(graphQueryOptions, k) {
			c.graphQueryError(fmt.Sprintf("Query option '%s' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.", strings.TrimPrefix(k, "$")))
			return nil, false
		}
	}
	if v, ok := q["$top"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			c.graphQueryError(fmt.Sprintf("Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", v[0]))
			return nil, false
		}
		if n > maxTop {
			c.graphQueryError(fmt.Sprintf("The limit of '%d' for Top query has been exceeded. The value from the incoming request is '%d'.", maxTop, n))
			return nil, false
		}
		lq.top, lq.topSet = n, true
	} else if maxTop < lq.top {
		lq.top = maxTop
	}
	if v, ok := q["$skip"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			c.graphQueryError(fmt.Sprintf("Invalid value '%s' for $skip query option found. The $skip query option requires a non-negative integer value.", v[0]))
			return nil, false
		}
		lq.skip = n
	}
	if v, ok := q["$count"]; ok {
		switch strings.ToLower(v[0]) {
		case "true":
			lq.count = true
		case "false":
		default:
			c.graphQueryError(fmt.Sprintf("'%s' is not a valid count option.", v[0]))
			return nil, false
		}
	}
	if v, ok := q["$expand"]; ok {
		for _, x := range strings.Split(v[0], ",") {
			x = strings.TrimSpace(x)
			if !expandable || x != "alerts" {
				c.graphQueryError(fmt.Sprintf("Could not find a property named '%s' on type '%s'.", x, schema.EntityType))
				return nil, false
			}
			lq.expand = true
		}
	}
	if v, ok := q["$filter"]; ok {
		e, err := odata.Parse(v[0])
		if err == nil {
			err = odata.Check(e, schema)
		}
		if err != nil {
			c.graphQueryError(err.Error())
			return nil, false
		}
		lq.filter = e
	}
	if v, ok := q["$orderby"]; ok {
		terms, err := odata.ParseOrderBy(v[0], schema)
		if err != nil {
			c.graphQueryError(err.Error())
			return nil, false
		}
		lq.order = terms
	}
	return lq, true
}

// nextLink builds a Graph @odata.nextLink: the original query with $skip advanced.
func (c *call) graphNextLink(lq *listQuery, skip int) string {
	q := url.Values{}
	for k, v := range lq.orig {
		q[k] = v
	}
	q.Set("$skip", strconv.Itoa(skip))
	if lq.topSet {
		q.Set("$top", strconv.Itoa(lq.top))
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(strings.ReplaceAll(url.QueryEscape(k), "%24", "$"))
		b.WriteByte('=')
		b.WriteString(strings.ReplaceAll(url.QueryEscape(q.Get(k)), "+", "%20"))
	}
	return c.baseURL() + c.r.URL.Path + "?" + b.String()
}

type graphPage struct {
	Context  string `json:"@odata.context"`
	Count    *int   `json:"@odata.count,omitempty"`
	NextLink string `json:"@odata.nextLink,omitempty"`
	Value    any    `json:"value"`
}

// page applies $skip/$top to items and writes the collection; render, when set, turns each
// item of the page into its final form (so expensive parts are built for one page only).
func page[T any](c *call, lq *listQuery, items []T, render func(T) T) {
	total := len(items)
	start := min(lq.skip, total)
	end := min(start+lq.top, total)
	pageItems := items[start:end]
	if render != nil {
		for i := range pageItems {
			pageItems[i] = render(pageItems[i])
		}
	}
	out := graphPage{Context: lq.context, Value: pageItems}
	if lq.count {
		out.Count = &total
	}
	if end < total && lq.top > 0 {
		out.NextLink = c.graphNextLink(lq, end)
	}
	c.json(http.StatusOK, out)
}

var (
	rolesIncidentRead  = []string{"SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All"}
	rolesIncidentWrite = []string{"SecurityIncident.ReadWrite.All"}
	rolesAlertRead     = []string{"SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"}
)

func (e *Emulator) graphListIncidents(c *call) {
	if !c.authGraph(rolesIncidentRead...) || !c.limitGraph() {
		return
	}
	prefer := c.preferUnknown()
	lq, ok := c.parseGraphQuery(schemaFor(graphIncidentSchemas, prefer), 50, true)
	if !ok {
		return
	}
	lq.context = c.baseURL() + "/v1.0/$metadata#security/incidents"
	if lq.expand {
		lq.context += "(alerts())"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	items := make([]gIncident, 0, len(c.tenant.incidents))
	for _, inc := range c.tenant.incidents {
		if inc.graphID == "" {
			continue
		}
		g := e.graphIncident(inc, prefer, false)
		if lq.filter == nil || odata.Eval(lq.filter, lq.schema, g.value) {
			g.inc = inc
			items = append(items, g)
		}
	}
	// After $orderby: newest first; ties by id, highest first.
	odata.SortBy(items, lq.order, lq.schema, func(g gIncident, p string) odata.Value { return g.value(p) },
		func(a, b gIncident) int { return cmp.Or(b.times[0].Compare(a.times[0]), cmpNumeric(b.ID, a.ID)) })
	var render func(gIncident) gIncident
	if lq.expand {
		render = func(g gIncident) gIncident { return e.graphIncident(g.inc, prefer, true) }
	}
	page(c, lq, items, render)
}

func cmpNumeric(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
}

// graphIncidentByID looks the incident up in the caller's tenant, writing the 404.
func (e *Emulator) graphIncidentByID(c *call) *incident {
	inc := c.tenant.byGraphID[c.p["id"]]
	if inc == nil {
		c.graphError(http.StatusNotFound, "NotFound", "Incident with id '"+c.p["id"]+"' was not found.")
	}
	return inc
}

func (e *Emulator) graphGetIncident(c *call) {
	if !c.authGraph(rolesIncidentRead...) || !c.limitGraph() {
		return
	}
	prefer := c.preferUnknown()
	q := c.r.URL.Query()
	expand := false
	if v := q.Get("$expand"); v != "" {
		if v != "alerts" {
			c.graphQueryError(fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.security.incident'.", v))
			return
		}
		expand = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	inc := e.graphIncidentByID(c)
	if inc == nil {
		return
	}
	g := e.graphIncident(inc, prefer, expand)
	g.Context = c.baseURL() + "/v1.0/$metadata#security/incidents/$entity"
	c.json(http.StatusOK, g)
}

// graphPatch is a validated PATCH body.
type graphPatch struct {
	assignedTo, classification, determination, status, severity  *string
	description, displayName, resolvingComment, summary, comment *string
	customTags                                                   *[]string
}

// Read-only incident properties a PATCH may carry and Graph ignores.
var graphReadOnly = []string{"id", "tenantId", "incidentWebUrl", "createdDateTime", "lastUpdateDateTime",
	"lastModifiedBy", "redirectIncidentId", "systemTags", "priorityScore", "comments", "alerts"}

// parseGraphPatch validates a PATCH body. admin allows the remote analyst's extra "comment"
// and the awaitingAction status (Defender Experts).
func parseGraphPatch(body []byte, admin bool) (*graphPatch, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, badf("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	p := &graphPatch{}
	str := func(k string, v json.RawMessage) (*string, error) {
		if string(v) == "null" {
			s := ""
			return &s, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, badf("Cannot convert the literal '%s' to the expected type 'Edm.String' for property '%s'.", strings.Trim(string(v), `"`), k)
		}
		return &s, nil
	}
	enum := func(k string, v json.RawMessage, members []string, typ string) (*string, error) {
		s, err := str(k, v)
		if err != nil {
			return nil, err
		}
		m, ok := canon(members, *s)
		if !ok && k == "determination" {
			m, ok = gDeterminationAliases[strings.ToLower(*s)]
		}
		if !ok || m == "unknownFutureValue" {
			return nil, badf("Cannot convert the literal '%s' to the expected type 'microsoft.graph.security.%s'.", *s, typ)
		}
		return &m, nil
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := raw[k]
		var err error
		switch k {
		case "assignedTo":
			p.assignedTo, err = str(k, v)
		case "classification":
			p.classification, err = enum(k, v, gClassification, "alertClassification")
		case "determination":
			p.determination, err = enum(k, v, gDetermination, "alertDetermination")
		case "severity":
			p.severity, err = enum(k, v, gSeverity, "alertSeverity")
		case "status":
			p.status, err = enum(k, v, gIncidentStatus, "incidentStatus")
			if err == nil && *p.status == "awaitingAction" && !admin {
				err = badf("The status 'awaitingAction' can only be set by Microsoft Defender Experts.")
			}
		case "description":
			p.description, err = str(k, v)
		case "displayName":
			p.displayName, err = str(k, v)
			if err == nil && strings.TrimSpace(*p.displayName) == "" {
				err = badf("The property 'displayName' cannot be empty.")
			}
		case "resolvingComment":
			p.resolvingComment, err = str(k, v)
		case "summary":
			p.summary, err = str(k, v)
		case "customTags":
			var tags []string
			if string(v) != "null" {
				if err = json.Unmarshal(v, &tags); err != nil {
					err = badf("Cannot convert the value of property 'customTags' to a collection of Edm.String.")
				}
			}
			if tags == nil {
				tags = []string{}
			}
			p.customTags = &tags
		case "comment":
			if !admin {
				err = badf("The property 'comment' does not exist on type 'microsoft.graph.security.incident'. Make sure to only use property names that are defined by the type or mark the type as open type.")
				break
			}
			p.comment, err = str(k, v)
		default:
			if strings.HasPrefix(k, "@odata.") || slices.Contains(graphReadOnly, k) {
				continue
			}
			err = badf("The property '%s' does not exist on type 'microsoft.graph.security.incident'. Make sure to only use property names that are defined by the type or mark the type as open type.", k)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// apply applies a validated PATCH to inc through m.
func (p *graphPatch) apply(m *mutation) {
	inc := m.inc
	if p.displayName != nil {
		m.setTitle(*p.displayName)
	}
	if p.description != nil {
		m.setDescription(*p.description)
	}
	if p.summary != nil {
		m.setSummary(*p.summary)
	}
	if p.severity != nil {
		m.setSeverity(*p.severity)
	}
	if p.assignedTo != nil {
		if u := inc.t.lookupUser(*p.assignedTo); u != nil {
			m.setOwner(ownerFromUser(u))
		} else if *p.assignedTo == "" {
			m.setOwner(owner{})
		} else {
			m.setOwner(owner{UPN: *p.assignedTo, Email: *p.assignedTo})
		}
	}
	if p.classification != nil || p.determination != nil {
		class := inc.class
		if p.classification != nil {
			class = sentinelClassification(*p.classification)
			if class == "" && inc.class == "Undetermined" {
				class = "Undetermined"
			}
		}
		det := inc.determination
		if p.determination != nil {
			det = *p.determination
		}
		m.setClassification(class, reasonFor(class, det), det)
	}
	if p.resolvingComment != nil {
		m.setClassComment(*p.resolvingComment)
	}
	if p.customTags != nil {
		m.setTags(*p.customTags)
	}
	if p.status != nil {
		m.setStatus(*p.status)
	}
}

func (e *Emulator) graphPatchIncident(c *call) {
	if !c.authGraph(rolesIncidentWrite...) || !c.limitGraph() {
		return
	}
	prefer := c.preferUnknown()
	body, ok := c.readBody(1 << 20)
	if !ok {
		return
	}
	p, err := parseGraphPatch(body, false)
	if err != nil {
		c.graphError(http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	inc := e.graphIncidentByID(c)
	if inc == nil {
		return
	}
	by := "API-App:" + c.principal
	m := e.mutate(inc, "graph", by)
	p.apply(m)
	m.commit(by)
	g := e.graphIncident(inc, prefer, false)
	g.Context = c.baseURL() + "/v1.0/$metadata#security/incidents/$entity"
	c.json(http.StatusOK, g)
}

// readBody reads the request body up to limit bytes, writing a 413 beyond it.
func (c *call) readBody(limit int64) ([]byte, bool) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(http.MaxBytesReader(c.w, c.r.Body, limit))
	if err != nil {
		if n >= limit {
			c.graphError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is too large.")
		} else {
			c.graphError(http.StatusBadRequest, "BadRequest", "Unable to read the request body.")
		}
		return nil, false
	}
	return buf.Bytes(), true
}

func (e *Emulator) graphPostComment(c *call) {
	if !c.authGraph(rolesIncidentWrite...) || !c.limitGraph() {
		return
	}
	body, ok := c.readBody(1 << 20)
	if !ok {
		return
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		c.graphError(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return
	}
	var text string
	if v, ok := req["comment"]; !ok || json.Unmarshal(v, &text) != nil || strings.TrimSpace(text) == "" {
		c.graphError(http.StatusBadRequest, "BadRequest", "The 'comment' property is required and must be a non-empty string.")
		return
	}
	for k := range req {
		if k != "comment" && !strings.HasPrefix(k, "@odata.") {
			c.graphError(http.StatusBadRequest, "BadRequest", "The property '"+k+"' does not exist on type 'microsoft.graph.security.alertComment'. Make sure to only use property names that are defined by the type or mark the type as open type.")
			return
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	inc := e.graphIncidentByID(c)
	if inc == nil {
		return
	}
	a := e.apps[c.principal]
	by := "API-App:" + c.principal
	m := e.mutate(inc, "graph", by)
	m.addComment("", text, owner{Name: a.Name, ObjectID: e.spObjectID(a, inc.t)}, true)
	m.commit(by)
	c.json(http.StatusOK, graphPage{
		Context: c.baseURL() + "/v1.0/$metadata#security/incidents('" + inc.graphID + "')/comments",
		Value:   e.graphComments(inc),
	})
}

func (e *Emulator) graphListAlerts(c *call) {
	if !c.authGraph(rolesAlertRead...) || !c.limitGraph() {
		return
	}
	prefer := c.preferUnknown()
	lq, ok := c.parseGraphQuery(schemaFor(graphAlertSchemas, prefer), 2000, false)
	if !ok {
		return
	}
	if !lq.topSet {
		lq.top = 2000
	}
	lq.context = c.baseURL() + "/v1.0/$metadata#security/alerts_v2"
	e.mu.Lock()
	defer e.mu.Unlock()
	var items []gAlert
	for _, inc := range c.tenant.incidents {
		if inc.graphID == "" {
			continue
		}
		for _, a := range inc.alerts {
			g := e.graphAlert(a, prefer, false)
			if lq.filter == nil || odata.Eval(lq.filter, lq.schema, g.value) {
				g.a = a
				items = append(items, g)
			}
		}
	}
	if items == nil {
		items = []gAlert{}
	}
	odata.SortBy(items, lq.order, lq.schema, func(g gAlert, p string) odata.Value { return g.value(p) },
		func(a, b gAlert) int { return cmp.Or(b.times[0].Compare(a.times[0]), strings.Compare(b.ID, a.ID)) })
	page(c, lq, items, func(g gAlert) gAlert { return e.graphAlert(g.a, prefer, true) })
}

func (e *Emulator) graphGetAlert(c *call) {
	if !c.authGraph(rolesAlertRead...) || !c.limitGraph() {
		return
	}
	prefer := c.preferUnknown()
	e.mu.Lock()
	defer e.mu.Unlock()
	a := c.tenant.alerts[c.p["id"]]
	if a == nil || a.inc.graphID == "" || a.id != c.p["id"] {
		c.graphError(http.StatusNotFound, "NotFound", "Alert with id '"+c.p["id"]+"' was not found.")
		return
	}
	g := e.graphAlert(a, prefer, true)
	g.Context = c.baseURL() + "/v1.0/$metadata#security/alerts_v2/$entity"
	c.json(http.StatusOK, g)
}
