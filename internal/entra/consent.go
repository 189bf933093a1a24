package entra

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/socsync/socsync/internal/config"
)

// ConsentURL returns the admin-consent URL a customer's Global Administrator opens to grant
// socsync's app its permissions in their tenant: the tenant's own app registration, or the
// shared multi-tenant app it names. The redirect goes to the hub's tenants page,
// server.public_url + "/tenants" (which must be a redirect URI of the app registration), or to
// https://localhost when no public URL is set.
func ConsentURL(c *config.Config, tenantID string) (string, error) {
	var t config.Tenant
	found := false
	for _, x := range c.Tenants {
		if strings.EqualFold(x.ID, tenantID) {
			t, found = x, true
		}
	}
	if !found {
		return "", fmt.Errorf("tenant %s is not configured", tenantID)
	}
	clientID := t.Credential.ClientID
	if t.Credential.App != "" {
		app, ok := c.App(t.Credential.App)
		if !ok {
			return "", fmt.Errorf("tenant %s: no app named %q", tenantID, t.Credential.App)
		}
		clientID = app.Credential.ClientID
	}
	redirect := "https://localhost"
	if c.Server.PublicURL != "" {
		redirect = strings.TrimRight(c.Server.PublicURL, "/") + "/tenants"
	}
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "state": {t.ID}}
	return strings.TrimSuffix(c.Cloud.Authority, "/") + "/" + url.PathEscape(t.ID) + "/adminconsent?" + q.Encode(), nil
}
