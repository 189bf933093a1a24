package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// Limits of analyst input, within what both remotes accept.
const (
	maxTags        = 50
	maxTagLen      = 160
	maxCommentLen  = 30000 // Sentinel's limit per comment
	maxTextLen     = 30000
	maxRequestBody = 1 << 20
)

// Patch is a change of an incident's synced fields, the body of PATCH /api/v1/incidents/{id}:
// only the fields present (non-nil) change. The web UI's forms send the same.
type Patch struct {
	Status                *string   `json:"status"`
	Severity              *string   `json:"severity"`
	Owner                 *string   `json:"owner"`
	Classification        *string   `json:"classification"`
	Determination         *string   `json:"determination"`
	ClassificationReason  *string   `json:"classification_reason"`
	ClassificationComment *string   `json:"classification_comment"`
	Tags                  *[]string `json:"tags"`
}

// FieldError is invalid input, naming the field that is wrong (the API answers it 400).
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)

// decodeBody decodes a JSON body strictly; an error names the field where it can.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxErr):
			return &FieldError{"", fmt.Sprintf("body larger than %d bytes", maxRequestBody)}
		case errors.As(err, &typeErr):
			return &FieldError{typeErr.Field, fmt.Sprintf("want %s", typeErr.Type)}
		case unknownFieldRE.MatchString(err.Error()):
			return &FieldError{unknownFieldRE.FindStringSubmatch(err.Error())[1], "unknown field"}
		case errors.Is(err, io.EOF):
			return &FieldError{"", "empty body: want a JSON object"}
		}
		return &FieldError{"", "malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return &FieldError{"", "want one JSON object"}
	}
	return nil
}

// apply validates a patch against the incident and applies it. It returns the names of the
// fields that change.
func (b Patch) apply(in *incident.Incident) ([]string, error) {
	next := in.Fields
	next.Tags = append([]string(nil), in.Tags...)
	if b.Status != nil {
		s, err := incident.ParseStatus(*b.Status)
		if err != nil {
			return nil, &FieldError{"status", err.Error()}
		}
		if s == incident.StatusMerged {
			return nil, &FieldError{"status", "merged is set only by the remote's correlation"}
		}
		next.Status = s
	}
	if b.Severity != nil {
		s, err := incident.ParseSeverity(*b.Severity)
		if err != nil {
			return nil, &FieldError{"severity", err.Error()}
		}
		next.Severity = s
	}
	if b.Owner != nil {
		o := strings.TrimSpace(*b.Owner)
		if o != "" && (!strings.Contains(o, "@") || strings.ContainsAny(o, " \t\n")) {
			return nil, &FieldError{"owner", "want a user principal name (name@domain), or \"\" to unassign"}
		}
		next.Owner = incident.NormalizeOwner(o)
	}
	if b.Classification != nil {
		next.Classification = ""
		if *b.Classification != "" {
			c, err := incident.ParseClassification(*b.Classification)
			if err != nil {
				return nil, &FieldError{"classification", err.Error()}
			}
			next.Classification = c
		}
		if b.Determination == nil && !next.Determination.Fits(next.Classification) {
			next.Determination = "" // the old refinement no longer fits
		}
		if b.ClassificationReason == nil && !next.ClassificationReason.Fits(next.Classification) {
			next.ClassificationReason = ""
		}
	}
	if b.Determination != nil {
		next.Determination = ""
		if *b.Determination != "" {
			d, err := incident.ParseDetermination(*b.Determination)
			if err != nil {
				return nil, &FieldError{"determination", err.Error()}
			}
			next.Determination = d
		}
	}
	if b.ClassificationReason != nil {
		next.ClassificationReason = ""
		if *b.ClassificationReason != "" {
			r, err := incident.ParseReason(*b.ClassificationReason)
			if err != nil {
				return nil, &FieldError{"classification_reason", err.Error()}
			}
			next.ClassificationReason = r
		}
	}
	if b.ClassificationComment != nil {
		if utf8.RuneCountInString(*b.ClassificationComment) > maxTextLen {
			return nil, &FieldError{"classification_comment", fmt.Sprintf("longer than %d characters", maxTextLen)}
		}
		next.ClassificationComment = *b.ClassificationComment
	}
	if b.Tags != nil {
		if len(*b.Tags) > maxTags {
			return nil, &FieldError{"tags", fmt.Sprintf("more than %d tags", maxTags)}
		}
		for _, t := range *b.Tags {
			if strings.TrimSpace(t) == "" || utf8.RuneCountInString(t) > maxTagLen {
				return nil, &FieldError{"tags", fmt.Sprintf("each tag must be 1 to %d characters", maxTagLen)}
			}
		}
		next.Tags = incident.NormalizeTags(*b.Tags)
	}
	if next.Status == incident.StatusResolved && next.Classification == "" {
		return nil, &FieldError{"classification", "required to close an incident (resolved)"}
	}
	if !next.Determination.Fits(next.Classification) {
		return nil, &FieldError{"determination", fmt.Sprintf("%q does not fit classification %q; want one of %v",
			next.Determination, next.Classification, incident.DeterminationsFor(next.Classification))}
	}
	if !next.ClassificationReason.Fits(next.Classification) {
		return nil, &FieldError{"classification_reason", fmt.Sprintf("%q does not fit classification %q; want one of %v",
			next.ClassificationReason, next.Classification, incident.ReasonsFor(next.Classification))}
	}
	changed := changedFields(in.Fields, next)
	in.Fields = next
	return changed, nil
}

// changedFields names the synced fields that differ, with their old and new values.
func changedFields(a, b incident.Fields) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("status", a.Status != b.Status)
	add("severity", a.Severity != b.Severity)
	add("owner", incident.NormalizeOwner(a.Owner) != incident.NormalizeOwner(b.Owner))
	add("classification", a.Classification != b.Classification)
	add("determination", a.Determination != b.Determination)
	add("classification_reason", a.ClassificationReason != b.ClassificationReason)
	add("classification_comment", !incident.EqualText(a.ClassificationComment, b.ClassificationComment))
	add("tags", !incident.EqualTags(a.Tags, b.Tags))
	return out
}

func fieldValue(f incident.Fields, name string) string {
	switch name {
	case "status":
		return string(f.Status)
	case "severity":
		return string(f.Severity)
	case "owner":
		return f.Owner
	case "classification":
		return string(f.Classification)
	case "determination":
		return string(f.Determination)
	case "classification_reason":
		return string(f.ClassificationReason)
	case "classification_comment":
		return f.ClassificationComment
	case "tags":
		return strings.Join(incident.NormalizeTags(f.Tags), ", ")
	}
	return ""
}

// writeFieldError answers a validation error as 400 naming the field.
func writeFieldError(w http.ResponseWriter, err error) bool {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return false
	}
	status, code := http.StatusBadRequest, "invalid_field"
	if fe.Msg == fmt.Sprintf("body larger than %d bytes", maxRequestBody) {
		status, code = http.StatusRequestEntityTooLarge, "too_large"
	}
	writeError(w, status, code, fe.Error(), fe.Field)
	return true
}

// handlePatchIncident serves PATCH /api/v1/incidents/{id}: it sets the hub's desired state,
// records who changed what, and queues the incident for the reconciler, which writes the
// change to every link.
func (s *Server) handlePatchIncident(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if !p.CanWrite() {
		writeError(w, http.StatusForbidden, "forbidden", "this token may not change incidents", "")
		return
	}
	var body Patch
	if err := decodeBody(w, r, &body); err != nil {
		writeFieldError(w, err)
		return
	}
	key, err := s.editor().UpdateIncident(r.Context(), p, r.PathValue("id"), body)
	var merged *MergedError
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such incident", "")
		return
	case errors.As(err, &merged):
		writeError(w, http.StatusConflict, "merged", "the incident was merged into "+merged.Into+"; change that one", "")
		return
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "changed_concurrently", "the incident changed while being edited; retry", "")
		return
	case writeFieldError(w, err):
		return
	case err != nil:
		s.internalError(w, r, err)
		return
	}
	s.respondIncident(w, r, key, http.StatusOK)
}

// handlePostComment serves POST /api/v1/incidents/{id}/comments: the comment is stored in the
// hub and queued to be written once to each link.
func (s *Server) handlePostComment(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if !p.CanWrite() {
		writeError(w, http.StatusForbidden, "forbidden", "this token may not comment", "")
		return
	}
	var body struct {
		Text *string `json:"text"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		writeFieldError(w, err)
		return
	}
	if body.Text == nil {
		writeError(w, http.StatusBadRequest, "invalid_field", "text: required", "text")
		return
	}
	key, err := s.editor().AddComment(r.Context(), p, r.PathValue("id"), *body.Text)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such incident", "")
		return
	case writeFieldError(w, err):
		return
	case err != nil:
		s.internalError(w, r, err)
		return
	}
	s.respondIncident(w, r, key, http.StatusCreated)
}

// editor applies the API's writes, with the queue the server has now.
func (s *Server) editor() Editor { return Editor{Store: s.store, Queue: s.queue} }

func (s *Server) respondIncident(w http.ResponseWriter, r *http.Request, k store.IncidentKey, status int) {
	si, err := s.store.IncidentInScope(r.Context(), principalFrom(r.Context()).Scope, k.ID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	d, err := s.detail(r, si)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, status, d)
}
