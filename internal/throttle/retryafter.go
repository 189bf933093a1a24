package throttle

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter bounds what a remote can ask for, so that a garbled header cannot park a key
// for years; a day is far beyond anything the services document.
const maxRetryAfter = 24 * time.Hour

// retryAfter returns how long the response asks the client to wait, and whether it asks at all.
// The millisecond headers Azure services send are preferred for their precision; Retry-After
// may be delay-seconds or an HTTP-date (RFC 9110 §10.2.3), judged against now.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	for _, name := range []string{"x-ms-retry-after-ms", "retry-after-ms"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil {
				return seconds(ms / 1000), true
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return seconds(s), true
	}
	if at, err := http.ParseTime(v); err == nil {
		return clampRetry(at.Sub(now)), true
	}
	return 0, false
}

// seconds converts a header's seconds to a duration within [0, maxRetryAfter] (NaN is 0).
func seconds(s float64) time.Duration {
	if !(s > 0) {
		return 0
	}
	if s >= maxRetryAfter.Seconds() {
		return maxRetryAfter
	}
	return time.Duration(s * float64(time.Second))
}

func clampRetry(d time.Duration) time.Duration {
	return min(max(d, 0), maxRetryAfter)
}
