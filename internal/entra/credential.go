package entra

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/socsync/socsync/internal/throttle"
)

// tenantCredential is the credential For returns: azidentity's, pinned to one tenant, with
// errors that say which tenant failed and, when the token endpoint was throttled, carry the
// *throttle.Throttled that says until when.
type tenantCredential struct {
	tenant  string
	cred    azcore.TokenCredential
	blocked func(throttle.Key) *throttle.Throttled // nil when the transport does not throttle
}

// GetToken implements azcore.TokenCredential.
func (c *tenantCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if opts.TenantID != "" && !strings.EqualFold(opts.TenantID, c.tenant) {
		// A challenge or a caller asking for another tenant's token is refused here, whatever
		// the app registration would allow (I8).
		return azcore.AccessToken{}, fmt.Errorf("entra: credential of tenant %s asked for tenant %s: %w", c.tenant, opts.TenantID, ErrOtherTenant)
	}
	opts.TenantID = ""
	tok, err := c.cred.GetToken(ctx, opts)
	if err == nil {
		return tok, nil
	}
	if th := c.throttled(err); th != nil {
		return tok, fmt.Errorf("entra: token for tenant %s: %w (%w)", c.tenant, th, err)
	}
	return tok, fmt.Errorf("entra: token for tenant %s: %w", c.tenant, err)
}

// throttled recovers the transport's verdict on a token request that got no response.
func (c *tenantCredential) throttled(err error) *throttle.Throttled {
	var th *throttle.Throttled
	if errors.As(err, &th) {
		return nil // already in the chain
	}
	var afe *azidentity.AuthenticationFailedError
	if c.blocked == nil || (errors.As(err, &afe) && afe.RawResponse != nil) {
		return nil // Entra answered: its answer says what went wrong
	}
	return c.blocked(throttle.Key{API: throttle.APIToken, Scope: strings.ToLower(c.tenant)})
}
