package web

import (
	"encoding/json"
	"fmt"
	"strings"
)

// maxEvidence bounds how many pieces of evidence an alert's summary names.
const maxEvidence = 6

// evidenceSummary describes an alert's evidence in one line from its remote payload: for a
// Graph alert its evidence (device, user, file, process, …, with the verdict when it is not
// "unknown"), for a Sentinel alert entity its compromised entity and tactics. It is empty when
// the payload says nothing of it.
func evidenceSummary(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var a struct {
		Evidence   []map[string]any `json:"evidence"`
		Properties struct {
			CompromisedEntity string   `json:"compromisedEntity"`
			Tactics           []string `json:"tactics"`
		} `json:"properties"`
	}
	if json.Unmarshal(raw, &a) != nil {
		return ""
	}
	var parts []string
	for i, e := range a.Evidence {
		if i == maxEvidence {
			parts = append(parts, fmt.Sprintf("and %d more", len(a.Evidence)-maxEvidence))
			break
		}
		parts = append(parts, describeEvidence(e))
	}
	if p := a.Properties; len(parts) == 0 {
		if p.CompromisedEntity != "" {
			parts = append(parts, "entity "+p.CompromisedEntity)
		}
		if len(p.Tactics) > 0 {
			parts = append(parts, "tactics "+strings.Join(p.Tactics, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// graphAlerts returns the alerts of a Graph incident payload (as polled with $expand=alerts),
// by alert id: they carry the evidence, which a Sentinel copy of the same alert lacks.
func graphAlerts(raw json.RawMessage) map[string]json.RawMessage {
	var inc struct {
		Alerts []json.RawMessage `json:"alerts"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &inc) != nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for _, a := range inc.Alerts {
		var id struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(a, &id) == nil && id.ID != "" {
			out[id.ID] = a
		}
	}
	return out
}

// describeEvidence names one piece of Graph alert evidence: its kind and what identifies it.
func describeEvidence(e map[string]any) string {
	typ, _ := e["@odata.type"].(string)
	typ = strings.TrimSuffix(typ[strings.LastIndex(typ, ".")+1:], "Evidence")
	str := func(path ...string) string {
		var v any = e
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = m[p]
		}
		s, _ := v.(string)
		return s
	}
	kind, name := typ, ""
	switch typ {
	case "device":
		name = first(str("deviceDnsName"), str("hostName"), str("mdeDeviceId"))
	case "user":
		kind, name = "user", first(str("userAccount", "userPrincipalName"), str("userAccount", "accountName"))
	case "file":
		name = first(str("fileDetails", "fileName"))
	case "process":
		name = first(str("imageFile", "fileName"), str("processCommandLine"))
	case "registryKey":
		kind, name = "registry key", str("registryKey")
	case "registryValue":
		kind, name = "registry value", str("registryValueName")
	case "ip":
		kind, name = "IP", str("ipAddress")
	case "url":
		kind, name = "URL", str("url")
	case "mailbox":
		name = str("primaryAddress")
	case "analyzedMessage":
		kind, name = "email", str("subject")
	case "cloudApplication":
		kind, name = "cloud app", str("displayName")
	case "":
		kind = "evidence"
	}
	out := kind
	if name != "" {
		out += " " + name
	}
	if v := str("verdict"); v != "" && v != "unknown" {
		out += " (" + v + ")"
	}
	return out
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
