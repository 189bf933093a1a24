package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Logs Ingestion limits.
const (
	maxIngestBytes = 1 << 20 // per call, compressed and uncompressed
	maxFieldBytes  = 64 << 10
)

var ingestionAPIVersions = []string{"2023-01-01", "2021-11-01-preview", "2023-04-01-preview"}

func (c *call) ingestionError(status int, code, msg string) {
	c.w.Header().Set("x-ms-error-code", code)
	c.w.Header().Set("x-ms-request-id", c.requestID())
	c.json(status, obj{{"error", obj{{"code", code}, {"message", msg}}}})
}

// contentTooLarge answers 413 as Logs Ingestion does for a body of n bytes.
func (c *call) contentTooLarge(n int64) {
	c.ingestionError(http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded",
		"Maximum allowed content length: "+strconv.Itoa(maxIngestBytes)+" bytes (1 MB). Provided content length: "+strconv.FormatInt(n, 10)+" bytes.")
}

func (e *Emulator) ingest(c *call) {
	if !c.authIngestion() || !c.limitIngestionRequests(c.p["ruleId"]) {
		return
	}
	if v := c.r.URL.Query().Get("api-version"); !slices.Contains(ingestionAPIVersions, v) {
		c.ingestionError(http.StatusBadRequest, "InvalidApiVersion", "The api-version '"+v+"' is not supported. Supported versions: 2023-01-01, 2021-11-01-preview, 2023-04-01-preview.")
		return
	}
	rule, stream := c.p["ruleId"], c.p["stream"]
	e.mu.Lock()
	d := e.dcr
	known := d.ImmutableID == rule
	e.mu.Unlock()
	if !known {
		c.ingestionError(http.StatusNotFound, "NotFound", "Data collection rule with immutable Id '"+rule+"' not found.")
		return
	}
	if !slices.Contains(d.Streams, stream) {
		c.ingestionError(http.StatusBadRequest, "InvalidStream", "Stream '"+stream+"' is not declared in the data collection rule with immutable Id '"+rule+"'.")
		return
	}
	tooLarge := c.contentTooLarge
	if c.r.ContentLength > maxIngestBytes {
		tooLarge(c.r.ContentLength)
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.r.Body, maxIngestBytes+1))
	if err != nil {
		c.ingestionError(http.StatusBadRequest, "InvalidPayload", "The request body could not be read.")
		return
	}
	if len(body) > maxIngestBytes {
		tooLarge(int64(len(body)))
		return
	}
	wire := len(body)
	switch enc := c.r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(zr, maxIngestBytes+1))
		}
		if err != nil {
			c.ingestionError(http.StatusBadRequest, "InvalidContentEncoding", "The request body is not valid gzip data.")
			return
		}
		if len(body) > maxIngestBytes {
			tooLarge(int64(len(body)))
			return
		}
	default:
		c.ingestionError(http.StatusBadRequest, "InvalidContentEncoding", "Content-Encoding '"+enc+"' is not supported; use gzip or none.")
		return
	}
	rows, err := parseRows(body)
	if err != nil {
		c.ingestionError(http.StatusBadRequest, "InvalidPayload", err.Error())
		return
	}
	if !c.limitIngestionBytes(rule, wire) {
		return
	}
	e.mu.Lock()
	kept := append(d.rows[stream], rows...)
	if len(kept) > e.opts.MaxIngestedRows {
		kept = append(kept[:0], kept[len(kept)-e.opts.MaxIngestedRows:]...)
	}
	d.rows[stream] = kept
	d.total[stream] += len(rows)
	e.mu.Unlock()
	c.w.WriteHeader(http.StatusNoContent)
}

// parseRows checks that the body is a JSON array of objects and truncates field values longer
// than 64 KB (strings, and the JSON text of nested values).
func parseRows(body []byte) ([]jsonRaw, error) {
	var items []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&items); err != nil || items == nil || dec.More() {
		return nil, errors.New("The request body must be a JSON array of objects.")
	}
	out := make([]jsonRaw, 0, len(items))
	for _, it := range items {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(it, &obj); err != nil || obj == nil {
			return nil, errors.New("The request body must be a JSON array of objects.")
		}
		changed := false
		for k, v := range obj {
			if len(v) <= maxFieldBytes {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v) // a nested value: stored as its (truncated) JSON text
			}
			if len(s) > maxFieldBytes {
				s = truncateUTF8(s, maxFieldBytes)
				b, _ := json.Marshal(s)
				obj[k] = b
				changed = true
			}
		}
		if changed {
			b, _ := json.Marshal(obj)
			it = b
		}
		out = append(out, jsonRaw(slices.Clone(it)))
	}
	return out, nil
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Ingested returns the rows received for a stream, as stored (after truncation), oldest
// first (at most Options.MaxIngestedRows of them).
func (e *Emulator) Ingested(stream string) []json.RawMessage {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.dcr.rows[stream])
}

// IngestedTotal returns how many rows a stream has received (including rows no longer kept).
func (e *Emulator) IngestedTotal(stream string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dcr.total[stream]
}
