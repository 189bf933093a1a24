package incident

import "strings"

// Pair is one row of a mapping table: a hub value and the remote value it is written as and
// read from.
type Pair[H ~string] struct {
	Hub    H
	Remote string
}

// Table maps one hub enum to one remote enum, both ways. Reading is case-insensitive, because
// the services accept and have been seen to return both camelCase and PascalCase. Every table
// lives in this file, and the README shows them.
type Table[H ~string] struct {
	System System
	Field  string    // remote field name, for messages and the README
	Pairs  []Pair[H] // read and written both ways
	// WriteOnly hub values have no remote value of their own and are written as the nearest
	// one (hub "active" is Graph "inProgress"); reading that value back gives its Pairs hub value.
	WriteOnly []Pair[H]
	// Aliases are other spellings of a remote value that are read but never written (legacy
	// documentation names).
	Aliases []Pair[H]
}

// FromRemote maps a remote value to the hub. An empty remote value (null, absent) is the empty
// hub value. A value the table does not know comes back as a Foreign value with known false.
func (t Table[H]) FromRemote(raw string) (v H, known bool) {
	if raw == "" {
		return "", true
	}
	for _, rows := range [][]Pair[H]{t.Pairs, t.Aliases} {
		for _, p := range rows {
			if strings.EqualFold(p.Remote, raw) {
				return p.Hub, true
			}
		}
	}
	return Foreign[H](t.System, raw), false
}

// ToRemote maps a hub value to the value to write to the remote. ok is false when the remote
// cannot express the value: a foreign value from another system, or an unknown hub value.
// A foreign value of this table's own system is written back as its raw value, unchanged.
func (t Table[H]) ToRemote(v H) (remote string, ok bool) {
	if v == "" {
		return "", true
	}
	if sys, raw, foreign := ForeignParts(v); foreign {
		return raw, sys == t.System
	}
	for _, rows := range [][]Pair[H]{t.Pairs, t.WriteOnly} {
		for _, p := range rows {
			if p.Hub == v {
				return p.Remote, true
			}
		}
	}
	return "", false
}

// Equivalent reports whether two hub values are written as the same remote value, so that a
// difference between them is no change as far as this remote is concerned (hub "active" and
// hub "in_progress" on Graph). Unmappable values are equivalent only when equal.
func (t Table[H]) Equivalent(a, b H) bool {
	if a == b {
		return true
	}
	ra, oka := t.ToRemote(a)
	rb, okb := t.ToRemote(b)
	return oka && okb && strings.EqualFold(ra, rb)
}

// The mapping tables. Graph values are camelCase, Sentinel's PascalCase, as the services send them.
var (
	// GraphStatus maps incident status to Graph incidentStatus. Defender's "active" is the
	// untriaged state that Sentinel calls "New" (Microsoft's own connector maps them so), and its
	// "inProgress" is Sentinel's "Active". awaitingAction and unknownFutureValue stay foreign.
	GraphStatus = Table[Status]{System: Graph, Field: "status",
		Pairs: []Pair[Status]{
			{StatusNew, "active"}, {StatusInProgress, "inProgress"},
			{StatusResolved, "resolved"}, {StatusMerged, "redirected"},
		},
		WriteOnly: []Pair[Status]{{StatusActive, "inProgress"}},
	}
	// SentinelStatus maps incident status to Sentinel's status. A merged incident is Closed with
	// the Redirected label (see StatusFromSentinel).
	SentinelStatus = Table[Status]{System: Sentinel, Field: "status",
		Pairs: []Pair[Status]{
			{StatusNew, "New"}, {StatusActive, "Active"}, {StatusResolved, "Closed"},
		},
		WriteOnly: []Pair[Status]{{StatusInProgress, "Active"}, {StatusMerged, "Closed"}},
	}

	// GraphSeverity maps severity to Graph alertSeverity; "unknown" and "unknownFutureValue" stay foreign.
	GraphSeverity = Table[Severity]{System: Graph, Field: "severity",
		Pairs: []Pair[Severity]{
			{SeverityInformational, "informational"}, {SeverityLow, "low"},
			{SeverityMedium, "medium"}, {SeverityHigh, "high"},
		},
	}
	// SentinelSeverity maps severity to Sentinel's severity.
	SentinelSeverity = Table[Severity]{System: Sentinel, Field: "severity",
		Pairs: []Pair[Severity]{
			{SeverityInformational, "Informational"}, {SeverityLow, "Low"},
			{SeverityMedium, "Medium"}, {SeverityHigh, "High"},
		},
	}

	// GraphClassification maps classification to Graph alertClassification.
	GraphClassification = Table[Classification]{System: Graph, Field: "classification",
		Pairs: []Pair[Classification]{
			{ClassificationUndetermined, "unknown"},
			{ClassificationTruePositive, "truePositive"},
			{ClassificationBenignPositive, "informationalExpectedActivity"},
			{ClassificationFalsePositive, "falsePositive"},
		},
	}
	// SentinelClassification maps classification to Sentinel's classification.
	SentinelClassification = Table[Classification]{System: Sentinel, Field: "classification",
		Pairs: []Pair[Classification]{
			{ClassificationUndetermined, "Undetermined"},
			{ClassificationTruePositive, "TruePositive"},
			{ClassificationBenignPositive, "BenignPositive"},
			{ClassificationFalsePositive, "FalsePositive"},
		},
	}

	// GraphDetermination maps determination to Graph alertDetermination. The metadata (SDK)
	// names are canonical; the older names some documentation pages still list are read as aliases.
	GraphDetermination = Table[Determination]{System: Graph, Field: "determination",
		Pairs: []Pair[Determination]{
			{DeterminationUnknown, "unknown"}, {DeterminationAPT, "apt"},
			{DeterminationMalware, "malware"}, {DeterminationSecurityPersonnel, "securityPersonnel"},
			{DeterminationSecurityTesting, "securityTesting"},
			{DeterminationUnwantedSoftware, "unwantedSoftware"}, {DeterminationOther, "other"},
			{DeterminationMultiStagedAttack, "multiStagedAttack"},
			{DeterminationCompromisedAccount, "compromisedAccount"},
			{DeterminationPhishing, "phishing"},
			{DeterminationMaliciousUserActivity, "maliciousUserActivity"},
			{DeterminationNotMalicious, "notMalicious"},
			{DeterminationNotEnoughDataToValidate, "notEnoughDataToValidate"},
			{DeterminationConfirmedActivity, "confirmedActivity"},
			{DeterminationLineOfBusinessApp, "lineOfBusinessApplication"},
		},
		Aliases: []Pair[Determination]{
			{DeterminationCompromisedAccount, "compromisedUser"},
			{DeterminationNotMalicious, "clean"},
			{DeterminationNotEnoughDataToValidate, "insufficientData"},
			{DeterminationConfirmedActivity, "confirmedUserActivity"},
		},
	}
	// SentinelReason maps classification reason to Sentinel's classificationReason.
	SentinelReason = Table[ClassificationReason]{System: Sentinel, Field: "classificationReason",
		Pairs: []Pair[ClassificationReason]{
			{ReasonSuspiciousActivity, "SuspiciousActivity"},
			{ReasonSuspiciousButExpected, "SuspiciousButExpected"},
			{ReasonIncorrectAlertLogic, "IncorrectAlertLogic"},
			{ReasonInaccurateData, "InaccurateData"},
		},
	}

	// GraphAlertStatus maps alert status to Graph alert status. Graph has no "dismissed".
	GraphAlertStatus = Table[AlertStatus]{System: Graph, Field: "status",
		Pairs: []Pair[AlertStatus]{
			{AlertNew, "new"}, {AlertInProgress, "inProgress"}, {AlertResolved, "resolved"},
		},
	}
	// SentinelAlertStatus maps alert status to the SecurityAlert status Sentinel shows, which for
	// Defender for Cloud alerts is New, InProgress, Resolved or Dismissed.
	SentinelAlertStatus = Table[AlertStatus]{System: Sentinel, Field: "status",
		Pairs: []Pair[AlertStatus]{
			{AlertNew, "New"}, {AlertInProgress, "InProgress"},
			{AlertResolved, "Resolved"}, {AlertDismissed, "Dismissed"},
		},
	}
)

// RedirectedLabel is the label Sentinel puts on an incident that correlation closed into another.
const RedirectedLabel = "Redirected"

// StatusFromSentinel reads a Sentinel status together with the incident's labels: a Closed
// incident carrying the Redirected label was merged, not resolved.
func StatusFromSentinel(status string, labels []Label) (Status, bool) {
	s, known := SentinelStatus.FromRemote(status)
	if s == StatusResolved && HasLabel(labels, RedirectedLabel) {
		return StatusMerged, true
	}
	return s, known
}

// determinationsFor lists the determinations Defender offers for each classification, first
// the one socsync writes when it only knows a Sentinel reason.
var determinationsFor = map[Classification][]Determination{
	ClassificationUndetermined: {DeterminationUnknown},
	ClassificationTruePositive: {DeterminationOther, DeterminationMultiStagedAttack,
		DeterminationMaliciousUserActivity, DeterminationCompromisedAccount, DeterminationMalware,
		DeterminationPhishing, DeterminationUnwantedSoftware, DeterminationAPT},
	ClassificationBenignPositive: {DeterminationOther, DeterminationSecurityTesting,
		DeterminationLineOfBusinessApp, DeterminationConfirmedActivity, DeterminationSecurityPersonnel},
	ClassificationFalsePositive: {DeterminationOther, DeterminationNotMalicious,
		DeterminationNotEnoughDataToValidate},
}

// reasonsFor lists the reasons Sentinel offers for each classification, first the default.
var reasonsFor = map[Classification][]ClassificationReason{
	ClassificationUndetermined:   nil,
	ClassificationTruePositive:   {ReasonSuspiciousActivity},
	ClassificationBenignPositive: {ReasonSuspiciousButExpected},
	ClassificationFalsePositive:  {ReasonIncorrectAlertLogic, ReasonInaccurateData},
}

// DeterminationsFor returns the determinations that fit a classification (for forms and validation).
func DeterminationsFor(c Classification) []Determination { return determinationsFor[c] }

// ReasonsFor returns the classification reasons that fit a classification.
func ReasonsFor(c Classification) []ClassificationReason { return reasonsFor[c] }

// ReasonRequired reports whether Sentinel refuses to close an incident of this classification
// without a classification reason.
func ReasonRequired(c Classification) bool { return len(reasonsFor[c]) > 0 }

// ReasonFor picks the Sentinel reason for a classification when the hub knows only a Defender
// determination: "not enough data to validate" is inaccurate data, every other false positive is
// incorrect alert logic; the other classifications have a single reason.
func ReasonFor(c Classification, d Determination) ClassificationReason {
	if c == ClassificationFalsePositive && d == DeterminationNotEnoughDataToValidate {
		return ReasonInaccurateData
	}
	if rs := reasonsFor[c]; len(rs) > 0 {
		return rs[0]
	}
	return ""
}

// DeterminationFor picks the Defender determination for a classification when the hub knows
// only a Sentinel reason.
func DeterminationFor(c Classification, r ClassificationReason) Determination {
	switch {
	case c == ClassificationFalsePositive && r == ReasonInaccurateData:
		return DeterminationNotEnoughDataToValidate
	case c == ClassificationFalsePositive && r == ReasonIncorrectAlertLogic:
		return DeterminationNotMalicious
	}
	if ds := determinationsFor[c]; len(ds) > 0 {
		return ds[0]
	}
	return ""
}

// Fits reports whether a determination is one Defender offers for the classification. An empty
// determination fits any classification.
func (d Determination) Fits(c Classification) bool {
	if d == "" {
		return true
	}
	for _, x := range determinationsFor[c] {
		if x == d {
			return true
		}
	}
	return false
}

// Fits reports whether a reason is one Sentinel offers for the classification.
func (r ClassificationReason) Fits(c Classification) bool {
	if r == "" {
		return true
	}
	for _, x := range reasonsFor[c] {
		if x == r {
			return true
		}
	}
	return false
}
