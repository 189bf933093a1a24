package bench

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
)

func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no CA in " + file)
	}
	return pool, nil
}

func tlsConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func decodeJSON(resp *http.Response, into any) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// Table prints the report as one table.
func (r Report) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "metric\tsocsync\t"
	if r.Baseline != nil {
		head += "baseline (logic app)\tsocsync / baseline\t"
	}
	fmt.Fprintln(tw, head)
	row := func(name string, s, b any, ratio *float64) {
		line := fmt.Sprintf("%s\t%s\t", name, text(s))
		if r.Baseline != nil {
			line += fmt.Sprintf("%s\t%s\t", text(b), text(ratio))
		}
		fmt.Fprintln(tw, line)
	}
	var b Figures
	if r.Baseline != nil {
		b = *r.Baseline
	}
	ratio := func(k string) *float64 { return r.Ratios[k] }
	row("api_calls", r.Socsync.APICalls, b.APICalls, ratio("api_calls"))
	row("changes", r.Socsync.Changes, b.Changes, nil)
	row("calls_per_changed_incident", r.Socsync.CallsPerChanged, b.CallsPerChanged, ratio("calls_per_changed_incident"))
	row("sink_records", r.Socsync.SinkRecords, b.SinkRecords, ratio("sink_records"))
	row("sink_records_per_change", r.Socsync.SinkRecordsPerChange, b.SinkRecordsPerChange, ratio("sink_records_per_change"))
	row("lag_remote_to_hub_p50_s", r.Socsync.LagRemoteToHubP50, b.LagRemoteToHubP50, ratio("lag_remote_to_hub_p50_s"))
	row("lag_remote_to_hub_p99_s", r.Socsync.LagRemoteToHubP99, b.LagRemoteToHubP99, ratio("lag_remote_to_hub_p99_s"))
	row("lag_hub_to_remote_p99_s", r.Socsync.LagHubToRemoteP99, b.LagHubToRemoteP99, nil)
	row("lag_hub_to_sink_p99_s", r.Socsync.LagHubToSinkP99, b.LagHubToSinkP99, nil)
	row("upserts_per_s", r.Socsync.UpsertsPerS, b.UpsertsPerS, nil)
	row("poll_start_delay_p99_s", r.Socsync.PollStartDelayP99, b.PollStartDelayP99, nil)
	row("peak_rss_mb", r.Socsync.PeakRSSMB, b.PeakRSSMB, nil)
	row("retry_after_violations", r.Socsync.RetryAfterViolations, b.RetryAfterViolations, nil)
	row("unobserved_changes", r.Socsync.Unobserved, b.Unobserved, nil)
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case *float64:
		if x == nil {
			return "—"
		}
		return fmt.Sprintf("%.3g", *x)
	case float64:
		return fmt.Sprintf("%.3g", x)
	case int:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}
