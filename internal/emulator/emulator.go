// Package emulator is a local, faithful emulator of the Microsoft APIs socsync talks to: the
// Entra ID token endpoint, Microsoft Graph security incidents and alerts, Microsoft Sentinel
// incidents (Azure Resource Manager) and the Azure Monitor Logs Ingestion API, with the
// documented limits and injectable faults, plus an admin API under /_emulator/ through which a
// test or a person acts as the remote products and their analysts (DESIGN.md §4.3).
//
// It is written independently of socsync's own clients: it imports no other socsync package.
// All state derives from Options.Seed and the clock in Options.Now, so a seed and a sequence of
// requests give the same ids, secrets and timestamps every time.
package emulator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a new Emulator.
type Options struct {
	// Tenants is the number of sample customer tenants (default 3). Tenant i follows pattern
	// i mod 3: Defender only; Defender mirrored into one Sentinel workspace; Defender plus two
	// Sentinel workspaces holding Sentinel-only Defender for Cloud incidents.
	Tenants int
	// Seed determines every id, secret and sample incident.
	Seed int64
	// Now is the clock; nil means time.Now. The admin API can move the clock forward on top of
	// it (POST /_emulator/clock).
	Now func() time.Time
	// IncidentsPerTenant is the number of sample incidents created per tenant (default 4;
	// negative: none).
	IncidentsPerTenant int
	// Limits overrides the documented rate limits (nil: DefaultLimits()).
	Limits *Limits
	// IngestionStreams are the streams the sample data collection rule declares (default
	// ["Custom-SocsyncIncidents"]).
	IngestionStreams []string
	// CertTenants is how many sample tenants' apps get a certificate credential written by
	// Start or WriteCredentials (default: all tenants up to 16; negative: none). The
	// multi-tenant app always has one.
	CertTenants int
	// MaxRequestHistory caps the detailed request history (default 200,000 entries; the
	// oldest are dropped first). Counts are never dropped.
	MaxRequestHistory int
	// MaxHistory caps the change history (default 1,000,000 entries; oldest dropped first).
	MaxHistory int
	// MaxIngestedRows caps the rows kept per ingestion stream (default 1,000,000; oldest
	// dropped first; the total received is still counted).
	MaxIngestedRows int
}

// Emulator holds the state of all emulated services. It is safe for concurrent use.
type Emulator struct {
	opts   Options
	seed   uint64
	offset atomic.Int64  // admin clock offset, nanoseconds
	reqSeq atomic.Uint64 // request sequence (request ids, token ids)
	done   chan struct{}
	once   sync.Once

	mu         sync.Mutex // guards everything below (state of the emulated services)
	home       *tenant
	tenants    []*tenant
	byTenant   map[string]*tenant // tenant id (lower case) and domain → tenant
	subs       map[string]*tenant // subscription id (lower case) → tenant
	apps       map[string]*app    // client id → app
	multi      *app
	dcr        *dcr
	history    []HistoryEntry
	seqHistory int
	histDrop   int
	seq        int // internal incident sequence
	tokenKey   []byte
	scenario   *scenarioRun
	certPaths  map[string]string // client id → PEM file with certificate and key
	srvURL     string
	srvCA      string
	routeTable []*route

	reqMu   sync.Mutex
	reqLog  requestLog
	limits  *limiter
	faultMu sync.Mutex
	faults  FaultProfile
	faultN  map[string]uint64 // per api/tenant request counter for fault dice
}

// New builds the emulator's state. It does not listen; see Handler and Start.
func New(opts Options) (*Emulator, error) {
	if opts.Tenants < 0 {
		return nil, errors.New("emulator: Tenants must not be negative")
	}
	if opts.Tenants == 0 {
		opts.Tenants = 3
	}
	if opts.IncidentsPerTenant == 0 {
		opts.IncidentsPerTenant = 4
	}
	if opts.IncidentsPerTenant < 0 {
		opts.IncidentsPerTenant = 0
	}
	if len(opts.IngestionStreams) == 0 {
		opts.IngestionStreams = []string{"Custom-SocsyncIncidents"}
	}
	if opts.CertTenants == 0 {
		opts.CertTenants = min(opts.Tenants, 16)
	}
	if opts.MaxRequestHistory <= 0 {
		opts.MaxRequestHistory = 200_000
	}
	if opts.MaxHistory <= 0 {
		opts.MaxHistory = 1_000_000
	}
	if opts.MaxIngestedRows <= 0 {
		opts.MaxIngestedRows = 1_000_000
	}
	lim := DefaultLimits()
	if opts.Limits != nil {
		lim = *opts.Limits
	}
	if err := lim.validate(); err != nil {
		return nil, err
	}
	e := &Emulator{
		opts:      opts,
		seed:      uint64(opts.Seed),
		done:      make(chan struct{}),
		byTenant:  map[string]*tenant{},
		subs:      map[string]*tenant{},
		apps:      map[string]*app{},
		certPaths: map[string]string{},
		faultN:    map[string]uint64{},
	}
	e.limits = newLimiter(lim)
	e.routeTable = e.routes()
	e.reqLog.init(opts.MaxRequestHistory)
	e.tokenKey = e.bytes(32, "token-signing-key")
	e.build()
	return e, nil
}

// Close stops the scenario generator and releases requests held by a "hang" fault. The state
// stays readable.
func (e *Emulator) Close() {
	e.once.Do(func() { close(e.done) })
	e.StopScenario()
}

// Now returns the emulator's current time (the injected clock plus any admin offset), in UTC.
func (e *Emulator) Now() time.Time {
	base := time.Now
	if e.opts.Now != nil {
		base = e.opts.Now
	}
	return base().Add(time.Duration(e.offset.Load())).UTC()
}

// Advance moves the emulator's clock forward by d (rate-limit buckets, token expiry, scenario
// generation and timestamps all follow it).
func (e *Emulator) Advance(d time.Duration) {
	if d > 0 {
		e.offset.Add(int64(d))
	}
}

// now is Now truncated to the 100 ns resolution the services print.
func (e *Emulator) now() time.Time { return e.Now().Truncate(100 * time.Nanosecond) }

// rng returns a generator determined by the seed and the given parts.
func (e *Emulator) rng(parts ...string) *rand.Rand {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return rand.New(rand.NewPCG(e.seed, h.Sum64()))
}

func (e *Emulator) bytes(n int, parts ...string) []byte {
	r := e.rng(parts...)
	b := make([]byte, 0, n+8)
	for len(b) < n {
		b = binary.LittleEndian.AppendUint64(b, r.Uint64())
	}
	return b[:n]
}

// guid returns a version-4-shaped GUID derived from the seed and parts.
func (e *Emulator) guid(parts ...string) string {
	b := e.bytes(16, parts...)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Handler returns the whole emulated API, including the admin API under /_emulator/.
func (e *Emulator) Handler() http.Handler { return http.HandlerFunc(e.serveHTTP) }
