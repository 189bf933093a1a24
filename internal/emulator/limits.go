package emulator

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits are the rate limits the emulator enforces, as token buckets on the emulator's clock.
// A zero capacity disables that limit. JSON names are those of GET/PUT /_emulator/limits.
type Limits struct {
	// Graph /security: requests per minute per app per tenant (documented: 150).
	GraphPerMinute int `json:"graph_per_minute"`
	// ARM token buckets per subscription × principal: capacity and refill per second
	// (documented: reads 250 + 25/s, writes 200 + 10/s, deletes 200 + 10/s).
	ARMReadBurst       int     `json:"arm_read_burst"`
	ARMReadPerSecond   float64 `json:"arm_read_per_second"`
	ARMWriteBurst      int     `json:"arm_write_burst"`
	ARMWritePerSecond  float64 `json:"arm_write_per_second"`
	ARMDeleteBurst     int     `json:"arm_delete_burst"`
	ARMDeletePerSecond float64 `json:"arm_delete_per_second"`
	// Sentinel per subscription: PUT incident/comment per 5 minutes (documented minimum: 75) and
	// GET comments / POST alerts per 5 minutes (documented: 100).
	SentinelWritesPer5Min int `json:"sentinel_writes_per_5min"`
	SentinelReadsPer5Min  int `json:"sentinel_reads_per_5min"`
	// Logs Ingestion per data collection rule: requests and bytes per minute (documented:
	// 12,000 and 2 GB).
	IngestionPerMinute      int   `json:"ingestion_per_minute"`
	IngestionBytesPerMinute int64 `json:"ingestion_bytes_per_minute"`
	// Token endpoint: requests per minute per app per tenant (not documented; 0 = unlimited).
	TokenPerMinute int `json:"token_per_minute"`
}

// DefaultLimits returns the documented limits (reference/limits-and-targets.md).
func DefaultLimits() Limits {
	return Limits{
		GraphPerMinute:          150,
		ARMReadBurst:            250,
		ARMReadPerSecond:        25,
		ARMWriteBurst:           200,
		ARMWritePerSecond:       10,
		ARMDeleteBurst:          200,
		ARMDeletePerSecond:      10,
		SentinelWritesPer5Min:   75,
		SentinelReadsPer5Min:    100,
		IngestionPerMinute:      12_000,
		IngestionBytesPerMinute: 2 << 30,
	}
}

func (l Limits) validate() error {
	if l.GraphPerMinute < 0 || l.ARMReadBurst < 0 || l.ARMWriteBurst < 0 || l.ARMDeleteBurst < 0 ||
		l.SentinelWritesPer5Min < 0 || l.SentinelReadsPer5Min < 0 || l.IngestionPerMinute < 0 ||
		l.IngestionBytesPerMinute < 0 || l.TokenPerMinute < 0 || l.ARMReadPerSecond < 0 ||
		l.ARMWritePerSecond < 0 || l.ARMDeletePerSecond < 0 {
		return errors.New("emulator: limits must not be negative")
	}
	return nil
}

type bucket struct {
	tokens float64
	last   time.Time
}

type limiter struct {
	mu      sync.Mutex
	l       Limits
	buckets map[string]*bucket
}

func newLimiter(l Limits) *limiter { return &limiter{l: l, buckets: map[string]*bucket{}} }

// take removes n tokens from the bucket key (capacity, refill per second). It returns whether
// it could, the whole seconds until it could (when not), and the tokens left.
func (lm *limiter) take(key string, capacity, perSecond, n float64, now time.Time) (ok bool, retryAfter int, remaining int) {
	if capacity <= 0 || perSecond <= 0 {
		return true, 0, -1
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	b := lm.buckets[key]
	if b == nil {
		b = &bucket{tokens: capacity, last: now}
		lm.buckets[key] = b
	}
	if now.After(b.last) {
		b.tokens = math.Min(capacity, b.tokens+now.Sub(b.last).Seconds()*perSecond)
		b.last = now
	}
	if n > capacity {
		n = capacity // an oversized request waits for a full bucket, not forever
	}
	if b.tokens >= n {
		b.tokens -= n
		return true, 0, int(b.tokens)
	}
	wait := (n - b.tokens) / perSecond
	return false, max(1, int(math.Ceil(wait))), 0
}

func (lm *limiter) get() Limits {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.l
}

// set replaces the limits and empties the buckets.
func (lm *limiter) set(l Limits) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	lm.l = l
	lm.buckets = map[string]*bucket{}
}

// Limits returns the limits in force.
func (e *Emulator) Limits() Limits { return e.limits.get() }

// SetLimits replaces the limits in force (and refills every bucket).
func (e *Emulator) SetLimits(l Limits) error {
	if err := l.validate(); err != nil {
		return err
	}
	e.limits.set(l)
	return nil
}

// limitGraph applies the Graph security limit: per app per tenant.
func (c *call) limitGraph() bool {
	l := c.e.limits.get()
	ok, ra, _ := c.e.limits.take("graph|"+c.tenant.ID+"|"+c.principal, float64(l.GraphPerMinute), float64(l.GraphPerMinute)/60, 1, c.start)
	if !ok {
		c.rec.Throttled = "graph"
		c.tooManyRequests(ra, "graph")
	}
	return ok
}

// Sentinel operation classes with their own per-subscription limits.
const (
	sentinelNone  = ""
	sentinelWrite = "write" // PUT incident / PUT comment
	sentinelRead  = "read"  // GET comments / POST alerts
)

// limitARM applies ARM's token bucket (per subscription × principal × operation type) and,
// for Sentinel's limited operations, the per-subscription Sentinel limit. It sets the
// x-ms-ratelimit-remaining-subscription-* header either way.
func (c *call) limitARM(sentinelClass string) bool {
	l := c.e.limits.get()
	kind, capacity, rate, header := "reads", l.ARMReadBurst, l.ARMReadPerSecond, "x-ms-ratelimit-remaining-subscription-reads"
	switch c.r.Method {
	case http.MethodPut, http.MethodPost, http.MethodPatch:
		if c.r.Method != http.MethodPost { // POST …/alerts is a list (read) operation
			kind, capacity, rate, header = "writes", l.ARMWriteBurst, l.ARMWritePerSecond, "x-ms-ratelimit-remaining-subscription-writes"
		}
	case http.MethodDelete:
		kind, capacity, rate, header = "deletes", l.ARMDeleteBurst, l.ARMDeletePerSecond, "x-ms-ratelimit-remaining-subscription-deletes"
	}
	ok, ra, rem := c.e.limits.take("arm|"+c.sub+"|"+c.principalOID()+"|"+kind, float64(capacity), rate, 1, c.start)
	if rem >= 0 {
		c.w.Header().Set(header, strconv.Itoa(rem))
	}
	if !ok {
		c.w.Header().Set(header, "0")
		c.tooManyRequests(ra, "arm")
		return false
	}
	var per5 int
	switch sentinelClass {
	case sentinelWrite:
		per5 = l.SentinelWritesPer5Min
	case sentinelRead:
		per5 = l.SentinelReadsPer5Min
	default:
		return true
	}
	ok, ra, _ = c.e.limits.take("sentinel|"+c.sub+"|"+sentinelClass, float64(per5), float64(per5)/300, 1, c.start)
	if !ok {
		c.tooManyRequests(ra, "sentinel-"+sentinelClass)
	}
	return ok
}

// limitIngestionRequests applies the per-DCR request limit.
func (c *call) limitIngestionRequests(rule string) bool {
	l := c.e.limits.get()
	ok, ra, _ := c.e.limits.take("ingest|"+rule, float64(l.IngestionPerMinute), float64(l.IngestionPerMinute)/60, 1, c.start)
	if !ok {
		c.tooManyRequests(ra, "ingestion")
	}
	return ok
}

// limitIngestionBytes applies the per-DCR data volume limit.
func (c *call) limitIngestionBytes(rule string, size int) bool {
	l := c.e.limits.get()
	ok, ra, _ := c.e.limits.take("ingest-bytes|"+rule, float64(l.IngestionBytesPerMinute), float64(l.IngestionBytesPerMinute)/60, float64(size), c.start)
	if !ok {
		c.tooManyRequests(ra, "ingestion")
	}
	return ok
}

// limitToken applies the optional token endpoint limit.
func (c *call) limitToken() bool {
	l := c.e.limits.get()
	tk := c.tenantKey
	if c.tenant != nil {
		tk = c.tenant.ID
	}
	ok, ra, _ := c.e.limits.take("token|"+tk+"|"+c.principal, float64(l.TokenPerMinute), float64(l.TokenPerMinute)/60, 1, c.start)
	if !ok {
		c.tooManyRequests(ra, "token")
	}
	return ok
}
