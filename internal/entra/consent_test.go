package entra

import (
	"net/url"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/config"
)

func TestConsentURL_NamesTheTenantAndItsApp(t *testing.T) {
	c, err := config.Parse([]byte(`
server: {public_url: "https://socsync.example.com"}
apps:
  - name: mssp
    credential: {client_id: 00000000-0000-0000-0000-0000000000a1, client_secret: env:S}
tenants:
  - id: 11111111-1111-1111-1111-111111111111
    credential: {app: mssp}
  - id: 22222222-2222-2222-2222-222222222222
    credential: {client_id: 55555555-5555-5555-5555-555555555555, client_secret: env:S}
`), "c.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ tenant, client string }{
		{"11111111-1111-1111-1111-111111111111", "00000000-0000-0000-0000-0000000000a1"},
		{"22222222-2222-2222-2222-222222222222", "55555555-5555-5555-5555-555555555555"},
	}
	for _, tt := range tests {
		got, err := ConsentURL(c, tt.tenant)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(got)
		if u.Host != "login.microsoftonline.com" || u.Path != "/"+tt.tenant+"/adminconsent" ||
			u.Query().Get("client_id") != tt.client || u.Query().Get("redirect_uri") != "https://socsync.example.com/tenants" {
			t.Errorf("ConsentURL(%s) = %s", tt.tenant, got)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("the URL mentions a secret: %s", got)
		}
	}
	if _, err := ConsentURL(c, "33333333-3333-3333-3333-333333333333"); err == nil {
		t.Error("an unknown tenant must be an error")
	}
}
