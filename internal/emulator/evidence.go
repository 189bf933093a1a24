package emulator

import (
	"fmt"
	"strings"
)

// evidence renders an alert's evidence (derived from the seed and the alert, not stored), in
// the shapes of the Graph samples: deviceEvidence, fileEvidence, processEvidence,
// registryKeyEvidence and userEvidence.
func (e *Emulator) evidence(a *alert) []any {
	r := e.rng("evidence", a.inc.t.ID, a.id)
	t := a.inc.t
	created := fmtTime(a.created)
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[r.IntN(16)]
		}
		return string(b)
	}
	base := func(typ string, roles, detailed []string) map[string]any {
		return map[string]any{
			"@odata.type":              "#microsoft.graph.security." + typ,
			"createdDateTime":          created,
			"verdict":                  []string{"unknown", "suspicious", "malicious"}[r.IntN(3)],
			"remediationStatus":        "none",
			"remediationStatusDetails": nil,
			"roles":                    roles,
			"detailedRoles":            detailed,
			"tags":                     []string{},
		}
	}
	host := fmt.Sprintf("%s-ws%03d", strings.SplitN(t.Domain, ".", 2)[0], r.IntN(1000))
	deviceID := hex(40)
	device := base("deviceEvidence", []string{"compromised"}, []string{"Main device"})
	for k, v := range map[string]any{
		"firstSeenDateTime": fmtTime(a.created.AddDate(0, -r.IntN(12)-1, 0)),
		"mdeDeviceId":       deviceID,
		"azureAdDeviceId":   nil,
		"deviceDnsName":     host + "." + t.Domain,
		"osPlatform":        "Windows11",
		"osBuild":           22000 + r.IntN(700),
		"version":           "23H2",
		"healthStatus":      "active",
		"riskScore":         []string{"low", "medium", "high"}[r.IntN(3)],
		"rbacGroupId":       r.IntN(100),
		"rbacGroupName":     "UnassignedGroup",
		"onboardingStatus":  "onboarded",
		"defenderAvStatus":  "updated",
		"ipInterfaces":      []string{fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 1+r.IntN(254))},
		"loggedOnUsers":     []any{},
		"vmMetadata": map[string]any{
			"vmId":           e.guid("vm", deviceID),
			"cloudProvider":  "azure",
			"resourceId":     "/subscriptions/" + e.guid("vm-subscription", t.ID) + "/resourceGroups/rg-workloads/providers/Microsoft.Compute/virtualMachines/" + host,
			"subscriptionId": e.guid("vm-subscription", t.ID),
		},
	} {
		device[k] = v
	}
	u := t.Users[r.IntN(len(t.Users))]
	userAccount := map[string]any{
		"accountName": strings.SplitN(u.UPN, "@", 2)[0], "domainName": strings.ToUpper(strings.SplitN(t.Domain, ".", 2)[0]),
		"userSid":           fmt.Sprintf("S-1-5-21-%d-%d-%d-%d", r.Uint32(), r.Uint32(), r.Uint32(), 1000+r.IntN(9000)),
		"azureAdUserId":     u.ObjectID,
		"userPrincipalName": u.UPN,
		"displayName":       u.DisplayName,
	}
	user := base("userEvidence", []string{"compromised"}, []string{})
	user["userAccount"] = userAccount
	if a.serviceSource != "microsoftDefenderForEndpoint" {
		return []any{user, device}
	}
	fileName := []string{"invoice.exe", "update.ps1", "svchost32.exe", "payload.dll"}[r.IntN(4)]
	fileDetails := func(name, path string) map[string]any {
		return map[string]any{
			"sha1": hex(40), "sha256": hex(64), "fileName": name, "filePath": path,
			"fileSize": 10000 + r.IntN(5_000_000), "filePublisher": nil, "signer": nil, "issuer": nil,
		}
	}
	file := base("fileEvidence", []string{}, []string{"Referred in command line"})
	file["detectionStatus"] = "detected"
	file["mdeDeviceId"] = deviceID
	file["fileDetails"] = fileDetails(fileName, `C:\Users\Public\Downloads`)
	proc := base("processEvidence", []string{}, []string{})
	for k, v := range map[string]any{
		"processId":                     1000 + r.IntN(30000),
		"parentProcessId":               100 + r.IntN(1000),
		"processCommandLine":            `"` + fileName + `" -silent`,
		"processCreationDateTime":       created,
		"parentProcessCreationDateTime": fmtTime(a.created.Add(-1e9 * 3600)),
		"detectionStatus":               "detected",
		"mdeDeviceId":                   deviceID,
		"imageFile":                     fileDetails(fileName, `C:\Users\Public\Downloads`),
		"parentProcessImageFile":        fileDetails("explorer.exe", `C:\Windows`),
		"userAccount":                   userAccount,
	} {
		proc[k] = v
	}
	reg := base("registryKeyEvidence", []string{}, []string{})
	reg["registryKey"] = `SOFTWARE\MICROSOFT\WINDOWS\CURRENTVERSION\RUN`
	reg["registryHive"] = "HKEY_LOCAL_MACHINE"
	return []any{device, file, proc, reg}
}
