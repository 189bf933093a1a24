package throttle

import "time"

// API names of the budgets socsync keeps (Key.API).
const (
	APIGraph         = "graph"          // Graph /security, per tenant
	APIARMRead       = "arm-read"       // ARM reads, per subscription
	APIARMWrite      = "arm-write"      // ARM writes, per subscription
	APIARMDelete     = "arm-delete"     // ARM deletes, per subscription
	APISentinelWrite = "sentinel-write" // Sentinel PUT incident / comment, per subscription
	APISentinelRead  = "sentinel-read"  // Sentinel GET comments / POST list alerts, per subscription
	APIIngestion     = "ingestion"      // Logs Ingestion, per data collection rule
	APIToken         = "token"          // Entra token endpoint, per tenant (set by the Transport itself)
)

// Budget is a token bucket: up to Burst requests at once, refilled at Rate requests per
// second. A Budget whose Rate is not positive imposes no limit (the Retry-After gate still
// applies).
type Budget struct {
	Burst int
	Rate  float64
}

// Bucket is a budget that is documented as a token bucket (ARM): burst, then perSecond.
func Bucket(burst int, perSecond float64) Budget {
	return Budget{Burst: burst, Rate: perSecond}
}

// Window is a budget for a limit documented as "n requests per period" (Graph, Sentinel, Logs
// Ingestion). A bucket of the full n refilled at n/per would let up to 2n through in one
// period, so the burst is a tenth of n and the refill the rest: burst + rate × per = n, and no
// period of that length ever sees more than n requests, however the remote counts its window.
func Window(n int, per time.Duration) Budget {
	if n < 2 || per <= 0 {
		return Budget{Burst: 1, Rate: 1 / max(per.Seconds(), 1e-9)}
	}
	burst := max(1, n/10)
	return Budget{Burst: burst, Rate: float64(n-burst) / per.Seconds()}
}

// DefaultBudgets returns the documented limits (reference/limits-and-targets.md) by API name.
func DefaultBudgets() map[string]Budget {
	return map[string]Budget{
		APIGraph:         Window(150, time.Minute),   // 150 requests/min per app per tenant
		APIARMRead:       Bucket(250, 25),            // ARM: 250, then 25/s
		APIARMWrite:      Bucket(200, 10),            // ARM: 200, then 10/s
		APIARMDelete:     Bucket(200, 10),            // ARM: 200, then 10/s
		APISentinelWrite: Window(75, 5*time.Minute),  // documented minimum
		APISentinelRead:  Window(100, 5*time.Minute), // GET comments / POST alerts
		APIIngestion:     Window(12_000, time.Minute),
		// Undocumented; a socsync tenant needs a handful of tokens an hour, so this only stops a
		// runaway loop from earning Entra's 429 with Retry-After: 60.
		APIToken: Window(60, time.Minute),
	}
}
