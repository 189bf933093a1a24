package emulator

import (
	"slices"
	"strings"
)

// Graph enum members in the order of their underlying values. Members after
// unknownFutureValue are "evolvable": Graph returns them only to callers that send
// `Prefer: include-unknown-enum-members`, and unknownFutureValue otherwise.
var (
	gIncidentStatus = []string{"active", "resolved", "inProgress", "redirected", "unknownFutureValue", "awaitingAction"}
	gSeverity       = []string{"unknown", "informational", "low", "medium", "high", "unknownFutureValue"}
	gClassification = []string{"unknown", "falsePositive", "truePositive", "informationalExpectedActivity", "unknownFutureValue"}
	gDetermination  = []string{"unknown", "apt", "malware", "securityPersonnel", "securityTesting", "unwantedSoftware",
		"other", "multiStagedAttack", "compromisedAccount", "phishing", "maliciousUserActivity", "notMalicious",
		"notEnoughDataToValidate", "confirmedActivity", "lineOfBusinessApplication", "unknownFutureValue"}
	gAlertStatus     = []string{"unknown", "new", "inProgress", "resolved", "unknownFutureValue"}
	gServiceSource   = []string{"unknown", "microsoftDefenderForEndpoint", "microsoftDefenderForIdentity", "microsoftDefenderForCloudApps", "microsoftDefenderForOffice365", "microsoft365Defender", "azureAdIdentityProtection", "microsoftAppGovernance", "dataLossPrevention", "unknownFutureValue", "microsoftDefenderForCloud", "microsoftSentinel"}
	gDetectionSource = []string{"unknown", "microsoftDefenderForEndpoint", "antivirus", "smartScreen", "customTi", "microsoftDefenderForOffice365", "automatedInvestigation", "microsoftThreatExperts", "customDetection", "microsoftDefenderForIdentity", "cloudAppSecurity", "microsoft365Defender", "azureAdIdentityProtection", "manual", "microsoftDataLossPrevention", "appGovernancePolicy", "appGovernanceDetection", "unknownFutureValue", "microsoftDefenderForCloud", "microsoftDefenderForIoT", "microsoftDefenderForServers", "microsoftDefenderForStorage", "microsoftDefenderForDNS", "microsoftDefenderForDatabases", "microsoftDefenderForContainers", "microsoftDefenderForNetwork", "microsoftDefenderForAppService", "microsoftDefenderForKeyVault", "microsoftDefenderForResourceManager", "microsoftDefenderForApiManagement", "microsoftSentinel", "nrtAlerts", "scheduledAlerts", "microsoftDefenderThreatIntelligenceAnalytics", "builtInMl"}
)

// Legacy spellings of determination members that older Graph docs use; accepted on input.
var gDeterminationAliases = map[string]string{
	"compromiseduser":       "compromisedAccount",
	"clean":                 "notMalicious",
	"insufficientdata":      "notEnoughDataToValidate",
	"confirmeduseractivity": "confirmedActivity",
}

// Sentinel (ARM) enums.
var (
	sSeverity       = []string{"High", "Medium", "Low", "Informational"}
	sStatus         = []string{"New", "Active", "Closed"}
	sClassification = []string{"Undetermined", "TruePositive", "BenignPositive", "FalsePositive"}
	sReason         = []string{"SuspiciousActivity", "SuspiciousButExpected", "IncorrectAlertLogic", "InaccurateData"}
	sAlertStatus    = []string{"New", "InProgress", "Resolved", "Dismissed"}
)

// canon returns the member of members equal to in ignoring case.
func canon(members []string, in string) (string, bool) {
	for _, m := range members {
		if strings.EqualFold(m, in) {
			return m, true
		}
	}
	return "", false
}

// evolvable reports whether v comes after unknownFutureValue in members.
func evolvable(members []string, v string) bool {
	u := slices.Index(members, "unknownFutureValue")
	i := slices.Index(members, v)
	return u >= 0 && i > u
}

// visible is the value Graph prints for v: evolvable members become unknownFutureValue unless
// the caller opted in with Prefer: include-unknown-enum-members.
func visible(members []string, v string, prefer bool) string {
	if !prefer && evolvable(members, v) {
		return "unknownFutureValue"
	}
	return v
}

// visibleMembers is the member list a $filter may use.
func visibleMembers(members []string, prefer bool) []string {
	if prefer {
		return members
	}
	u := slices.Index(members, "unknownFutureValue")
	return members[:u+1]
}

// The emulator's model of Microsoft's Defender XDR ↔ Sentinel connector. An incident is stored
// once, in Graph vocabulary for status, severity and determination and in Sentinel vocabulary
// for classification and reason; each view maps it.

func sentinelSeverity(g string) string {
	switch g {
	case "high":
		return "High"
	case "medium":
		return "Medium"
	case "low":
		return "Low"
	default:
		return "Informational"
	}
}

func graphSeverity(s string) string { return strings.ToLower(s) }

func sentinelStatus(g string) string {
	switch g {
	case "active":
		return "New"
	case "resolved", "redirected":
		return "Closed"
	default: // inProgress, awaitingAction
		return "Active"
	}
}

// graphStatus maps a Sentinel status onto the stored Graph status, keeping the current value
// when it already maps to the same Sentinel status (awaitingAction stays, redirected stays).
func graphStatus(s, current string) string {
	if sentinelStatus(current) == s {
		return current
	}
	switch s {
	case "New":
		return "active"
	case "Active":
		return "inProgress"
	default:
		return "resolved"
	}
}

func graphClassification(c string) string {
	switch c {
	case "TruePositive":
		return "truePositive"
	case "BenignPositive":
		return "informationalExpectedActivity"
	case "FalsePositive":
		return "falsePositive"
	default:
		return "unknown"
	}
}

func sentinelClassification(g string) string {
	switch g {
	case "truePositive":
		return "TruePositive"
	case "informationalExpectedActivity":
		return "BenignPositive"
	case "falsePositive":
		return "FalsePositive"
	default:
		return ""
	}
}

// reasonFor derives Sentinel's classificationReason from a Graph classification and
// determination.
func reasonFor(class, determination string) string {
	switch class {
	case "TruePositive":
		return "SuspiciousActivity"
	case "BenignPositive":
		return "SuspiciousButExpected"
	case "FalsePositive":
		if determination == "notEnoughDataToValidate" {
			return "InaccurateData"
		}
		return "IncorrectAlertLogic"
	}
	return ""
}

// determinationFor derives a Graph determination from a Sentinel classification and reason,
// keeping the current determination when it is consistent with them.
func determinationFor(class, reason, current string) string {
	switch class {
	case "TruePositive":
		if slices.Contains([]string{"unknown", "notMalicious", "notEnoughDataToValidate", "securityTesting", "lineOfBusinessApplication", "confirmedActivity"}, current) {
			return "other"
		}
		return current
	case "BenignPositive":
		if slices.Contains([]string{"securityTesting", "lineOfBusinessApplication", "confirmedActivity", "securityPersonnel"}, current) {
			return current
		}
		return "other"
	case "FalsePositive":
		if reason == "InaccurateData" {
			return "notEnoughDataToValidate"
		}
		return "notMalicious"
	}
	return "unknown"
}

func sentinelAlertStatus(s string) string {
	switch s {
	case "inProgress":
		return "InProgress"
	case "resolved":
		return "Resolved"
	case "dismissed":
		return "Dismissed"
	default:
		return "New"
	}
}

// graphAlertStatus prints a stored alert status in Graph vocabulary (which has no
// "dismissed").
func graphAlertStatus(s string) string {
	if s == "dismissed" {
		return "resolved"
	}
	return s
}

// parseAlertStatus accepts Graph, Sentinel and Defender for Cloud spellings.
func parseAlertStatus(in string) (string, bool) {
	switch strings.ToLower(in) {
	case "new", "active":
		return "new", true
	case "inprogress", "in progress":
		return "inProgress", true
	case "resolved":
		return "resolved", true
	case "dismissed":
		return "dismissed", true
	}
	return "", false
}

// productName is what Sentinel shows as an alert's product for a Graph serviceSource.
func productName(serviceSource string) string {
	switch serviceSource {
	case "microsoftDefenderForEndpoint":
		return "Microsoft Defender Advanced Threat Protection"
	case "microsoftDefenderForIdentity":
		return "Azure Advanced Threat Protection"
	case "microsoftDefenderForCloudApps":
		return "Microsoft Cloud App Security"
	case "microsoftDefenderForOffice365":
		return "Office 365 Advanced Threat Protection"
	case "azureAdIdentityProtection":
		return "Azure Active Directory Identity Protection"
	case "microsoftDefenderForCloud":
		return "Azure Security Center"
	case "microsoftSentinel":
		return "Azure Sentinel"
	default:
		return "Microsoft 365 Defender"
	}
}
