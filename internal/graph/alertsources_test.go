package graph

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/incident"
)

// The serviceSource and detectionSource values of shared/reference/api-contracts.md §1.2,
// those after unknownFutureValue included (sent with Prefer: include-unknown-enum-members).
var (
	contractServiceSources = []string{"unknown", "microsoftDefenderForEndpoint", "microsoftDefenderForIdentity",
		"microsoftDefenderForCloudApps", "microsoftDefenderForOffice365", "microsoft365Defender", "azureAdIdentityProtection",
		"microsoftAppGovernance", "dataLossPrevention", "unknownFutureValue", "microsoftDefenderForCloud", "microsoftSentinel"}
	contractDetectionSources = []string{"unknown", "microsoftDefenderForEndpoint", "antivirus", "smartScreen", "customTi",
		"microsoftDefenderForOffice365", "automatedInvestigation", "microsoftThreatExperts", "customDetection",
		"microsoftDefenderForIdentity", "cloudAppSecurity", "microsoft365Defender", "azureAdIdentityProtection", "manual",
		"microsoftDataLossPrevention", "appGovernancePolicy", "appGovernanceDetection", "unknownFutureValue",
		"microsoftDefenderForCloud", "microsoftDefenderForIoT", "microsoftDefenderForServers", "microsoftDefenderForStorage",
		"microsoftDefenderForDNS", "microsoftDefenderForDatabases", "microsoftDefenderForContainers",
		"microsoftDefenderForNetwork", "microsoftDefenderForAppService", "microsoftDefenderForKeyVault",
		"microsoftDefenderForResourceManager", "microsoftDefenderForApiManagement", "microsoftSentinel", "nrtAlerts",
		"scheduledAlerts", "microsoftDefenderThreatIntelligenceAnalytics", "builtInMl"}
	// values the contract does not list, which must be kept all the same
	futureSources = []string{"microsoftDefenderForAI", "Some Future Source", "graph:looks-foreign"}
)

// Every serviceSource and detectionSource value, listed in the contract or not, is kept on the
// alert exactly as Graph sent it (never mapped, defaulted or flagged as an unknown enum), and
// survives the alert's JSON form (the store's and the API's) unchanged.
func TestAlertSources_EveryValueIsKeptRawAndRoundTrips(t *testing.T) {
	var cases [][2]string // serviceSource, detectionSource
	for _, s := range append(contractServiceSources, futureSources...) {
		cases = append(cases, [2]string{s, "customDetection"})
	}
	for _, d := range append(contractDetectionSources, futureSources...) {
		cases = append(cases, [2]string{"microsoft365Defender", d})
	}
	n := Normalizer{TenantID: "cfcdbe43-297b-4c6b-ac7e-8d7f6befb514"}
	for _, c := range cases {
		t.Run(c[0]+"/"+c[1], func(t *testing.T) {
			raw := fmt.Sprintf(`{"id":"7","tenantId":%q,"status":"active","severity":"medium","displayName":"x",
"createdDateTime":"2026-03-01T10:00:00Z","lastUpdateDateTime":"2026-03-01T11:00:00Z",
"alerts":[{"id":"da1","title":"a","severity":"high","status":"new","serviceSource":%q,"detectionSource":%q,
"createdDateTime":"2026-03-01T10:00:00Z","lastUpdateDateTime":"2026-03-01T10:30:00Z"}]}`, n.TenantID, c[0], c[1])
			o, err := n.Incident([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if len(o.Alerts) != 1 {
				t.Fatalf("alerts = %d, want 1", len(o.Alerts))
			}
			a := o.Alerts[0].Alert
			if a.ServiceSource != c[0] || a.DetectionSource != c[1] {
				t.Errorf("alert sources = %q/%q, want %q/%q as sent", a.ServiceSource, a.DetectionSource, c[0], c[1])
			}
			for _, f := range o.Flags {
				if strings.Contains(strings.ToLower(f), "source") {
					t.Errorf("flag %q: a source is free text, not an enum socsync maps", f)
				}
			}
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			var back incident.Alert
			if err := json.Unmarshal(b, &back); err != nil || back.ServiceSource != c[0] || back.DetectionSource != c[1] {
				t.Errorf("alert %s decodes with sources %q/%q, %v", b, back.ServiceSource, back.DetectionSource, err)
			}
		})
	}
}
