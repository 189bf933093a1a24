// Package webhook takes alerts from other SIEMs: POST /api/v1/webhooks/{name} for each
// configured webhook. The first kind is Splunk's webhook alert action, whose JSON body carries
// result (the first result row's fields), sid, results_link, search_name, owner and app.
//
// Each delivery is authenticated by the webhook's own secret, never by API tokens:
//   - a token in the URL (?token=…), for senders that cannot set headers (Splunk), compared in
//     constant time; or
//   - an HMAC-SHA256 signature: X-Socsync-Timestamp (Unix seconds) and X-Socsync-Signature
//     (sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>), refused when the timestamp
//     is more than 5 minutes from the hub's clock.
//
// The token is never logged or put in an error: log lines carry the path only.
//
// Answers: 201 {"status":"created","incident_id"} for a new alert; 200 {"status":"duplicate",
// "incident_id"} for a delivery whose sid the webhook has already taken (it changes nothing);
// 404 for an unknown webhook name and for wrong or missing credentials alike (one answer, so
// that names cannot be probed); 413 for a body over the webhook's max_body (checked before the
// credentials, so it says nothing about them either); 400 with a reason for a body that is not
// the expected JSON. Each alert becomes a hub incident of the webhook's tenant (source webhook,
// correlation key webhook:<name>:<sid>, one link of kind webhook with the sid and the
// results_link, one alert), queued, shown and forwarded like any other.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// Signature headers.
const (
	HeaderTimestamp = "X-Socsync-Timestamp"
	HeaderSignature = "X-Socsync-Signature"
	// SignatureWindow is how far a signed delivery's timestamp may be from the hub's clock.
	SignatureWindow = 5 * time.Minute
	// DefaultMaxBody bounds a body when the webhook does not say (and for unknown names).
	DefaultMaxBody = 1 << 20
)

// Hook is one configured webhook with its secrets resolved.
type Hook struct {
	Name       string
	Kind       string // splunk
	TenantID   string
	Token      string // empty: no token authentication
	HMACSecret string // empty: no signature authentication
	MaxBody    int64  // bytes (0: DefaultMaxBody)
}

// Store is what the handler needs of the hub's database.
type Store interface {
	InTx(ctx context.Context, fn func(tx *store.Tx) error) error
}

// Options are the handler's optional dependencies.
type Options struct {
	Log        *slog.Logger
	Now        func() time.Time      // default time.Now
	Registerer prometheus.Registerer // takes socsync_webhook_deliveries_total (nil: not registered)
}

// Handler serves POST /api/v1/webhooks/{name}.
type Handler struct {
	hooks     map[string]Hook
	store     Store
	log       *slog.Logger
	now       func() time.Time
	delivered *prometheus.CounterVec
}

// New returns the handler of hooks.
func New(hooks []Hook, st Store, o Options) (*Handler, error) {
	if st == nil {
		return nil, errors.New("webhook: a store is required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{hooks: map[string]Hook{}, store: st, log: o.Log, now: o.Now,
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_webhook_deliveries_total",
			Help: "Inbound webhook deliveries by webhook (\"unknown\" for names not configured) and result: created, duplicate, refused (404), too_large, invalid, error."},
			[]string{"webhook", "result"})}
	for _, hk := range hooks {
		switch {
		case hk.Name == "":
			return nil, errors.New("webhook: a name is required")
		case hk.Kind != "splunk":
			return nil, fmt.Errorf("webhook %s: kind %q: want splunk", hk.Name, hk.Kind)
		case hk.TenantID == "":
			return nil, fmt.Errorf("webhook %s: a tenant is required", hk.Name)
		case hk.Token == "" && hk.HMACSecret == "":
			return nil, fmt.Errorf("webhook %s: a token or an HMAC secret is required", hk.Name)
		}
		if hk.MaxBody <= 0 {
			hk.MaxBody = DefaultMaxBody
		}
		hk.TenantID = strings.ToLower(hk.TenantID)
		h.hooks[hk.Name] = hk
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(h.delivered); err != nil {
			return nil, fmt.Errorf("webhook: metrics: %w", err)
		}
	}
	return h, nil
}

// errorBody is the API's error shape (DESIGN.md §4.2).
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	var e errorBody
	e.Error.Code, e.Error.Message, e.Error.Field = code, msg, field
	writeJSON(w, status, e)
}

// ServeHTTP takes one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	hook, known := h.hooks[name]
	label := name
	if !known {
		label = "unknown"
	}
	// The log names the webhook and the path, never the query (it holds the token).
	log := h.log.With("webhook", name, "path", r.URL.Path, "remote", r.RemoteAddr)

	limit := hook.MaxBody
	if !known {
		limit = DefaultMaxBody
	}
	if r.ContentLength > limit {
		h.tooLarge(w, label, limit, log)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.tooLarge(w, label, limit, log)
		return
	case err != nil:
		h.delivered.WithLabelValues(label, "invalid").Inc()
		writeError(w, http.StatusBadRequest, "invalid_payload", "the body could not be read", "")
		return
	}

	if !h.authenticated(hook, known, r, body) {
		h.delivered.WithLabelValues(label, "refused").Inc()
		log.Warn("webhook delivery refused: unknown webhook or wrong credentials")
		writeError(w, http.StatusNotFound, "not_found", "no such webhook, or the credentials are wrong", "")
		return
	}

	alert, err := parseSplunk(body)
	if err != nil {
		var fe *fieldError
		field := ""
		if errors.As(err, &fe) {
			field = fe.field
		}
		h.delivered.WithLabelValues(label, "invalid").Inc()
		log.Info("webhook delivery refused: malformed body", "reason", err.Error())
		writeError(w, http.StatusBadRequest, "invalid_payload", err.Error(), field)
		return
	}
	id, created, err := h.take(r.Context(), hook, alert, body)
	if err != nil {
		h.delivered.WithLabelValues(label, "error").Inc()
		log.Error("webhook delivery could not be stored", "sid", alert.SID, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the alert could not be stored; deliver it again", "")
		return
	}
	if !created {
		h.delivered.WithLabelValues(label, "duplicate").Inc()
		log.Info("webhook delivery repeated; nothing changed", "sid", alert.SID, "incident", id)
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate", "incident_id": id})
		return
	}
	h.delivered.WithLabelValues(label, "created").Inc()
	log.Info("webhook alert taken", "sid", alert.SID, "incident", id, "tenant", hook.TenantID)
	writeJSON(w, http.StatusCreated, map[string]string{"status": "created", "incident_id": id})
}

func (h *Handler) tooLarge(w http.ResponseWriter, label string, limit int64, log *slog.Logger) {
	h.delivered.WithLabelValues(label, "too_large").Inc()
	log.Info("webhook delivery refused: body too large", "limit", limit)
	writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("the body is larger than %d bytes", limit), "")
}

// dummySecret stands in for the secret of an unknown webhook, so that refusing one takes as long
// as refusing a wrong token.
var dummySecret = strings.Repeat("x", 43)

// authenticated checks the delivery's token or signature against the webhook's secrets.
func (h *Handler) authenticated(hook Hook, known bool, r *http.Request, body []byte) bool {
	token := r.URL.Query().Get("token")
	sig := r.Header.Get(HeaderSignature)
	if !known {
		equalSecret(token, dummySecret)
		return false
	}
	if token != "" && hook.Token != "" && equalSecret(token, hook.Token) {
		return true
	}
	if sig != "" && hook.HMACSecret != "" {
		return validSignature(hook.HMACSecret, r.Header.Get(HeaderTimestamp), sig, body, h.now())
	}
	return false
}

// equalSecret compares in constant time (of the secret's length: both sides are hashed first).
func equalSecret(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Sign returns the X-Socsync-Signature value of a body sent at ts (Unix seconds) — what a
// sender computes.
func Sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func validSignature(secret, ts, sig string, body []byte, now time.Time) bool {
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(secs, 0)); d > SignatureWindow || d < -SignatureWindow {
		return false
	}
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(strings.TrimSpace(sig)))
}

// fieldError is a malformed body, naming the field at fault.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

// Alert is a Splunk webhook alert action's delivery.
type Alert struct {
	SID         string
	ResultsLink string
	SearchName  string
	Owner       string
	App         string
	Result      map[string]json.RawMessage // the first result row's fields
	RawResult   json.RawMessage
}

// maxSID bounds the delivery id (Splunk's are well under 200 characters).
const maxSID = 512

// parseSplunk reads a Splunk webhook alert action body.
func parseSplunk(body []byte) (Alert, error) {
	var a Alert
	if !utf8.Valid(body) {
		return a, &fieldError{"", "the body is not UTF-8 text"}
	}
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&top); err != nil {
		return a, &fieldError{"", "malformed JSON: " + plainJSONError(err)}
	}
	if dec.More() || top == nil {
		return a, &fieldError{"", "want one JSON object"}
	}
	str := func(key string, required bool) (string, error) {
		raw, ok := top[key]
		if !ok || string(raw) == "null" {
			if required {
				return "", &fieldError{key, "required"}
			}
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", &fieldError{key, "want a string"}
		}
		return s, nil
	}
	var err error
	if a.SID, err = str("sid", true); err != nil {
		return a, err
	}
	switch {
	case strings.TrimSpace(a.SID) == "":
		return a, &fieldError{"sid", "required"}
	case len(a.SID) > maxSID:
		return a, &fieldError{"sid", fmt.Sprintf("longer than %d bytes", maxSID)}
	}
	if a.ResultsLink, err = str("results_link", false); err != nil {
		return a, err
	}
	if a.SearchName, err = str("search_name", false); err != nil {
		return a, err
	}
	if a.Owner, err = str("owner", false); err != nil {
		return a, err
	}
	if a.App, err = str("app", false); err != nil {
		return a, err
	}
	if raw, ok := top["result"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &a.Result); err != nil || a.Result == nil {
			return a, &fieldError{"result", "want an object of the result's fields"}
		}
		a.RawResult = raw
	}
	return a, nil
}

// plainJSONError is encoding/json's message without the body's bytes beyond a position.
func plainJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "want a JSON object, got " + te.Value
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the body ends early"
	}
	return "not JSON"
}

// resultString returns a result field as text: a string, the first of a multivalue field, or a
// number.
func resultString(result map[string]json.RawMessage, key string) (string, bool) {
	raw, ok := result[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return list[0], true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// Severity returns the alert's severity from its result's severity or urgency field (Splunk's
// 1–6 severity scale, Enterprise Security's urgency names, or the hub's names), else medium.
func (a Alert) Severity() incident.Severity {
	for _, key := range []string{"severity", "urgency"} {
		if v, ok := resultString(a.Result, key); ok {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "critical", "high", "fatal", "severe", "6", "5":
				return incident.SeverityHigh
			case "medium", "moderate", "error", "4":
				return incident.SeverityMedium
			case "low", "warning", "warn", "3":
				return incident.SeverityLow
			case "informational", "information", "info", "debug", "2", "1":
				return incident.SeverityInformational
			}
		}
	}
	return incident.SeverityMedium
}

// Time returns the result's _time (Unix seconds or RFC 3339), if it has one.
func (a Alert) Time() (time.Time, bool) {
	v, ok := resultString(a.Result, "_time")
	if !ok {
		return time.Time{}, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
		return time.UnixMilli(int64(secs * 1000)).UTC(), true
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

// Title is the hub incident's title: the search name, or the sid when Splunk sent none.
func (a Alert) Title() string {
	if s := strings.TrimSpace(a.SearchName); s != "" {
		return s
	}
	return "Splunk alert " + a.SID
}

// errReplay ends a transaction that found the delivery already taken.
type errReplay struct{ id string }

func (e errReplay) Error() string { return "delivery already taken as incident " + e.id }

// take stores the alert as a new hub incident, unless the webhook already took its sid.
func (h *Handler) take(ctx context.Context, hook Hook, a Alert, body []byte) (id string, created bool, err error) {
	now := h.now().UTC()
	sev := a.Severity()
	title := a.Title()
	var desc strings.Builder
	fmt.Fprintf(&desc, "Splunk alert %q", title)
	if a.App != "" {
		fmt.Fprintf(&desc, " in app %s", a.App)
	}
	if a.Owner != "" {
		fmt.Fprintf(&desc, " (owner %s)", a.Owner)
	}
	desc.WriteString(", delivered to webhook " + hook.Name + ".")
	if a.ResultsLink != "" {
		desc.WriteString(" Results: " + a.ResultsLink)
	}
	activity, _ := a.Time()
	corrKey := "webhook:" + hook.Name + ":" + a.SID
	product := "Splunk"
	raw := compact(body)

	err = h.store.InTx(ctx, func(tx *store.Tx) error {
		inc := &incident.Incident{
			TenantID:        hook.TenantID,
			Title:           title,
			Description:     desc.String(),
			Fields:          incident.Fields{Status: incident.StatusNew, Severity: sev, Tags: []string{}},
			Sources:         []incident.Source{incident.SourceWebhook},
			AlertCount:      1,
			CreatedAt:       now,
			UpdatedAt:       now,
			FirstActivityAt: activity,
			LastActivityAt:  activity,
		}
		ok, err := tx.CreateIncident(ctx, inc, corrKey, store.Change{Summary: "created from webhook " + hook.Name, At: now, Actor: "webhook:" + hook.Name})
		if err != nil {
			return err
		}
		if !ok {
			return errReplay{inc.ID}
		}
		first, err := tx.RecordDelivery(ctx, hook.Name, a.SID, hook.TenantID, inc.ID)
		if err != nil {
			return err
		}
		if !first {
			return errReplay{inc.ID}
		}
		obs := incident.Observation{System: incident.System("webhook"), ExternalID: a.SID, URL: a.ResultsLink, Title: title,
			Description: inc.Description, Fields: inc.Fields, CreatedAt: now, UpdatedAt: now, FirstActivityAt: activity,
			LastActivityAt: activity, LastModifiedBy: a.Owner, AlertCount: 1, ProductNames: []string{product}}
		observed, err := json.Marshal(obs)
		if err != nil {
			return err
		}
		link := store.Link{TenantID: hook.TenantID, IncidentID: inc.ID, SourceID: store.SourceID(hook.TenantID, store.SourceKind("webhook"), hook.Name),
			Kind: store.LinkWebhook, ExternalID: a.SID, URL: a.ResultsLink, Observed: observed, Raw: raw, RemoteUpdated: now, SyncState: "in_sync"}
		if _, err := tx.UpsertLink(ctx, &link); err != nil {
			return err
		}
		alertRaw := a.RawResult
		if len(alertRaw) == 0 {
			alertRaw = json.RawMessage("{}")
		}
		_, err = tx.UpsertAlert(ctx, incident.Alert{TenantID: hook.TenantID, RemoteID: corrKey, IncidentID: inc.ID, Title: title,
			Severity: sev, Status: incident.AlertNew, ServiceSource: hook.Kind, DetectionSource: a.App, ProductName: product,
			CreatedAt: now, Version: now}, compact(alertRaw), now)
		if err != nil {
			return err
		}
		id = inc.ID
		return nil
	})
	var replay errReplay
	if errors.As(err, &replay) {
		return replay.id, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return id, true, nil
}

func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return json.RawMessage(b)
	}
	return buf.Bytes()
}
