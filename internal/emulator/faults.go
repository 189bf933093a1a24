package emulator

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultProfile is the body of PUT /_emulator/faults: rules that inject failures into the
// emulated APIs. For each request the first rule whose selectors match decides; a request
// matched by no rule is served normally. The dice are deterministic: they derive from the
// seed, the API, the tenant and the number of earlier requests of that API and tenant.
type FaultProfile struct {
	Rules []FaultRule `json:"rules"`
}

// FaultRule selects requests and says what fraction of them fail how.
type FaultRule struct {
	// Selectors (empty matches all).
	API    string `json:"api,omitempty"`    // token, graph, arm or ingestion
	Tenant string `json:"tenant,omitempty"` // tenant id or domain
	Method string `json:"method,omitempty"` // e.g. PUT
	Route  string `json:"route,omitempty"`  // route template, e.g. /v1.0/security/incidents/{id}

	// Fractions (0–1, summing to at most 1) of the matched requests that get each outcome.
	Rate429 float64 `json:"rate_429,omitempty"`
	// RetryAfter is the [min, max] Retry-After in seconds of injected 429s (default [1, 1]).
	RetryAfter []int   `json:"retry_after_s,omitempty"`
	Rate5xx    float64 `json:"rate_5xx,omitempty"`
	// Statuses are the 5xx statuses to pick from (default 500, 502, 503, 504).
	Statuses []int `json:"statuses_5xx,omitempty"`
	// RateHang holds the request until the client gives up (or the emulator closes).
	RateHang float64 `json:"rate_hang,omitempty"`
	// RateTruncate sends the status, headers and half of the body, then aborts the connection.
	RateTruncate float64 `json:"rate_truncate,omitempty"`
	// RateReset resets the connection without answering.
	RateReset float64 `json:"rate_reset,omitempty"`
	// Rate413 answers 413 Payload Too Large whatever the request's size, with the Logs
	// Ingestion API's ContentLengthLimitExceeded error (ingestion rules only).
	Rate413 float64 `json:"rate_413,omitempty"`
	// LatencyMs adds a [min, max] delay in milliseconds to every matched request.
	LatencyMs []int `json:"latency_ms,omitempty"`
	// LatencyAfterMs holds the answer of every matched request for a [min, max] delay in
	// milliseconds after the request was served: its effects (rows ingested, a change made)
	// are in place while the client still waits for the answer.
	LatencyAfterMs []int `json:"latency_after_ms,omitempty"`
}

func (p FaultProfile) validate() error {
	for i, r := range p.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		switch r.API {
		case "", apiToken, apiGraph, apiARM, apiIngestion:
		default:
			return fmt.Errorf("%s.api: want token, graph, arm or ingestion, got %q", at, r.API)
		}
		sum := 0.0
		for name, v := range map[string]float64{"rate_429": r.Rate429, "rate_5xx": r.Rate5xx, "rate_hang": r.RateHang,
			"rate_truncate": r.RateTruncate, "rate_reset": r.RateReset, "rate_413": r.Rate413} {
			if v < 0 || v > 1 {
				return fmt.Errorf("%s.%s: want a fraction between 0 and 1, got %v", at, name, v)
			}
			sum += v
		}
		if sum > 1.000001 {
			return fmt.Errorf("%s: the rates add up to %v, more than 1", at, sum)
		}
		if r.Rate413 > 0 && r.API != apiIngestion {
			return fmt.Errorf("%s.rate_413: only the ingestion API answers 413 for a request's size; set api: ingestion", at)
		}
		for name, rg := range map[string][]int{"retry_after_s": r.RetryAfter, "latency_ms": r.LatencyMs, "latency_after_ms": r.LatencyAfterMs} {
			if len(rg) != 0 && (len(rg) != 2 || rg[0] < 0 || rg[1] < rg[0]) {
				return fmt.Errorf("%s.%s: want [min, max] with 0 <= min <= max, got %v", at, name, rg)
			}
		}
		if len(r.RetryAfter) == 2 && r.RetryAfter[0] < 1 && r.Rate429 > 0 {
			return fmt.Errorf("%s.retry_after_s: Retry-After must be at least 1 second", at)
		}
		for _, s := range r.Statuses {
			if s < 500 || s > 599 {
				return fmt.Errorf("%s.statuses_5xx: %d is not a 5xx status", at, s)
			}
		}
	}
	return nil
}

// Faults returns the fault profile in force.
func (e *Emulator) Faults() FaultProfile {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return FaultProfile{Rules: append([]FaultRule{}, e.faults.Rules...)}
}

// SetFaults replaces the fault profile (an empty profile clears it).
func (e *Emulator) SetFaults(p FaultProfile) error {
	if err := p.validate(); err != nil {
		return err
	}
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	e.faults = FaultProfile{Rules: append([]FaultRule{}, p.Rules...)}
	return nil
}

type faultKind int

const (
	faultNone faultKind = iota
	fault429
	fault5xx
	faultHang
	faultTruncate
	faultReset
	fault413
)

type faultPlan struct {
	kind       faultKind
	latency    time.Duration
	after      time.Duration // the answer's delay after the request was served
	retryAfter int
	status     int
}

func (r FaultRule) matches(c *call) bool {
	if r.API != "" && r.API != c.api {
		return false
	}
	if r.Method != "" && !strings.EqualFold(r.Method, c.r.Method) {
		return false
	}
	if r.Route != "" && r.Route != c.route {
		return false
	}
	if r.Tenant != "" {
		t := strings.ToLower(r.Tenant)
		if c.tenant == nil {
			return t == strings.ToLower(c.tenantKey)
		}
		return t == c.tenant.ID || t == c.tenant.Domain
	}
	return true
}

// faultPlan rolls the dice for one request.
func (e *Emulator) faultPlan(c *call) faultPlan {
	e.faultMu.Lock()
	var rule *FaultRule
	for i := range e.faults.Rules {
		if e.faults.Rules[i].matches(c) {
			rule = &e.faults.Rules[i]
			break
		}
	}
	if rule == nil {
		e.faultMu.Unlock()
		return faultPlan{}
	}
	r := *rule
	tk := c.tenantKey
	if c.tenant != nil {
		tk = c.tenant.ID
	}
	key := c.api + "|" + tk
	n := e.faultN[key]
	e.faultN[key] = n + 1
	e.faultMu.Unlock()

	rnd := e.rng("fault", key, strconv.FormatUint(n, 10))
	var p faultPlan
	if len(r.LatencyMs) == 2 {
		p.latency = time.Duration(r.LatencyMs[0]+rnd.IntN(r.LatencyMs[1]-r.LatencyMs[0]+1)) * time.Millisecond
	}
	if len(r.LatencyAfterMs) == 2 {
		p.after = time.Duration(r.LatencyAfterMs[0]+rnd.IntN(r.LatencyAfterMs[1]-r.LatencyAfterMs[0]+1)) * time.Millisecond
	}
	u := rnd.Float64()
	pick := func(rate float64) bool {
		if u < rate {
			return true
		}
		u -= rate
		return false
	}
	switch {
	case pick(r.Rate429):
		p.kind, p.retryAfter = fault429, 1
		if len(r.RetryAfter) == 2 {
			p.retryAfter = r.RetryAfter[0] + rnd.IntN(r.RetryAfter[1]-r.RetryAfter[0]+1)
		}
	case pick(r.Rate5xx):
		statuses := r.Statuses
		if len(statuses) == 0 {
			statuses = []int{500, 502, 503, 504}
		}
		p.kind, p.status = fault5xx, statuses[rnd.IntN(len(statuses))]
	case pick(r.RateHang):
		p.kind = faultHang
	case pick(r.RateTruncate):
		p.kind = faultTruncate
	case pick(r.RateReset):
		p.kind = faultReset
	case pick(r.Rate413):
		p.kind = fault413
	}
	return p
}

// resetConnection drops the connection without a response: a TCP reset on HTTP/1.1, a stream
// reset on HTTP/2.
func resetConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			raw := conn
			if tc, ok := conn.(*tls.Conn); ok {
				raw = tc.NetConn()
			}
			if tcp, ok := raw.(*net.TCPConn); ok {
				tcp.SetLinger(0)
			}
			raw.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// truncate sends the buffered response's status, headers (with the full Content-Length) and
// half of its body, then aborts the connection.
func truncate(w http.ResponseWriter, rec *recorder) {
	body := rec.buf.Bytes()
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(body[:len(body)/2])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	panic(http.ErrAbortHandler)
}
