package incident

import (
	"strings"
	"testing"
)

// roundTrip checks, for every remote value the contracts list, that reading it and writing the
// result back yields the same value (compared case-sensitively: it is what goes on the wire).
func roundTrip[H ~string](t *testing.T, table Table[H], values []string) {
	t.Helper()
	for _, raw := range values {
		h, _ := table.FromRemote(raw)
		back, ok := table.ToRemote(h)
		if !ok || back != raw {
			t.Errorf("%s %s %q → hub %q → %q (ok=%v), want %q back", table.System, table.Field, raw, h, back, ok, raw)
		}
	}
}

// Every enum value listed in shared/reference/api-contracts.md, known or not to socsync.
var (
	graphIncidentStatuses = []string{"active", "resolved", "inProgress", "redirected", "unknownFutureValue", "awaitingAction"}
	graphSeverities       = []string{"unknown", "informational", "low", "medium", "high", "unknownFutureValue"}
	graphClassifications  = []string{"unknown", "falsePositive", "truePositive", "informationalExpectedActivity", "unknownFutureValue"}
	graphDeterminations   = []string{"unknown", "apt", "malware", "securityPersonnel", "securityTesting", "unwantedSoftware",
		"other", "multiStagedAttack", "compromisedAccount", "phishing", "maliciousUserActivity", "notMalicious",
		"notEnoughDataToValidate", "confirmedActivity", "lineOfBusinessApplication", "unknownFutureValue"}
	graphAlertStatuses      = []string{"unknown", "new", "inProgress", "resolved", "unknownFutureValue"}
	sentinelStatuses        = []string{"New", "Active", "Closed"}
	sentinelSeverities      = []string{"High", "Medium", "Low", "Informational"}
	sentinelClassifications = []string{"Undetermined", "TruePositive", "BenignPositive", "FalsePositive"}
	sentinelReasons         = []string{"SuspiciousActivity", "SuspiciousButExpected", "IncorrectAlertLogic", "InaccurateData"}
	sentinelAlertStatuses   = []string{"New", "InProgress", "Resolved", "Dismissed"}
	// values no table knows, which must come back unchanged all the same
	remoteValuesForAllTables = []string{"someFutureValue", "Weird Value", "graph:looks-foreign", ""}
)

func TestMappingTables_EveryContractValueRoundTripsUnchanged(t *testing.T) {
	roundTrip(t, GraphStatus, append(graphIncidentStatuses, remoteValuesForAllTables...))
	roundTrip(t, GraphSeverity, append(graphSeverities, remoteValuesForAllTables...))
	roundTrip(t, GraphClassification, append(graphClassifications, remoteValuesForAllTables...))
	roundTrip(t, GraphDetermination, append(graphDeterminations, remoteValuesForAllTables...))
	roundTrip(t, GraphAlertStatus, append(graphAlertStatuses, remoteValuesForAllTables...))
	roundTrip(t, SentinelStatus, append(sentinelStatuses, remoteValuesForAllTables...))
	roundTrip(t, SentinelSeverity, append(sentinelSeverities, remoteValuesForAllTables...))
	roundTrip(t, SentinelClassification, append(sentinelClassifications, remoteValuesForAllTables...))
	roundTrip(t, SentinelReason, append(sentinelReasons, remoteValuesForAllTables...))
	roundTrip(t, SentinelAlertStatus, append(sentinelAlertStatuses, remoteValuesForAllTables...))
}

func TestMappingTables_ReadTheDocumentedHubValues(t *testing.T) {
	tests := []struct {
		table string
		got   string
		want  string
	}{
		{"graph status active", string(must(GraphStatus.FromRemote("active"))), "new"},
		{"graph status inProgress", string(must(GraphStatus.FromRemote("inProgress"))), "in_progress"},
		{"graph status resolved", string(must(GraphStatus.FromRemote("resolved"))), "resolved"},
		{"graph status redirected", string(must(GraphStatus.FromRemote("redirected"))), "merged"},
		{"sentinel status New", string(must(SentinelStatus.FromRemote("New"))), "new"},
		{"sentinel status Active", string(must(SentinelStatus.FromRemote("Active"))), "active"},
		{"sentinel status Closed", string(must(SentinelStatus.FromRemote("Closed"))), "resolved"},
		{"graph classification informationalExpectedActivity", string(must(GraphClassification.FromRemote("informationalExpectedActivity"))), "benign_positive"},
		{"graph classification unknown", string(must(GraphClassification.FromRemote("unknown"))), "undetermined"},
		{"sentinel alert Dismissed", string(must(SentinelAlertStatus.FromRemote("Dismissed"))), "dismissed"},
		{"graph determination legacy compromisedUser", string(must(GraphDetermination.FromRemote("compromisedUser"))), "compromised_account"},
		{"graph determination legacy clean", string(must(GraphDetermination.FromRemote("clean"))), "not_malicious"},
		{"graph determination legacy insufficientData", string(must(GraphDetermination.FromRemote("insufficientData"))), "not_enough_data_to_validate"},
		{"graph determination legacy confirmedUserActivity", string(must(GraphDetermination.FromRemote("confirmedUserActivity"))), "confirmed_activity"},
		{"PascalCase graph input", string(must(GraphClassification.FromRemote("TruePositive"))), "true_positive"},
		{"camelCase sentinel input", string(must(SentinelSeverity.FromRemote("high"))), "high"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.table, tt.got, tt.want)
		}
	}
}

func must[H ~string](v H, known bool) H {
	if !known {
		return H("NOT KNOWN: " + string(v))
	}
	return v
}

func TestMappingTables_UnknownRemoteValueIsKeptForeignNotDefaulted(t *testing.T) {
	for _, raw := range []string{"awaitingAction", "unknownFutureValue", "brandNewStatus"} {
		v, known := GraphStatus.FromRemote(raw)
		if known {
			t.Fatalf("%q reported as known", raw)
		}
		if v != Status("graph:"+raw) {
			t.Errorf("%q read as %q, want the foreign value graph:%s", raw, v, raw)
		}
		if _, ok := SentinelStatus.ToRemote(v); ok {
			t.Errorf("foreign Graph value %q must not be writable to Sentinel", v)
		}
		if IsForeign(v) != true {
			t.Errorf("IsForeign(%q) = false", v)
		}
	}
}

func TestMappingTables_EveryHubValueHasARemoteValueWhereTheRemoteCanHoldIt(t *testing.T) {
	for _, s := range Statuses {
		if _, ok := GraphStatus.ToRemote(s); !ok {
			t.Errorf("status %q has no Graph value", s)
		}
		if _, ok := SentinelStatus.ToRemote(s); !ok {
			t.Errorf("status %q has no Sentinel value", s)
		}
	}
	for _, s := range Severities {
		if _, ok := GraphSeverity.ToRemote(s); !ok {
			t.Errorf("severity %q has no Graph value", s)
		}
		if _, ok := SentinelSeverity.ToRemote(s); !ok {
			t.Errorf("severity %q has no Sentinel value", s)
		}
	}
	for _, c := range Classifications {
		if _, ok := GraphClassification.ToRemote(c); !ok {
			t.Errorf("classification %q has no Graph value", c)
		}
		if _, ok := SentinelClassification.ToRemote(c); !ok {
			t.Errorf("classification %q has no Sentinel value", c)
		}
	}
	for _, d := range Determinations {
		if _, ok := GraphDetermination.ToRemote(d); !ok {
			t.Errorf("determination %q has no Graph value", d)
		}
	}
	for _, r := range Reasons {
		if _, ok := SentinelReason.ToRemote(r); !ok {
			t.Errorf("reason %q has no Sentinel value", r)
		}
	}
	// Graph has no dismissed alert status; Sentinel has all four.
	if _, ok := GraphAlertStatus.ToRemote(AlertDismissed); ok {
		t.Error("dismissed must not be writable to Graph, which has no such alert status")
	}
	for _, s := range AlertStatuses {
		if _, ok := SentinelAlertStatus.ToRemote(s); !ok {
			t.Errorf("alert status %q has no Sentinel value", s)
		}
	}
}

func TestTable_EquivalentTreatsValuesWrittenAlikeAsEqual(t *testing.T) {
	tests := []struct {
		table Table[Status]
		a, b  Status
		want  bool
	}{
		{GraphStatus, StatusActive, StatusInProgress, true}, // both inProgress on Graph
		{SentinelStatus, StatusActive, StatusInProgress, true},
		{SentinelStatus, StatusResolved, StatusMerged, true}, // both Closed
		{GraphStatus, StatusResolved, StatusMerged, false},   // resolved vs redirected
		{GraphStatus, StatusNew, StatusActive, false},
		{SentinelStatus, StatusNew, StatusActive, false},
		{GraphStatus, "graph:awaitingAction", "graph:awaitingAction", true},
		{GraphStatus, "graph:awaitingAction", StatusNew, false},
		{SentinelStatus, "graph:awaitingAction", "graph:other", false},
	}
	for _, tt := range tests {
		if got := tt.table.Equivalent(tt.a, tt.b); got != tt.want {
			t.Errorf("%s Equivalent(%q, %q) = %v, want %v", tt.table.System, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestStatusFromSentinel_ClosedWithRedirectedLabelIsMerged(t *testing.T) {
	tests := []struct {
		status string
		labels []Label
		want   Status
	}{
		{"Closed", []Label{{Name: "Redirected", Type: "AutoAssigned"}}, StatusMerged},
		{"Closed", []Label{{Name: "redirected", Type: "User"}}, StatusMerged},
		{"Closed", []Label{{Name: "Other"}}, StatusResolved},
		{"Active", []Label{{Name: "Redirected"}}, StatusActive},
		{"New", nil, StatusNew},
	}
	for _, tt := range tests {
		if got, _ := StatusFromSentinel(tt.status, tt.labels); got != tt.want {
			t.Errorf("StatusFromSentinel(%q, %v) = %q, want %q", tt.status, tt.labels, got, tt.want)
		}
	}
}

func TestClassificationRefinements_FitTheirClassification(t *testing.T) {
	for _, c := range Classifications {
		for _, d := range DeterminationsFor(c) {
			if !d.Fits(c) {
				t.Errorf("determination %q listed for %q but does not fit", d, c)
			}
		}
		r := ReasonFor(c, "")
		if ReasonRequired(c) != (r != "") {
			t.Errorf("%q: ReasonRequired=%v but ReasonFor gives %q", c, ReasonRequired(c), r)
		}
		if !r.Fits(c) {
			t.Errorf("%q: default reason %q does not fit", c, r)
		}
		for _, r := range ReasonsFor(c) {
			if d := DeterminationFor(c, r); !d.Fits(c) {
				t.Errorf("%q/%q: DeterminationFor gives %q, which does not fit", c, r, d)
			}
		}
	}
	if got := ReasonFor(ClassificationFalsePositive, DeterminationNotEnoughDataToValidate); got != ReasonInaccurateData {
		t.Errorf("false positive, not enough data → %q, want inaccurate_data", got)
	}
	if got := DeterminationFor(ClassificationFalsePositive, ReasonIncorrectAlertLogic); got != DeterminationNotMalicious {
		t.Errorf("false positive, incorrect alert logic → %q, want not_malicious", got)
	}
	if DeterminationMalware.Fits(ClassificationFalsePositive) {
		t.Error("malware must not fit a false positive")
	}
	if ReasonRequired(ClassificationUndetermined) {
		t.Error("Sentinel closes undetermined incidents without a reason")
	}
}

func TestParse_AcceptsCaseAndSpaceAndNamesAllowedValuesOnError(t *testing.T) {
	if s, err := ParseStatus("  In_Progress "); err != nil || s != StatusInProgress {
		t.Errorf("ParseStatus = %q, %v", s, err)
	}
	_, err := ParseSeverity("critical")
	if err == nil || !strings.Contains(err.Error(), "informational, low, medium, high") {
		t.Errorf("ParseSeverity(critical) error = %v, want the allowed values listed", err)
	}
	if _, err := ParseStatus("graph:awaitingAction"); err == nil {
		t.Error("a foreign value must not be accepted as analyst input")
	}
}

func FuzzTables_NeverPanicAndRoundTripWhatTheyRead(f *testing.F) {
	for _, v := range append(graphIncidentStatuses, sentinelStatuses...) {
		f.Add(v)
	}
	f.Add("graph:x")
	f.Add("sentinel:")
	f.Fuzz(func(t *testing.T, raw string) {
		for _, table := range []Table[Status]{GraphStatus, SentinelStatus} {
			h, known := table.FromRemote(raw)
			back, ok := table.ToRemote(h)
			if !ok {
				t.Fatalf("%s: %q read as %q cannot be written back", table.System, raw, h)
			}
			if known && !strings.EqualFold(back, raw) || !known && back != raw {
				t.Fatalf("%s: %q → %q → %q", table.System, raw, h, back)
			}
		}
	})
}
