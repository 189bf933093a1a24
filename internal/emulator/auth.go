package emulator

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// authGraph authenticates a Graph request: a token of this emulator for
// https://graph.microsoft.com, not expired, holding one of the roles. The tenant is the
// token's. It writes the error and returns false when the request must stop.
func (c *call) authGraph(roles ...string) bool {
	fail := func(msg string) bool {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		c.graphError(http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return false
	}
	raw := bearer(c.r)
	switch {
	case raw == "":
		return fail("Access token is empty.")
	case c.claims == nil:
		return fail("Access token validation failure. Invalid signature.")
	case !sameAudience(c.claims.Aud, audGraph):
		return fail("Access token validation failure. Invalid audience.")
	case c.start.Unix() >= c.claims.Exp:
		return fail("Lifetime validation failed, the token is expired.")
	case c.tenant == nil:
		return fail("Access token validation failure. Invalid issuer.")
	}
	if !hasAnyRole(c.claims.Roles, roles) {
		c.graphError(http.StatusForbidden, "Forbidden", "Missing application roles. API required roles: "+strings.Join(roles, ", ")+". Application roles: "+strings.Join(c.claims.Roles, ", ")+".")
		return false
	}
	return true
}

func hasAnyRole(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// armTime formats times as ARM's authentication errors do.
func armTime(t time.Time) string { return t.UTC().Format("1/2/2006 3:04:05 PM") }

// authARM authenticates an ARM request: a token for https://management.azure.com/ that is not
// expired and comes from the tenant the subscription belongs to.
func (c *call) authARM() bool {
	fail := func(code, msg, wwwErr string) bool {
		c.w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/", error="invalid_token", error_description="`+wwwErr+`"`)
		c.armError(http.StatusUnauthorized, code, msg)
		return false
	}
	raw := bearer(c.r)
	switch {
	case raw == "":
		return fail("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", "The authentication failed because of missing 'Authorization' header.")
	case c.claims == nil:
		return fail("InvalidAuthenticationToken", "The access token is invalid.", "The access token is invalid.")
	case !sameAudience(c.claims.Aud, audARM) && !sameAudience(c.claims.Aud, "https://management.core.windows.net/"):
		return fail("InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource '"+c.claims.Aud+"'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.", "The access token has been obtained for wrong audience.")
	case c.start.Unix() >= c.claims.Exp:
		return fail("ExpiredAuthenticationToken", "The access token expiry UTC time '"+armTime(time.Unix(c.claims.Exp, 0))+"' is earlier than current UTC time '"+armTime(c.start)+"'.", "The access token expiry UTC time is earlier than current UTC time.")
	}
	if c.tenant == nil {
		c.armError(http.StatusNotFound, "SubscriptionNotFound", "The subscription '"+c.p["subscriptionId"]+"' could not be found.")
		return false
	}
	if !strings.EqualFold(c.claims.Tid, c.tenant.ID) {
		return fail("InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer 'https://sts.windows.net/"+c.claims.Tid+"/'. It must match the tenant 'https://sts.windows.net/"+c.tenant.ID+"/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/"+c.tenant.ID+"' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later.", "The access token is from the wrong issuer.")
	}
	return true
}

// authIngestion authenticates a Logs Ingestion request: a token for https://monitor.azure.com
// from the tenant of the data collection rule.
func (c *call) authIngestion() bool {
	fail := func(msg string) bool {
		c.ingestionError(http.StatusUnauthorized, "InvalidToken", msg)
		return false
	}
	raw := bearer(c.r)
	switch {
	case raw == "":
		return fail("Authorization header is missing or empty.")
	case c.claims == nil:
		return fail("The provided authentication token is invalid.")
	case !sameAudience(c.claims.Aud, audMonitor):
		return fail("The audience '" + c.claims.Aud + "' of the authentication token is invalid; expected '" + audMonitor + "'.")
	case c.start.Unix() >= c.claims.Exp:
		return fail("The provided authentication token has expired.")
	}
	if !strings.EqualFold(c.claims.Tid, c.tenant.ID) {
		c.ingestionError(http.StatusForbidden, "OperationFailed", "The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '"+c.p["ruleId"]+"'.")
		return false
	}
	return true
}
