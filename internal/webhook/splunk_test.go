package webhook

import (
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
)

func TestAlert_SeverityComesFromSeverityOrUrgencyElseMedium(t *testing.T) {
	cases := []struct {
		result string
		want   incident.Severity
	}{
		{`{"urgency":"critical"}`, incident.SeverityHigh},
		{`{"urgency":"High"}`, incident.SeverityHigh},
		{`{"urgency":"low"}`, incident.SeverityLow},
		{`{"urgency":"informational"}`, incident.SeverityInformational},
		{`{"severity":"5"}`, incident.SeverityHigh},
		{`{"severity":4}`, incident.SeverityMedium},
		{`{"severity":"3","urgency":"critical"}`, incident.SeverityLow},
		{`{"severity":"nonsense","urgency":"high"}`, incident.SeverityHigh},
		{`{"severity":["info","high"]}`, incident.SeverityInformational},
		{`{"count":"8"}`, incident.SeverityMedium},
		{`{}`, incident.SeverityMedium},
	}
	for _, c := range cases {
		a, err := parseSplunk([]byte(`{"sid":"s","result":` + c.result + `}`))
		if err != nil {
			t.Fatalf("%s: %v", c.result, err)
		}
		if got := a.Severity(); got != c.want {
			t.Errorf("%s: severity %s, want %s", c.result, got, c.want)
		}
	}
}

func TestAlert_TitleAndTimeFromTheSearchAndTheResult(t *testing.T) {
	a, err := parseSplunk([]byte(`{"sid":"scheduler_admin_search_W2_at_14232356_132","search_name":null,"result":{"_time":"2026-11-20T10:00:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Title() != "Splunk alert scheduler_admin_search_W2_at_14232356_132" {
		t.Errorf("title %q", a.Title())
	}
	if at, ok := a.Time(); !ok || !at.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("time %v %v", at, ok)
	}
	if _, err := parseSplunk([]byte("{\"sid\":\"\xff\"}")); err == nil {
		t.Error("a body that is not UTF-8 was taken")
	}
}
