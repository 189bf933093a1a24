package entra

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/socsync/socsync/internal/throttle"
)

// Kinds of token failure, as tenant health states.
const (
	// KindDegraded needs a person: consent, secret, certificate, app, tenant or configuration.
	// Retrying will not help until they act.
	KindDegraded = "degraded"
	// KindThrottled: Entra (or socsync's own token budget) asked to wait; errors.As on the
	// error gives the *throttle.Throttled with the time, when known.
	KindThrottled = "throttled"
	// KindTransient: Entra or the network failed; retry with backoff.
	KindTransient = "transient"
)

type aadsts struct {
	kind, reason string
}

// aadstsCodes are the Entra ID (AADSTS) codes a client-credentials token request meets: every
// code the emulator sends and the documented ones for consent, secrets, certificates and apps.
var aadstsCodes = map[int]aadsts{
	// Consent and the app's presence in the tenant.
	65001:   {KindDegraded, "consent missing: an administrator of the tenant must consent to the app"},
	7000229: {KindDegraded, "consent missing or revoked: the app has no service principal in the tenant"},
	500011:  {KindDegraded, "the API's service principal is not in the tenant (consent or licence missing)"},
	500014:  {KindDegraded, "the API's service principal is disabled in the tenant"},
	700016:  {KindDegraded, "app not found in the tenant: not consented there, or the wrong tenant"},
	7000112: {KindDegraded, "app disabled in the tenant"},
	50194:   {KindDegraded, "app is not configured as multi-tenant"},
	53003:   {KindDegraded, "blocked by a Conditional Access policy"},
	// Secrets and certificates.
	7000215: {KindDegraded, "invalid client secret"},
	7000222: {KindDegraded, "client secret expired"},
	7000218: {KindDegraded, "neither a client secret nor a certificate assertion was sent"},
	700027:  {KindDegraded, "certificate not registered on the app, or the assertion's signature is invalid"},
	700024:  {KindDegraded, "client assertion outside its validity period (check the clock)"},
	700021:  {KindDegraded, "client assertion names another app"},
	7000219: {KindDegraded, "invalid client_assertion_type"},
	50027:   {KindDegraded, "malformed client assertion"},
	5002738: {KindDegraded, "unsupported client assertion signature algorithm"},
	// Tenant.
	90002:  {KindDegraded, "tenant not found"},
	900023: {KindDegraded, "invalid tenant identifier"},
	// Requests socsync should never send: a bug or a misconfigured authority.
	70011:   {KindDegraded, "invalid scope"},
	1002012: {KindDegraded, "scope without /.default in a client-credentials request"},
	900144:  {KindDegraded, "token request missing a parameter"},
	70003:   {KindDegraded, "unsupported grant type"},
	900561:  {KindDegraded, "token endpoint called with the wrong method"},
	// Entra's own trouble.
	90033: {KindTransient, "transient Entra ID error"},
	50196: {KindThrottled, "request loop detected by Entra ID"},
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d{4,8})`)

// Classify turns a token error into a tenant health state: a kind (KindDegraded,
// KindThrottled or KindTransient; "" for nil) and a short reason for people, with the AADSTS
// code when Entra gave one. The reason never holds a secret or a token: it is built from
// fixed texts, codes, statuses and times — never from Entra's message — and, for a credential
// that could not be built, from socsync's own configuration error, which names references only.
func Classify(err error) (kind, reason string) {
	if err == nil {
		return "", ""
	}
	var cfg *ConfigError
	if errors.As(err, &cfg) {
		return KindDegraded, "credential configuration: " + cfg.Path + ": " + cfg.Err.Error()
	}
	if errors.Is(err, ErrOtherTenant) {
		return KindDegraded, "token requested for another tenant"
	}
	var th *throttle.Throttled
	if errors.As(err, &th) {
		until := th.NotBefore.UTC().Format(time.RFC3339)
		if th.Status == 0 {
			return KindThrottled, "token budget exhausted until " + until
		}
		return KindThrottled, fmt.Sprintf("token endpoint throttled (%d) until %s", th.Status, until)
	}
	status := 0
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		status = afe.RawResponse.StatusCode
	}
	if m := aadstsRE.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.Atoi(m[1])
		if a, ok := aadstsCodes[code]; ok {
			return a.kind, fmt.Sprintf("AADSTS%d: %s", code, a.reason)
		}
		switch {
		case status == 429:
			return KindThrottled, fmt.Sprintf("AADSTS%d: token endpoint throttled (429)", code)
		case status >= 500:
			return KindTransient, fmt.Sprintf("AADSTS%d: Entra ID error (%d)", code, status)
		}
		return KindDegraded, fmt.Sprintf("AADSTS%d: sign-in refused by Entra ID", code)
	}
	var netErr net.Error
	switch {
	case status == 429:
		return KindThrottled, "token endpoint throttled (429)"
	case status >= 500:
		return KindTransient, fmt.Sprintf("token endpoint error (%d)", status)
	case status >= 400:
		return KindDegraded, fmt.Sprintf("token request refused (%d)", status)
	case errors.Is(err, context.Canceled):
		return KindTransient, "token request canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return KindTransient, "token request timed out"
	case errors.As(err, &netErr):
		return KindTransient, "token endpoint unreachable"
	}
	return KindTransient, "token request failed"
}
