package incident

import (
	"fmt"
	"strings"
)

// Status is a hub incident status.
type Status string

// Hub incident statuses (DESIGN.md §4.2).
const (
	StatusNew        Status = "new"
	StatusActive     Status = "active"
	StatusInProgress Status = "in_progress"
	StatusResolved   Status = "resolved"
	StatusMerged     Status = "merged"
)

// Severity is a hub incident or alert severity.
type Severity string

// Hub severities, lowest first.
const (
	SeverityInformational Severity = "informational"
	SeverityLow           Severity = "low"
	SeverityMedium        Severity = "medium"
	SeverityHigh          Severity = "high"
)

// Classification says what an incident turned out to be.
type Classification string

// Hub classifications.
const (
	ClassificationUndetermined   Classification = "undetermined"
	ClassificationTruePositive   Classification = "true_positive"
	ClassificationBenignPositive Classification = "benign_positive"
	ClassificationFalsePositive  Classification = "false_positive"
)

// Determination refines a classification the way Defender XDR does (Graph alertDetermination).
type Determination string

// Hub determinations: Graph's alertDetermination members in snake case.
const (
	DeterminationUnknown                 Determination = "unknown"
	DeterminationAPT                     Determination = "apt"
	DeterminationMalware                 Determination = "malware"
	DeterminationSecurityPersonnel       Determination = "security_personnel"
	DeterminationSecurityTesting         Determination = "security_testing"
	DeterminationUnwantedSoftware        Determination = "unwanted_software"
	DeterminationOther                   Determination = "other"
	DeterminationMultiStagedAttack       Determination = "multi_staged_attack"
	DeterminationCompromisedAccount      Determination = "compromised_account"
	DeterminationPhishing                Determination = "phishing"
	DeterminationMaliciousUserActivity   Determination = "malicious_user_activity"
	DeterminationNotMalicious            Determination = "not_malicious"
	DeterminationNotEnoughDataToValidate Determination = "not_enough_data_to_validate"
	DeterminationConfirmedActivity       Determination = "confirmed_activity"
	DeterminationLineOfBusinessApp       Determination = "line_of_business_application"
)

// ClassificationReason refines a classification the way Sentinel does.
type ClassificationReason string

// Hub classification reasons: Sentinel's classificationReason members in snake case.
const (
	ReasonSuspiciousActivity    ClassificationReason = "suspicious_activity"
	ReasonSuspiciousButExpected ClassificationReason = "suspicious_but_expected"
	ReasonIncorrectAlertLogic   ClassificationReason = "incorrect_alert_logic"
	ReasonInaccurateData        ClassificationReason = "inaccurate_data"
)

// AlertStatus is a hub alert status. Dismissed comes from Defender for Cloud alerts as Sentinel
// shows them.
type AlertStatus string

// Hub alert statuses.
const (
	AlertNew        AlertStatus = "new"
	AlertInProgress AlertStatus = "in_progress"
	AlertResolved   AlertStatus = "resolved"
	AlertDismissed  AlertStatus = "dismissed"
)

// Known values of each hub enum, in display order.
var (
	Statuses        = []Status{StatusNew, StatusActive, StatusInProgress, StatusResolved, StatusMerged}
	Severities      = []Severity{SeverityInformational, SeverityLow, SeverityMedium, SeverityHigh}
	Classifications = []Classification{ClassificationUndetermined, ClassificationTruePositive,
		ClassificationBenignPositive, ClassificationFalsePositive}
	Determinations = []Determination{DeterminationUnknown, DeterminationAPT, DeterminationMalware,
		DeterminationSecurityPersonnel, DeterminationSecurityTesting, DeterminationUnwantedSoftware,
		DeterminationOther, DeterminationMultiStagedAttack, DeterminationCompromisedAccount,
		DeterminationPhishing, DeterminationMaliciousUserActivity, DeterminationNotMalicious,
		DeterminationNotEnoughDataToValidate, DeterminationConfirmedActivity, DeterminationLineOfBusinessApp}
	Reasons = []ClassificationReason{ReasonSuspiciousActivity, ReasonSuspiciousButExpected,
		ReasonIncorrectAlertLogic, ReasonInaccurateData}
	AlertStatuses = []AlertStatus{AlertNew, AlertInProgress, AlertResolved, AlertDismissed}
)

// System names a remote system whose enums socsync maps.
type System string

// Remote systems.
const (
	Graph    System = "graph"
	Sentinel System = "sentinel"
)

// Foreign returns the hub value that stands for a remote value socsync does not know: the
// system and the raw spelling, as "graph:awaitingAction". It maps back to exactly that raw
// value on that system and to nothing elsewhere.
func Foreign[H ~string](sys System, raw string) H {
	return H(string(sys) + ":" + raw)
}

// ForeignParts splits a foreign value; ok is false for a known (or empty) hub value.
func ForeignParts[H ~string](v H) (sys System, raw string, ok bool) {
	for _, sys := range []System{Graph, Sentinel} {
		if r, found := strings.CutPrefix(string(v), string(sys)+":"); found {
			return sys, r, true
		}
	}
	return "", "", false
}

// IsForeign reports whether v is a foreign value (a remote value socsync does not know).
func IsForeign[H ~string](v H) bool {
	_, _, ok := ForeignParts(v)
	return ok
}

// parse returns the known hub value equal to s (case-insensitive, trimmed) or an error that
// lists the allowed values. Empty input is an error; callers decide whether a field may be unset.
func parse[H ~string](what string, known []H, s string) (H, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, k := range known {
		if string(k) == t {
			return k, nil
		}
	}
	allowed := make([]string, len(known))
	for i, k := range known {
		allowed[i] = string(k)
	}
	return "", fmt.Errorf("invalid %s %q: want one of %s", what, s, strings.Join(allowed, ", "))
}

// ParseStatus parses a hub status as an analyst or API client would give it.
func ParseStatus(s string) (Status, error) { return parse("status", Statuses, s) }

// ParseSeverity parses a hub severity.
func ParseSeverity(s string) (Severity, error) { return parse("severity", Severities, s) }

// ParseClassification parses a hub classification.
func ParseClassification(s string) (Classification, error) {
	return parse("classification", Classifications, s)
}

// ParseDetermination parses a hub determination.
func ParseDetermination(s string) (Determination, error) {
	return parse("determination", Determinations, s)
}

// ParseReason parses a hub classification reason.
func ParseReason(s string) (ClassificationReason, error) {
	return parse("classification_reason", Reasons, s)
}

// ParseAlertStatus parses a hub alert status.
func ParseAlertStatus(s string) (AlertStatus, error) {
	return parse("alert status", AlertStatuses, s)
}

// Rank orders severities: informational 0 … high 3; unknown and foreign values rank -1.
func (s Severity) Rank() int {
	for i, k := range Severities {
		if k == s {
			return i
		}
	}
	return -1
}

// Closed reports whether the status ends the incident's life (resolved or merged).
func (s Status) Closed() bool { return s == StatusResolved || s == StatusMerged }
