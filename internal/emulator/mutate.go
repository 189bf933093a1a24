package emulator

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// mutation collects the field changes of one write to one incident, so that every writer
// (Graph, Sentinel, the admin API, correlation, the scenario generator) bumps the version,
// the timestamps and the change history the same way. Callers hold e.mu.
type mutation struct {
	e       *Emulator
	inc     *incident
	source  string // graph, sentinel, admin, scenario, correlation, connector
	actor   string
	at      time.Time
	changes []HistoryEntry
}

func (e *Emulator) mutate(inc *incident, source, actor string) *mutation {
	return &mutation{e: e, inc: inc, source: source, actor: actor, at: e.now()}
}

func (m *mutation) note(field, old, new string) {
	if old == new {
		return
	}
	m.changes = append(m.changes, HistoryEntry{Field: field, Old: old, New: new})
}

func (m *mutation) noteAlert(a *alert, field, old, new string) {
	if old == new {
		return
	}
	m.changes = append(m.changes, HistoryEntry{AlertID: a.id, Field: field, Old: old, New: new})
}

func tagsString(t []string) string {
	b, _ := json.Marshal(cloneStrings(t))
	return string(b)
}

func (m *mutation) setTitle(s string) {
	m.note("title", m.inc.title, s)
	m.inc.title = s
}

func (m *mutation) setDescription(s string) {
	m.note("description", m.inc.description, s)
	m.inc.description = s
}

func (m *mutation) setSummary(s string) {
	m.note("summary", m.inc.summary, s)
	m.inc.summary = s
}

func (m *mutation) setSeverity(s string) {
	m.note("severity", m.inc.severity, s)
	m.inc.severity = s
}

// setStatus sets the Graph status. Resolving an incident resolves its open alerts, in
// Defender and (through Defender for Cloud's bi-directional sync) in Sentinel.
func (m *mutation) setStatus(s string) {
	inc := m.inc
	m.note("status", inc.status, s)
	wasClosed := inc.closedSentinel()
	inc.status = s
	if s == "resolved" && !wasClosed {
		for _, a := range inc.alerts {
			if a.status == "new" || a.status == "inProgress" {
				m.setAlertStatus(a, "resolved")
			}
		}
	}
}

func (m *mutation) setAlertStatus(a *alert, s string) {
	if a.status == s {
		return
	}
	m.noteAlert(a, "alert.status", a.status, s)
	a.status = s
	a.updated = m.at
	if s == "resolved" || s == "dismissed" {
		a.resolved = m.at
	} else {
		a.resolved = time.Time{}
	}
}

func ownerString(o owner) string {
	if o.UPN != "" {
		return o.UPN
	}
	if o.ObjectID != "" {
		return o.ObjectID
	}
	return o.Name
}

func (m *mutation) setOwner(o owner) {
	m.note("owner", ownerString(m.inc.owner), ownerString(o))
	m.inc.owner = o
}

// setClassification sets classification (Sentinel vocabulary), reason and determination.
func (m *mutation) setClassification(class, reason, determination string) {
	inc := m.inc
	m.note("classification", inc.class, class)
	m.note("classificationReason", inc.reason, reason)
	m.note("determination", inc.determination, determination)
	inc.class, inc.reason, inc.determination = class, reason, determination
}

func (m *mutation) setClassComment(s string) {
	m.note("classificationComment", m.inc.classComment, s)
	m.inc.classComment = s
}

func (m *mutation) setTags(tags []string) {
	if tags == nil {
		tags = []string{}
	}
	m.note("tags", tagsString(m.inc.tags), tagsString(tags))
	m.inc.tags = tags
}

func (m *mutation) addAutoLabel(l string) {
	if slices.Contains(m.inc.autoLabels, l) {
		return
	}
	m.note("autoLabels", tagsString(m.inc.autoLabels), tagsString(append(cloneStrings(m.inc.autoLabels), l)))
	m.inc.autoLabels = append(m.inc.autoLabels, l)
}

// addComment appends a comment. name is the Sentinel comment name; "" derives one.
func (m *mutation) addComment(name, text string, author owner, byApp bool) *comment {
	inc := m.inc
	inc.commentSeq++
	if name == "" {
		name = m.e.guid("comment", inc.t.ID, inc.name, inc.graphID, strconv.Itoa(inc.commentSeq))
	}
	c := &comment{name: name, text: text, authorName: author.Name, authorUPN: author.UPN,
		authorOID: author.ObjectID, authorEmail: author.Email, created: m.at, modified: m.at,
		version: 1, byApp: byApp}
	inc.comments = append(inc.comments, c)
	m.changes = append(m.changes, HistoryEntry{Field: "comment", New: text})
	return c
}

// commit bumps the incident's version, etag and last-update time (on both views) and appends
// the history. A write without field changes still bumps them, as the services do.
func (m *mutation) commit(modifiedBy string) {
	inc := m.inc
	inc.version++
	inc.updated = m.at
	if modifiedBy != "" {
		inc.modifiedBy = modifiedBy
	}
	m.flush()
}

// flush appends the collected changes to the history without bumping the incident (used for
// creation and for alert changes that do not touch a Sentinel-only incident: the Defender for
// Cloud → Sentinel gap).
func (m *mutation) flush() {
	inc := m.inc
	for _, c := range m.changes {
		m.e.seqHistory++
		c.Seq = m.e.seqHistory
		c.Time = m.at
		c.Tenant = inc.t.ID
		c.GraphID = inc.graphID
		c.SentinelID = inc.name
		c.Source = m.source
		c.Actor = m.actor
		c.Version = inc.version
		m.e.history = append(m.e.history, c)
	}
	if h := m.e.history; len(h) > m.e.opts.MaxHistory {
		n := max(len(h)/10, len(h)-m.e.opts.MaxHistory)
		m.e.history = append(h[:0], h[n:]...)
		m.e.histDrop += n
	}
	m.changes = nil
}
