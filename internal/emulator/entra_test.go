package emulator

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
)

func TestEntra_OpenIDConfiguration(t *testing.T) {
	v := newEnv(t, Options{})
	ti := v.tenant(0)
	for _, key := range []string{ti.TenantID, ti.Domain} {
		status, m := v.doJSON("GET", "/"+key+"/v2.0/.well-known/openid-configuration", "", nil)
		wantStatus(t, status, 200, m)
		base := v.srv.URL + "/" + ti.TenantID
		if m["token_endpoint"] != base+"/oauth2/v2.0/token" || m["issuer"] != base+"/v2.0" || m["authorization_endpoint"] == nil {
			t.Errorf("%s: %v", key, m)
		}
	}
	status, m := v.doJSON("GET", "/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration", "", nil)
	wantStatus(t, status, 400, m)
	if m["error"] != "invalid_tenant" || !strings.HasPrefix(m["error_description"].(string), "AADSTS90002: Tenant '00000000-0000-0000-0000-000000000000' not found.") {
		t.Errorf("unknown tenant: %v", m)
	}
}

func TestEntra_TokenSuccess_ShapeLifetimeAndClaims(t *testing.T) {
	v := newEnv(t, Options{})
	ti := v.tenant(0)
	sample := loadSample(t, "entra_token_success_response.json")
	for _, scope := range []string{
		"https://graph.microsoft.com/.default",
		"https://graph.microsoft.com/.default openid offline_access profile",
		"https://management.azure.com//.default",
		"https://monitor.azure.com//.default",
	} {
		status, m := v.tokenResp(ti.TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {ti.ClientID},
			"client_secret": {ti.ClientSecret}, "scope": {scope}})
		wantStatus(t, status, 200, m)
		compareShape(t, "token", sample, m, false)
		exp := m["expires_in"].(float64)
		if exp < 3599 || exp > 5399 {
			t.Errorf("%s: expires_in %v not within 60–90 minutes", scope, exp)
		}
	}
	// client_secret by HTTP Basic authentication.
	req := url.Values{"grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default"}}
	resp, b := v.do("POST", "/"+ti.TenantID+"/oauth2/v2.0/token", "", req.Encode(),
		"Content-Type", "application/x-www-form-urlencoded",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(ti.ClientID)+":"+url.QueryEscape(ti.ClientSecret))))
	if resp.StatusCode != 200 {
		t.Fatalf("basic auth: %d %s", resp.StatusCode, b)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	cl, err := v.e.parseToken(m["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if cl.Tid != ti.TenantID || cl.AppID != ti.ClientID || cl.Aud != audGraph || cl.IDTyp != "app" || len(cl.Roles) == 0 {
		t.Errorf("claims %+v", cl)
	}
	if cl.Exp-testBase.Unix() < 3600 || cl.Exp-testBase.Unix() > 5400 {
		t.Errorf("exp %d not 60–90 min after the emulator clock", cl.Exp-testBase.Unix())
	}
}

func TestEntra_TokenErrors_AADSTSBodies(t *testing.T) {
	v := newEnv(t, Options{})
	t0, t1 := v.tenant(0), v.tenant(1)
	good := func() url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {t0.ClientID}, "client_secret": {t0.ClientSecret},
			"scope": {"https://graph.microsoft.com/.default"}}
	}
	with := func(k, val string) url.Values {
		f := good()
		if val == "" {
			f.Del(k)
		} else {
			f.Set(k, val)
		}
		return f
	}
	v.e.SetConsent(t1.TenantID, v.info.MultiTenantApp.ClientID, false, nil)
	multi := url.Values{"grant_type": {"client_credentials"}, "client_id": {v.info.MultiTenantApp.ClientID},
		"client_secret": {v.info.MultiTenantApp.ClientSecret}, "scope": {"https://graph.microsoft.com/.default"}}
	cases := []struct {
		name   string
		tenant string
		form   url.Values
		status int
		err    string
		code   int
		prefix string
	}{
		{"wrong secret", t0.TenantID, with("client_secret", "nope"), 401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + t0.ClientID + "'."},
		{"unknown tenant", "11111111-2222-3333-4444-555555555555", good(), 400, "invalid_request", 90002, "Tenant '11111111-2222-3333-4444-555555555555' not found."},
		{"unknown client", t0.TenantID, with("client_id", "99999999-9999-9999-9999-999999999999"), 400, "unauthorized_client", 700016, "Application with identifier '99999999-9999-9999-9999-999999999999' was not found in the directory 'Contoso'."},
		{"single-tenant app in another tenant", t1.TenantID, good(), 400, "unauthorized_client", 700016, "Application with identifier '" + t0.ClientID + "' was not found in the directory 'Fabrikam'."},
		{"consent revoked", t1.TenantID, multi, 400, "invalid_client", 7000229, "The client application " + v.info.MultiTenantApp.ClientID + " is missing service principal in the tenant " + t1.TenantID + "."},
		{"bad scope", t0.TenantID, with("scope", "https://foo.microsoft.com/.default"), 400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. The scope https://foo.microsoft.com/.default is not valid."},
		{"two resources", t0.TenantID, with("scope", "https://graph.microsoft.com/.default https://management.azure.com/.default"), 400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid."},
		{"not .default", t0.TenantID, with("scope", "https://graph.microsoft.com/SecurityIncident.Read.All"), 400, "invalid_scope", 1002012, "The provided value for scope https://graph.microsoft.com/SecurityIncident.Read.All is not valid. Client credential flows must have a scope value with /.default suffixed"},
		{"missing scope", t0.TenantID, with("scope", ""), 400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."},
		{"missing grant_type", t0.TenantID, with("grant_type", ""), 400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."},
		{"unsupported grant", t0.TenantID, with("grant_type", "password"), 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type 'password'."},
		{"missing client_id", t0.TenantID, with("client_id", ""), 400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."},
		{"no credential", t0.TenantID, with("client_secret", ""), 401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."},
		{"bad assertion type", t0.TenantID, func() url.Values {
			f := with("client_secret", "")
			f.Set("client_assertion_type", "x")
			f.Set("client_assertion", "y")
			return f
		}(), 400, "invalid_request", 7000219, "'client_assertion_type' must be"},
	}
	sample := loadSample(t, "entra_token_error_response_400.json")
	for _, c := range cases {
		status, m := v.tokenResp(c.tenant, c.form)
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%v)", c.name, status, c.status, m)
			continue
		}
		compareShape(t, c.name, sample, m, false)
		desc, _ := m["error_description"].(string)
		codes, _ := m["error_codes"].([]any)
		if m["error"] != c.err || len(codes) != 1 || codes[0] != float64(c.code) ||
			!strings.HasPrefix(desc, "AADSTS"+itoa(c.code)+": "+c.prefix) || !strings.Contains(desc, "\r\nTrace ID: ") {
			t.Errorf("%s: %v", c.name, m)
		}
	}
}

// assertion builds a client assertion signed with key (PS256 or RS256).
func assertion(t *testing.T, alg string, key *rsa.PrivateKey, cert *x509.Certificate, claims map[string]any) string {
	t.Helper()
	sum := sha256.Sum256(cert.Raw)
	hdr, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT", "x5t#S256": base64.StdEncoding.EncodeToString(sum[:])})
	pl, _ := json.Marshal(claims)
	in := b64.EncodeToString(hdr) + "." + b64.EncodeToString(pl)
	h := sha256.Sum256([]byte(in))
	var sig []byte
	var err error
	if alg == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64.EncodeToString(sig)
}

func TestEntra_ClientAssertion_ValidatesSignatureIssuerAudienceAndExpiry(t *testing.T) {
	v := newEnv(t, Options{CertTenants: 1})
	ti := v.tenant(0)
	id, pemData, err := v.e.TenantCertificate("0")
	if err != nil || id != ti.ClientID {
		t.Fatalf("certificate: %v %s", err, id)
	}
	var cert *x509.Certificate
	var key *rsa.PrivateKey
	rest := []byte(pemData)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			cert, _ = x509.ParseCertificate(blk.Bytes)
		case "PRIVATE KEY":
			k, _ := x509.ParsePKCS8PrivateKey(blk.Bytes)
			key = k.(*rsa.PrivateKey)
		}
	}
	aud := v.srv.URL + "/" + ti.TenantID + "/oauth2/v2.0/token"
	claims := func(mod func(map[string]any)) map[string]any {
		m := map[string]any{"aud": aud, "iss": ti.ClientID, "sub": ti.ClientID, "exp": testBase.Add(10 * time.Minute).Unix(), "jti": "x"}
		if mod != nil {
			mod(m)
		}
		return m
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name      string
		assertion string
		status    int
		code      int
	}{
		{"PS256", assertion(t, "PS256", key, cert, claims(nil)), 200, 0},
		{"RS256", assertion(t, "RS256", key, cert, claims(nil)), 200, 0},
		{"aud by domain", assertion(t, "PS256", key, cert, claims(func(m map[string]any) {
			m["aud"] = "https://login.microsoftonline.com/" + ti.Domain + "/oauth2/v2.0/token"
		})), 200, 0},
		{"wrong key", assertion(t, "PS256", otherKey, cert, claims(nil)), 401, 700027},
		{"wrong issuer", assertion(t, "PS256", key, cert, claims(func(m map[string]any) { m["iss"] = "someone" })), 401, 700021},
		{"wrong audience", assertion(t, "PS256", key, cert, claims(func(m map[string]any) { m["aud"] = v.srv.URL + "/" + v.tenant(1).TenantID + "/oauth2/v2.0/token" })), 401, 700027},
		{"expired", assertion(t, "PS256", key, cert, claims(func(m map[string]any) { m["exp"] = testBase.Add(-time.Hour).Unix() })), 401, 700024},
		{"malformed", "not-a-jwt", 401, 50027},
	}
	for _, c := range cases {
		status, m := v.tokenResp(ti.TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {ti.ClientID},
			"client_assertion_type": {assertionType}, "client_assertion": {c.assertion}, "scope": {"https://graph.microsoft.com/.default"}})
		if status != c.status {
			t.Errorf("%s: status %d, want %d: %v", c.name, status, c.status, m)
			continue
		}
		if c.code != 0 {
			if codes := m["error_codes"].([]any); codes[0] != float64(c.code) || m["error"] != "invalid_client" {
				t.Errorf("%s: %v", c.name, m)
			}
		}
	}
	// An app without a certificate credential refuses assertions.
	t1 := v.tenant(1)
	status, m := v.tokenResp(t1.TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {t1.ClientID},
		"client_assertion_type": {assertionType}, "client_assertion": {assertion(t, "PS256", key, cert, claims(nil))}, "scope": {"https://graph.microsoft.com/.default"}})
	if status != 401 || m["error_codes"].([]any)[0] != float64(700027) {
		t.Errorf("app without certificate: %d %v", status, m)
	}
}

func TestEntra_TokenForOneTenantIsRefusedByAnother(t *testing.T) {
	v := newEnv(t, Options{})
	// An ARM token of tenant 0 against tenant 1's subscription.
	status, m := v.doJSON("GET", v.wsPath(1, 0)+"/incidents?api-version=2025-12-01", v.armToken(0), nil)
	wantStatus(t, status, 401, m)
	if code, msg := errBody(t, m); code != "InvalidAuthenticationTokenTenant" || !strings.HasPrefix(msg, "The access token is from the wrong issuer 'https://sts.windows.net/"+v.tenant(0).TenantID+"/'.") {
		t.Errorf("%q %q", code, msg)
	}
	// A Graph token of tenant 1 only ever sees tenant 1 (the tenant comes from the token).
	_, list := v.doJSON("GET", incidentsPath, v.graphToken(1), nil)
	for _, it := range list["value"].([]any) {
		if it.(map[string]any)["tenantId"] != v.tenant(1).TenantID {
			t.Fatalf("tenant 1's token listed %v", it.(map[string]any)["tenantId"])
		}
	}
}
