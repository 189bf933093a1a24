package emulator

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/socsync/socsync/internal/emulator/odata"
)

// SentinelAPIVersions are the stable Microsoft.SecurityInsights api-versions the emulator
// accepts (all answer with the 2025-12-01 shapes); any other gets ARM's 400.
var SentinelAPIVersions = []string{"2025-12-01", "2025-09-01", "2025-06-01", "2025-03-01", "2024-09-01",
	"2024-03-01", "2023-11-01", "2021-10-01", "2021-04-01"}

// Sentinel service limits.
const (
	maxCommentsPerIncident = 100
	maxCommentChars        = 30_000
	maxDescriptionChars    = 5_000
	sentinelDefaultPage    = 50
	sentinelMaxTop         = 1000
)

func (c *call) armError(status int, code, msg string) {
	rid := c.requestID()
	c.w.Header().Set("x-ms-request-id", rid)
	c.w.Header().Set("x-ms-correlation-request-id", rid)
	c.w.Header().Set("x-ms-failure-cause", "gateway")
	c.json(status, obj{{"error", obj{{"code", code}, {"message", msg}}}})
}

// armBegin runs the checks every Sentinel operation shares: authentication, rate limits,
// api-version, the workspace and the caller's role on it. It writes the error and returns nil
// when the request stops.
func (c *call) armBegin(sentinelClass string) *workspace {
	w := c.armWorkspace(SentinelAPIVersions, sentinelClass)
	if w == nil || !c.authorizeSentinel(w) {
		return nil
	}
	return w
}

// armWorkspace runs the checks every operation on a workspace shares: authentication, rate
// limits, an api-version of versions, and the workspace itself.
func (c *call) armWorkspace(versions []string, sentinelClass string) *workspace {
	if !c.authARM() || !c.limitARM(sentinelClass) {
		return nil
	}
	v, ok := c.r.URL.Query()["api-version"]
	if !ok || v[0] == "" {
		c.armError(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return nil
	}
	if !slices.Contains(versions, v[0]) {
		c.armError(http.StatusBadRequest, "InvalidApiVersionParameter", fmt.Sprintf("The api-version '%s' is invalid. The supported versions are '%s'.", v[0], strings.Join(versions, ",")))
		return nil
	}
	c.w.Header().Set("x-ms-request-id", c.requestID())
	rg, name := c.p["resourceGroupName"], c.p["workspaceName"]
	rgFound := false
	for _, w := range c.tenant.Workspaces {
		if strings.EqualFold(w.Sub, c.sub) && strings.EqualFold(w.RG, rg) {
			rgFound = true
			if strings.EqualFold(w.Name, name) {
				return w
			}
		}
	}
	if !rgFound {
		c.armError(http.StatusNotFound, "ResourceGroupNotFound", fmt.Sprintf("Resource group '%s' could not be found.", rg))
		return nil
	}
	c.armError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource 'Microsoft.OperationalInsights/workspaces/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", name, rg))
	return nil
}

// withIncident runs the shared checks, then f with e.mu held on the incident the path names
// (after writing the 404 when there is none).
func (e *Emulator) withIncident(c *call, sentinelClass string, f func(w *workspace, inc *incident)) {
	w := c.armBegin(sentinelClass)
	if w == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if inc := c.armIncident(w); inc != nil {
		f(w, inc)
	}
}

func (c *call) armIncident(w *workspace) *incident {
	inc := w.byName[strings.ToLower(c.p["incidentId"])]
	if inc == nil {
		c.armError(http.StatusNotFound, "NotFound", fmt.Sprintf("Incident '%s' was not found in workspace '%s'.", c.p["incidentId"], w.Name))
	}
	return inc
}

// Sentinel wire shapes (field order as in the 2025-12-01 examples).
type sOwner struct {
	ObjectID          *string `json:"objectId"`
	Email             *string `json:"email"`
	AssignedTo        *string `json:"assignedTo"`
	UserPrincipalName *string `json:"userPrincipalName"`
	OwnerType         string  `json:"ownerType"`
}

type sLabel struct {
	LabelName string `json:"labelName"`
	LabelType string `json:"labelType"`
}

type sAdditional struct {
	AlertsCount         int      `json:"alertsCount"`
	BookmarksCount      int      `json:"bookmarksCount"`
	CommentsCount       int      `json:"commentsCount"`
	AlertProductNames   []string `json:"alertProductNames"`
	Tactics             []string `json:"tactics"`
	ProviderIncidentURL string   `json:"providerIncidentUrl,omitempty"`
}

type sIncidentProps struct {
	LastModifiedTimeUtc   string      `json:"lastModifiedTimeUtc"`
	CreatedTimeUtc        string      `json:"createdTimeUtc"`
	LastActivityTimeUtc   *string     `json:"lastActivityTimeUtc,omitempty"`
	FirstActivityTimeUtc  *string     `json:"firstActivityTimeUtc,omitempty"`
	Description           string      `json:"description"`
	Title                 string      `json:"title"`
	Owner                 sOwner      `json:"owner"`
	Severity              string      `json:"severity"`
	Classification        string      `json:"classification,omitempty"`
	ClassificationComment string      `json:"classificationComment,omitempty"`
	ClassificationReason  string      `json:"classificationReason,omitempty"`
	Status                string      `json:"status"`
	IncidentURL           string      `json:"incidentUrl"`
	IncidentNumber        int         `json:"incidentNumber"`
	Labels                []sLabel    `json:"labels"`
	ProviderName          string      `json:"providerName"`
	ProviderIncidentID    string      `json:"providerIncidentId"`
	RelatedAnalyticRules  []string    `json:"relatedAnalyticRuleIds"`
	AdditionalData        sAdditional `json:"additionalData"`
}

type sIncident struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Etag       string         `json:"etag"`
	Properties sIncidentProps `json:"properties"`
	inc        *incident
}

func (e *Emulator) sentinelIncident(inc *incident) sIncident {
	o := inc.owner
	ownerType := "Unknown"
	if o.ObjectID != "" {
		ownerType = "User"
	}
	labels := make([]sLabel, 0, len(inc.tags)+len(inc.autoLabels))
	for _, l := range inc.tags {
		labels = append(labels, sLabel{LabelName: l, LabelType: "User"})
	}
	for _, l := range inc.autoLabels {
		labels = append(labels, sLabel{LabelName: l, LabelType: "AutoAssigned"})
	}
	p := sIncidentProps{
		LastModifiedTimeUtc:  fmtTime(inc.updated),
		CreatedTimeUtc:       fmtTime(inc.created),
		LastActivityTimeUtc:  timeOrNull(inc.lastAct),
		FirstActivityTimeUtc: timeOrNull(inc.firstAct),
		Description:          inc.description,
		Title:                inc.title,
		Owner: sOwner{ObjectID: strOrNull(o.ObjectID), Email: strOrNull(o.Email), AssignedTo: strOrNull(o.Name),
			UserPrincipalName: strOrNull(o.UPN), OwnerType: ownerType},
		Severity:              sentinelSeverity(inc.severity),
		Classification:        inc.sentinelClass(),
		ClassificationComment: inc.classComment,
		ClassificationReason:  inc.reason,
		Status:                sentinelStatus(inc.status),
		IncidentURL:           "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident" + inc.armID(),
		IncidentNumber:        inc.number,
		Labels:                labels,
		ProviderName:          inc.provider,
		ProviderIncidentID:    inc.providerID,
		RelatedAnalyticRules:  cloneStrings(inc.ruleIDs),
		AdditionalData: sAdditional{
			AlertsCount: len(inc.alerts), CommentsCount: len(inc.comments),
			AlertProductNames: inc.productNames(), Tactics: inc.tactics(), ProviderIncidentURL: inc.providerURL,
		},
	}
	return sIncident{ID: inc.armID(), Name: inc.name, Type: "Microsoft.SecurityInsights/incidents", Etag: inc.etag(e.seed), Properties: p, inc: inc}
}

var sentinelSchema = &odata.Schema{
	EntityType: "Microsoft.SecurityInsights.Incident",
	Functions:  true,
	Fields: map[string]odata.Field{
		"name":                                     {Type: odata.TString, FoldCase: true},
		"properties/title":                         {Type: odata.TString, FoldCase: true},
		"properties/description":                   {Type: odata.TString, Nullable: true, FoldCase: true},
		"properties/severity":                      {Type: odata.TString, FoldCase: true},
		"properties/status":                        {Type: odata.TString, FoldCase: true},
		"properties/classification":                {Type: odata.TString, Nullable: true, FoldCase: true},
		"properties/classificationReason":          {Type: odata.TString, Nullable: true, FoldCase: true},
		"properties/classificationComment":         {Type: odata.TString, Nullable: true, FoldCase: true},
		"properties/incidentNumber":                {Type: odata.TInt},
		"properties/createdTimeUtc":                {Type: odata.TDateTime},
		"properties/lastModifiedTimeUtc":           {Type: odata.TDateTime},
		"properties/firstActivityTimeUtc":          {Type: odata.TDateTime, Nullable: true},
		"properties/lastActivityTimeUtc":           {Type: odata.TDateTime, Nullable: true},
		"properties/owner/assignedTo":              {Type: odata.TString, Nullable: true, FoldCase: true},
		"properties/owner/email":                   {Type: odata.TString, Nullable: true, FoldCase: true},
		"properties/owner/userPrincipalName":       {Type: odata.TString, Nullable: true, FoldCase: true},
		"properties/owner/objectId":                {Type: odata.TString, Nullable: true, FoldCase: true},
		"properties/providerName":                  {Type: odata.TString, FoldCase: true},
		"properties/providerIncidentId":            {Type: odata.TString, FoldCase: true},
		"properties/additionalData/alertsCount":    {Type: odata.TInt},
		"properties/additionalData/commentsCount":  {Type: odata.TInt},
		"properties/additionalData/bookmarksCount": {Type: odata.TInt},
	},
}

func strVal(p *string) odata.Value {
	if p == nil || *p == "" {
		return odata.Value{Null: true}
	}
	return odata.Value{Str: *p}
}

func (s *sIncident) value(path string) odata.Value {
	p := &s.Properties
	inc := s.inc
	switch path {
	case "name":
		return odata.Value{Str: s.Name}
	case "properties/title":
		return odata.Value{Str: p.Title}
	case "properties/description":
		return strVal(&p.Description)
	case "properties/severity":
		return odata.Value{Str: p.Severity}
	case "properties/status":
		return odata.Value{Str: p.Status}
	case "properties/classification":
		// Known service bug (azure-rest-api-specs#27165): filtering on 'Undetermined' finds
		// nothing, as if the stored value were null.
		if p.Classification == "Undetermined" {
			return odata.Value{Null: true}
		}
		return strVal(&p.Classification)
	case "properties/classificationReason":
		return strVal(&p.ClassificationReason)
	case "properties/classificationComment":
		return strVal(&p.ClassificationComment)
	case "properties/incidentNumber":
		return odata.Value{Num: float64(p.IncidentNumber)}
	case "properties/createdTimeUtc":
		return odata.Value{Time: inc.created}
	case "properties/lastModifiedTimeUtc":
		return odata.Value{Time: inc.updated}
	case "properties/firstActivityTimeUtc":
		return odata.Value{Time: inc.firstAct, Null: inc.firstAct.IsZero()}
	case "properties/lastActivityTimeUtc":
		return odata.Value{Time: inc.lastAct, Null: inc.lastAct.IsZero()}
	case "properties/owner/assignedTo":
		return strVal(p.Owner.AssignedTo)
	case "properties/owner/email":
		return strVal(p.Owner.Email)
	case "properties/owner/userPrincipalName":
		return strVal(p.Owner.UserPrincipalName)
	case "properties/owner/objectId":
		return strVal(p.Owner.ObjectID)
	case "properties/providerName":
		return odata.Value{Str: p.ProviderName}
	case "properties/providerIncidentId":
		return odata.Value{Str: p.ProviderIncidentID}
	case "properties/additionalData/alertsCount":
		return odata.Value{Num: float64(p.AdditionalData.AlertsCount)}
	case "properties/additionalData/commentsCount":
		return odata.Value{Num: float64(p.AdditionalData.CommentsCount)}
	case "properties/additionalData/bookmarksCount":
		return odata.Value{Num: 0}
	}
	return odata.Value{Null: true}
}

// skipToken encodes a list offset as an opaque token (URL-safe, no characters a client
// must escape).
func skipToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset)))
}

func parseSkipToken(tok string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	s, ok := strings.CutPrefix(string(b), "o:")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// unescapedQueryValue writes a query value the way Sentinel's nextLinks carry it: not
// percent-encoded (spaces, quotes and colons raw), except for the few characters that would
// change how a URL parser splits the query (%, &, #, +).
func unescapedQueryValue(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B").Replace(s)
}

func (e *Emulator) armListIncidents(c *call) {
	w := c.armBegin(sentinelNone)
	if w == nil {
		return
	}
	q := c.r.URL.Query()
	top := sentinelDefaultPage
	if v, ok := q["$top"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > sentinelMaxTop {
			c.armError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The value '%s' of the $top query parameter is invalid. It must be an integer between 1 and %d.", v[0], sentinelMaxTop))
			return
		}
		top = n
	}
	offset := 0
	if v, ok := q["$skipToken"]; ok {
		n, ok := parseSkipToken(v[0])
		if !ok {
			c.armError(http.StatusBadRequest, "BadRequest", "The $skipToken query parameter is invalid.")
			return
		}
		offset = n
	}
	var filter odata.Expr
	if v, ok := q["$filter"]; ok {
		f, err := odata.Parse(v[0])
		if err == nil {
			err = odata.Check(f, sentinelSchema)
		}
		if err != nil {
			c.armError(http.StatusBadRequest, "BadRequest", "Invalid $filter: "+err.Error())
			return
		}
		filter = f
	}
	order := []odata.OrderTerm{{Path: "properties/createdTimeUtc", Desc: true}}
	if v, ok := q["$orderby"]; ok {
		terms, err := odata.ParseOrderBy(v[0], sentinelSchema)
		if err != nil {
			c.armError(http.StatusBadRequest, "BadRequest", "Invalid $orderby: "+err.Error())
			return
		}
		order = terms
	}
	e.mu.Lock()
	items := make([]sIncident, 0, len(w.byName))
	for _, inc := range c.tenant.incidents {
		if inc.ws != w {
			continue
		}
		s := e.sentinelIncident(inc)
		if filter == nil || odata.Eval(filter, sentinelSchema, s.value) {
			items = append(items, s)
		}
	}
	// Sorting reads the incidents themselves (sIncident.value), so it holds the lock too.
	odata.SortBy(items, order, sentinelSchema, func(s sIncident, p string) odata.Value { return s.value(p) },
		func(a, b sIncident) int { return cmp.Compare(b.Properties.IncidentNumber, a.Properties.IncidentNumber) })
	e.mu.Unlock()
	start := min(offset, len(items))
	end := min(start+top, len(items))
	out := map[string]any{"value": items[start:end]}
	if end < len(items) {
		link := c.baseURL() + c.r.URL.Path + "?api-version=" + q.Get("api-version")
		for _, k := range []string{"$filter", "$orderby"} {
			if v := q.Get(k); v != "" {
				link += "&" + k + "=" + unescapedQueryValue(v)
			}
		}
		link += "&$top=" + strconv.Itoa(top) + "&$skipToken=" + skipToken(end)
		out["nextLink"] = link
	}
	c.json(http.StatusOK, out)
}

func (e *Emulator) armGetIncident(c *call) {
	e.withIncident(c, sentinelNone, func(_ *workspace, inc *incident) {
		c.json(http.StatusOK, e.sentinelIncident(inc))
	})
}

// sPut is the body of PUT …/incidents/{id}. Pointers distinguish absent from empty.
type sPut struct {
	Etag       *string `json:"etag"`
	Properties *struct {
		Title                 *string      `json:"title"`
		Severity              *string      `json:"severity"`
		Status                *string      `json:"status"`
		Classification        *string      `json:"classification"`
		ClassificationReason  *string      `json:"classificationReason"`
		ClassificationComment *string      `json:"classificationComment"`
		Description           *string      `json:"description"`
		Owner                 *sOwnerInput `json:"owner"`
		Labels                []sLabel     `json:"labels"`
		FirstActivityTimeUtc  *string      `json:"firstActivityTimeUtc"`
		LastActivityTimeUtc   *string      `json:"lastActivityTimeUtc"`
	} `json:"properties"`
}

type sOwnerInput struct {
	ObjectID          *string `json:"objectId"`
	Email             *string `json:"email"`
	AssignedTo        *string `json:"assignedTo"`
	UserPrincipalName *string `json:"userPrincipalName"`
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// resolveOwner fills an owner from the directory, as Sentinel does from an objectId (or UPN).
func (t *tenant) resolveOwner(in *sOwnerInput) owner {
	if in == nil {
		return owner{}
	}
	for _, k := range []string{deref(in.ObjectID), deref(in.UserPrincipalName), deref(in.Email)} {
		if u := t.lookupUser(k); u != nil {
			return ownerFromUser(u)
		}
	}
	return owner{ObjectID: deref(in.ObjectID), UPN: deref(in.UserPrincipalName), Email: deref(in.Email), Name: deref(in.AssignedTo)}
}

// sentinelEdit is a validated Sentinel incident write (a PUT body or an admin change).
type sentinelEdit struct {
	title, severity, status, class, reason, classComment, description string
	owner                                                             owner
	labels                                                            []string
	firstAct, lastAct                                                 *string
}

func validateSentinelEdit(title, severity, status, class, reason, description string) (sentinelEdit, error) {
	var ed sentinelEdit
	if strings.TrimSpace(title) == "" {
		return ed, badf("The title field is required.")
	}
	sev, ok := canon(sSeverity, severity)
	if !ok {
		return ed, badf("The severity field is required and must be one of High, Medium, Low, Informational; got '%s'.", severity)
	}
	st, ok := canon(sStatus, status)
	if !ok {
		return ed, badf("The status field is required and must be one of New, Active, Closed; got '%s'.", status)
	}
	ed.title, ed.severity, ed.status, ed.description = title, sev, st, description
	if utf8.RuneCountInString(description) > maxDescriptionChars {
		return ed, badf("The description exceeds the maximum length of %d characters.", maxDescriptionChars)
	}
	if class != "" {
		if ed.class, ok = canon(sClassification, class); !ok {
			return ed, badf("The classification '%s' is not valid. Valid values are Undetermined, TruePositive, BenignPositive, FalsePositive.", class)
		}
	}
	if reason != "" {
		if ed.reason, ok = canon(sReason, reason); !ok {
			return ed, badf("The classificationReason '%s' is not valid. Valid values are SuspiciousActivity, SuspiciousButExpected, IncorrectAlertLogic, InaccurateData.", reason)
		}
	}
	if st == "Closed" {
		if ed.class == "" {
			return ed, badf("Incident with status 'Closed' must have classification.")
		}
		if ed.class != "Undetermined" && ed.reason == "" {
			return ed, badf("classification '%s' must have classificationReason.", ed.class)
		}
	}
	return ed, nil
}

// apply writes a Sentinel edit (full replacement of the writable fields) through m.
func (ed sentinelEdit) apply(m *mutation) {
	inc := m.inc
	m.setTitle(ed.title)
	m.setDescription(ed.description)
	sev := graphSeverity(ed.severity)
	if sentinelSeverity(inc.severity) == ed.severity {
		sev = inc.severity // keep Graph's "unknown"
	}
	m.setSeverity(sev)
	m.setOwner(ed.owner)
	m.setTags(ed.labels)
	m.setClassification(ed.class, ed.reason, determinationFor(ed.class, ed.reason, inc.determination))
	m.setClassComment(ed.classComment)
	if ed.firstAct != nil {
		if t, err := odata.ParseDateTime(*ed.firstAct); err == nil {
			inc.firstAct = t
		}
	}
	if ed.lastAct != nil {
		if t, err := odata.ParseDateTime(*ed.lastAct); err == nil {
			inc.lastAct = t
		}
	}
	m.setStatus(graphStatus(ed.status, inc.status)) // closing resolves open alerts (also Defender for Cloud's)
}

func (e *Emulator) armPutIncident(c *call) {
	w := c.armBegin(sentinelWrite)
	if w == nil {
		return
	}
	var body sPut
	raw, ok := c.readARMBody()
	if !ok {
		return
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		c.armError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '"+err.Error()+"'.")
		return
	}
	if body.Properties == nil {
		c.armError(http.StatusBadRequest, "BadRequest", "The properties field is required.")
		return
	}
	p := body.Properties
	ed, err := validateSentinelEdit(deref(p.Title), deref(p.Severity), deref(p.Status), deref(p.Classification), deref(p.ClassificationReason), deref(p.Description))
	if err != nil {
		c.armError(http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	ed.classComment = deref(p.ClassificationComment)
	ed.firstAct, ed.lastAct = p.FirstActivityTimeUtc, p.LastActivityTimeUtc
	for _, l := range p.Labels {
		if l.LabelType == "AutoAssigned" {
			continue // read-only labels the service assigned
		}
		if strings.TrimSpace(l.LabelName) == "" {
			c.armError(http.StatusBadRequest, "BadRequest", "The labelName field of a label is required.")
			return
		}
		ed.labels = append(ed.labels, l.LabelName)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	by := "API-App:" + c.principal
	inc := w.byName[strings.ToLower(c.p["incidentId"])]
	status := http.StatusOK
	if inc == nil {
		// Create: a Sentinel-only incident with the client's id.
		e.seq++
		at := e.now()
		w.nextNumber++
		inc = &incident{seq: e.seq, t: w.Tenant, ws: w, name: c.p["incidentId"], number: w.nextNumber,
			provider: "Azure Sentinel", providerID: strconv.Itoa(w.nextNumber), status: "active",
			severity: "medium", determination: "unknown", priority: -1, created: at, updated: at}
		w.byName[strings.ToLower(inc.name)] = inc
		w.Tenant.incidents = append(w.Tenant.incidents, inc)
		status = http.StatusCreated
	} else if body.Etag != nil && *body.Etag != "" && strings.Trim(*body.Etag, `"`) != strings.Trim(inc.etag(e.seed), `"`) {
		c.armError(http.StatusConflict, "Conflict", fmt.Sprintf("Newer version of resource '%s' exists. Data was not saved", inc.name))
		return
	}
	ed.owner = inc.t.resolveOwner(p.Owner)
	m := e.mutate(inc, "sentinel", by)
	if status == http.StatusCreated {
		m.note("created", "", ed.title)
	}
	ed.apply(m)
	m.commit(by)
	c.json(status, e.sentinelIncident(inc))
}

func (c *call) readARMBody() ([]byte, bool) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(c.w, c.r.Body, 4<<20)); err != nil {
		c.armError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request content is too large.")
		return nil, false
	}
	return buf.Bytes(), true
}

func (e *Emulator) armDeleteIncident(c *call) {
	w := c.armBegin(sentinelNone)
	if w == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	inc := w.byName[strings.ToLower(c.p["incidentId"])]
	if inc == nil {
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	delete(w.byName, strings.ToLower(inc.name))
	inc.ws = nil
	m := e.mutate(inc, "sentinel", "API-App:"+c.principal)
	m.note("deleted", inc.name, "")
	m.flush()
	if inc.graphID == "" {
		e.removeIncident(inc)
	}
	c.w.WriteHeader(http.StatusOK)
}

// Sentinel comments.
type sAuthor struct {
	ObjectID          *string `json:"objectId"`
	Email             *string `json:"email"`
	UserPrincipalName *string `json:"userPrincipalName"`
	Name              *string `json:"name"`
}

type sComment struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Etag       string `json:"etag"`
	Properties struct {
		Message             string  `json:"message"`
		CreatedTimeUtc      string  `json:"createdTimeUtc"`
		LastModifiedTimeUtc string  `json:"lastModifiedTimeUtc"`
		Author              sAuthor `json:"author"`
	} `json:"properties"`
}

func (e *Emulator) sentinelComment(inc *incident, cm *comment) sComment {
	var s sComment
	s.ID = inc.armID() + "/comments/" + cm.name
	s.Name = cm.name
	s.Type = "Microsoft.SecurityInsights/incidents/comments"
	s.Etag = cm.etag(inc)
	s.Properties.Message = cm.text
	s.Properties.CreatedTimeUtc = fmtTime(cm.created)
	s.Properties.LastModifiedTimeUtc = fmtTime(cm.modified)
	s.Properties.Author = sAuthor{ObjectID: strOrNull(cm.authorOID), Email: strOrNull(cm.authorEmail),
		UserPrincipalName: strOrNull(cm.authorUPN), Name: strOrNull(cm.authorName)}
	return s
}

func findComment(inc *incident, name string) (int, *comment) {
	for i, cm := range inc.comments {
		if strings.EqualFold(cm.name, name) {
			return i, cm
		}
	}
	return -1, nil
}

func (e *Emulator) armListComments(c *call) {
	e.withIncident(c, sentinelRead, func(_ *workspace, inc *incident) {
		out := make([]sComment, 0, len(inc.comments))
		for _, cm := range inc.comments {
			out = append(out, e.sentinelComment(inc, cm))
		}
		c.json(http.StatusOK, map[string]any{"value": out})
	})
}

func (c *call) commentNotFound(inc *incident) {
	c.armError(http.StatusNotFound, "NotFound", fmt.Sprintf("Comment '%s' was not found for incident '%s'.", c.p["incidentCommentId"], inc.name))
}

func (e *Emulator) armGetComment(c *call) {
	e.withIncident(c, sentinelRead, func(_ *workspace, inc *incident) {
		if _, cm := findComment(inc, c.p["incidentCommentId"]); cm != nil {
			c.json(http.StatusOK, e.sentinelComment(inc, cm))
		} else {
			c.commentNotFound(inc)
		}
	})
}

func (e *Emulator) armPutComment(c *call) {
	w := c.armBegin(sentinelWrite)
	if w == nil {
		return
	}
	raw, ok := c.readARMBody()
	if !ok {
		return
	}
	var body struct {
		Properties *struct {
			Message *string `json:"message"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		c.armError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '"+err.Error()+"'.")
		return
	}
	if body.Properties == nil || body.Properties.Message == nil || strings.TrimSpace(*body.Properties.Message) == "" {
		c.armError(http.StatusBadRequest, "BadRequest", "The message field is required.")
		return
	}
	msg := *body.Properties.Message
	if n := utf8.RuneCountInString(msg); n > maxCommentChars {
		c.armError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The comment message has %d characters; the maximum is %d.", n, maxCommentChars))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	inc := c.armIncident(w)
	if inc == nil {
		return
	}
	by := "API-App:" + c.principal
	_, cm := findComment(inc, c.p["incidentCommentId"])
	m := e.mutate(inc, "sentinel", by)
	status := http.StatusOK
	if cm == nil {
		if len(inc.comments) >= maxCommentsPerIncident {
			c.armError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The incident '%s' already has the maximum of %d comments.", inc.name, maxCommentsPerIncident))
			return
		}
		a := e.apps[c.principal]
		cm = m.addComment(c.p["incidentCommentId"], msg, owner{Name: a.Name, ObjectID: e.spObjectID(a, inc.t)}, true)
		status = http.StatusCreated
	} else {
		m.note("comment.edit", cm.text, msg)
		cm.text, cm.modified = msg, m.at
		cm.version++
	}
	m.commit(by)
	c.json(status, e.sentinelComment(inc, cm))
}

func (e *Emulator) armDeleteComment(c *call) {
	e.withIncident(c, sentinelNone, func(_ *workspace, inc *incident) {
		i, cm := findComment(inc, c.p["incidentCommentId"])
		if cm == nil {
			c.w.WriteHeader(http.StatusNoContent)
			return
		}
		by := "API-App:" + c.principal
		m := e.mutate(inc, "sentinel", by)
		m.note("comment.delete", cm.text, "")
		inc.comments = append(inc.comments[:i], inc.comments[i+1:]...)
		m.commit(by)
		c.w.WriteHeader(http.StatusOK)
	})
}

// SecurityAlert entities of POST …/incidents/{id}/alerts.
type sAlert struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Kind       string         `json:"kind"`
	Properties map[string]any `json:"properties"`
}

func (e *Emulator) sentinelAlert(w *workspace, a *alert) sAlert {
	tactics := []string{}
	if a.category != "" {
		tactics = append(tactics, a.category)
	}
	gen := fmtTime(a.created)
	return sAlert{
		ID:   w.armID() + "/providers/Microsoft.SecurityInsights/Entities/" + a.sysID,
		Name: a.sysID, Type: "Microsoft.SecurityInsights/Entities", Kind: "SecurityAlert",
		Properties: map[string]any{
			"systemAlertId":     a.sysID,
			"tactics":           tactics,
			"alertDisplayName":  a.title,
			"confidenceLevel":   "Unknown",
			"severity":          sentinelSeverity(a.severity),
			"vendorName":        "Microsoft",
			"productName":       productName(a.serviceSource),
			"providerAlertId":   a.id,
			"alertType":         strings.ReplaceAll(a.title, " ", ""),
			"processingEndTime": fmtTime(a.updated),
			"status":            sentinelAlertStatus(a.status),
			"endTimeUtc":        fmtTime(a.lastAct),
			"startTimeUtc":      fmtTime(a.firstAct),
			"timeGenerated":     gen,
			"resourceIdentifiers": []map[string]any{{
				"type": "LogAnalytics", "workspaceId": w.CustomerID, "subscriptionId": w.Sub, "resourceGroup": w.RG,
			}},
			"additionalData": map[string]any{"AlertMessageEnqueueTime": gen},
			"friendlyName":   a.title,
		},
	}
}

func (e *Emulator) armListAlerts(c *call) {
	e.withIncident(c, sentinelRead, func(w *workspace, inc *incident) {
		out := make([]sAlert, 0, len(inc.alerts))
		for _, a := range inc.alerts {
			out = append(out, e.sentinelAlert(w, a))
		}
		c.json(http.StatusOK, map[string]any{"value": out})
	})
}
