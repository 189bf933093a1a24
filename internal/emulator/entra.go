package emulator

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Audiences (resources) the token endpoint issues tokens for.
const (
	audGraph   = "https://graph.microsoft.com"
	audARM     = "https://management.azure.com/"
	audMonitor = "https://monitor.azure.com"
)

// resourceOf maps a scope's resource part to the audience of the token.
func resourceOf(res string) (string, bool) {
	switch strings.TrimRight(strings.ToLower(res), "/") {
	case "https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000":
		return audGraph, true
	case "https://management.azure.com", "https://management.core.windows.net":
		return audARM, true
	case "https://monitor.azure.com":
		return audMonitor, true
	}
	return "", false
}

// sameAudience compares audiences ignoring a trailing slash.
func sameAudience(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}

// claims is the payload of the emulator's access tokens (shaped like Entra v1 app tokens).
type claims struct {
	Aud      string   `json:"aud"`
	Iss      string   `json:"iss"`
	Iat      int64    `json:"iat"`
	Nbf      int64    `json:"nbf"`
	Exp      int64    `json:"exp"`
	AppID    string   `json:"appid"`
	AppIDAcr string   `json:"appidacr"`
	Azp      string   `json:"azp,omitempty"`
	IDP      string   `json:"idp"`
	IDTyp    string   `json:"idtyp"`
	OID      string   `json:"oid"`
	Roles    []string `json:"roles,omitempty"`
	Sub      string   `json:"sub"`
	Tid      string   `json:"tid"`
	Uti      string   `json:"uti"`
	Ver      string   `json:"ver"`
}

var b64 = base64.RawURLEncoding

func (e *Emulator) signToken(cl claims) string {
	header := b64.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256","kid":"socsync-emulator"}`))
	payload, _ := json.Marshal(cl)
	in := header + "." + b64.EncodeToString(payload)
	mac := hmac.New(sha256.New, e.tokenKey)
	mac.Write([]byte(in))
	return in + "." + b64.EncodeToString(mac.Sum(nil))
}

var errBadToken = errors.New("malformed or foreign token")

// parseToken checks a token's signature and decodes it; expiry and audience are the caller's.
func (e *Emulator) parseToken(raw string) (*claims, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errBadToken
	}
	mac := hmac.New(sha256.New, e.tokenKey)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errBadToken
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, errBadToken
	}
	var cl claims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, errBadToken
	}
	return &cl, nil
}

// bearer returns the bearer token of the request, if any.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// identify resolves who calls and which tenant's data the request touches, without judging
// it yet (faults apply before authentication, as a front end's would).
func (c *call) identify() {
	e := c.e
	if c.api == apiToken {
		key := c.p["tenant"]
		c.tenantKey = key
		e.mu.Lock()
		if t, ok := e.byTenant[strings.ToLower(key)]; ok {
			c.tenant = t
		}
		e.mu.Unlock()
		if err := c.r.ParseForm(); err == nil {
			c.principal = c.r.PostForm.Get("client_id")
			if c.principal == "" {
				if u, _, ok := c.r.BasicAuth(); ok {
					c.principal, _ = url.QueryUnescape(u)
				}
			}
		}
		return
	}
	if raw := bearer(c.r); raw != "" {
		if cl, err := e.parseToken(raw); err == nil {
			c.claims = cl
			c.principal = cl.AppID
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch c.api {
	case apiARM:
		c.sub = strings.ToLower(c.p["subscriptionId"])
		c.tenant = e.subs[c.sub]
		if c.tenant == nil && c.claims != nil {
			c.tenantKey = c.claims.Tid
		}
		return
	case apiIngestion:
		c.tenant = e.dcr.Tenant
	}
	if c.tenant == nil && c.claims != nil {
		c.tenant = e.byTenant[strings.ToLower(c.claims.Tid)]
		if c.tenant == nil {
			c.tenantKey = c.claims.Tid
		}
	}
}

// principalOID is the service principal object id of the caller in the data tenant.
func (c *call) principalOID() string {
	if c.claims != nil {
		return c.claims.OID
	}
	return c.principal
}

// aadError writes an Entra ID (AADSTS) error.
func (c *call) aadError(status int, errCode string, code int, desc string) {
	trace := c.requestID()
	corr := c.r.Header.Get("client-request-id")
	if corr == "" {
		corr = c.e.guid("correlation", itoa64(c.seq))
	}
	ts := c.start.Format("2006-01-02 15:04:05Z")
	writeJSON(c.w, status, "application/json; charset=utf-8", obj{
		{"error", errCode},
		{"error_description", fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", code, desc, trace, corr, ts)},
		{"error_codes", []int{code}},
		{"timestamp", ts},
		{"trace_id", trace},
		{"correlation_id", corr},
		{"error_uri", c.baseURL() + "/error?code=" + strconv.Itoa(code)},
	})
}

func (e *Emulator) openIDConfig(c *call) {
	t := c.tenant
	if t == nil {
		c.aadError(http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", c.tenantKey))
		return
	}
	base := c.baseURL() + "/" + t.ID
	c.json(http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"kerberos_endpoint":                     base + "/kerberos",
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
		"rbac_url":                              "https://pas.windows.net",
	})
}

func (e *Emulator) jwks(c *call) {
	if c.tenant == nil {
		c.aadError(http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found.", c.tenantKey))
		return
	}
	c.json(http.StatusOK, map[string]any{"keys": []any{}})
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// token is the client-credentials grant of POST /{tenant}/oauth2/v2.0/token.
func (e *Emulator) token(c *call) {
	r := c.r
	t := c.tenant
	if !c.limitToken() {
		return
	}
	if t == nil {
		c.aadError(http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", c.tenantKey))
		return
	}
	if err := r.ParseForm(); err != nil {
		c.aadError(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form := r.PostForm
	missing := func(p string) {
		c.aadError(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: '"+p+"'.")
	}
	grantType := form.Get("grant_type")
	if grantType == "" {
		missing("grant_type")
		return
	}
	if grantType != "client_credentials" {
		c.aadError(http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+grantType+"'.")
		return
	}
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		u, _ = url.QueryUnescape(u)
		p, _ = url.QueryUnescape(p)
		if clientID == "" {
			clientID = u
		}
		if secret == "" {
			secret = p
		}
	}
	if clientID == "" {
		missing("client_id")
		return
	}
	scope := form.Get("scope")
	if scope == "" {
		missing("scope")
		return
	}
	aud, msg, code := parseScope(scope)
	if code != 0 {
		c.aadError(http.StatusBadRequest, "invalid_scope", code, msg)
		return
	}

	e.mu.Lock()
	a := e.apps[strings.ToLower(clientID)]
	var g *grant
	var cert *x509.Certificate
	if a != nil && (a.Multi || a.Home == t) {
		if g = t.grants[a.ClientID]; g != nil {
			g = &grant{Granted: g.Granted, Roles: slices.Clone(g.Roles)}
		}
		cert = a.registeredCert()
	}
	e.mu.Unlock()
	if a == nil || (!a.Multi && a.Home != t) {
		c.aadError(http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, t.Name))
		return
	}

	acr := "1"
	switch {
	case form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "":
		if form.Get("client_assertion_type") != assertionType {
			c.aadError(http.StatusBadRequest, "invalid_request", 7000219, "'client_assertion_type' must be '"+assertionType+"'.")
			return
		}
		if status, errCode, code, msg := e.checkAssertion(c, a, cert, t, form.Get("client_assertion")); code != 0 {
			c.aadError(status, errCode, code, msg)
			return
		}
		acr = "2"
	case secret != "":
		if !hmac.Equal([]byte(secret), []byte(a.Secret)) {
			c.aadError(http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", a.ClientID))
			return
		}
	default:
		c.aadError(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	if g == nil || !g.Granted {
		c.aadError(http.StatusBadRequest, "invalid_client", 7000229, fmt.Sprintf("The client application %s is missing service principal in the tenant %s. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119", a.ClientID, t.ID))
		return
	}

	now := c.start
	r2 := e.rng("token-lifetime", t.ID, a.ClientID, itoa64(c.seq))
	life := 3600 + r2.IntN(1801) // 60–90 minutes
	cl := claims{
		Aud: aud, Iss: "https://sts.windows.net/" + t.ID + "/", Iat: now.Unix(), Nbf: now.Unix(),
		Exp: now.Unix() + int64(life), AppID: a.ClientID, AppIDAcr: acr, Azp: a.ClientID,
		IDP: "https://sts.windows.net/" + t.ID + "/", IDTyp: "app",
		OID: e.spObjectID(a, t), Sub: e.spObjectID(a, t), Tid: t.ID,
		Uti: b64.EncodeToString(e.bytes(16, "uti", itoa64(c.seq))), Ver: "1.0",
	}
	if aud == audGraph {
		cl.Roles = slices.Clone(g.Roles)
	}
	c.w.Header().Set("Cache-Control", "no-store, no-cache")
	c.w.Header().Set("Pragma", "no-cache")
	c.json(http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     life - 1,
		"ext_expires_in": life - 1,
		"access_token":   e.signToken(cl),
	})
}

// parseScope checks a client-credentials scope: exactly one "<resource>/.default" of a known
// resource, optionally with openid, offline_access, profile and email (which MSAL adds).
func parseScope(scope string) (aud, msg string, code int) {
	var rest []string
	for _, s := range strings.Fields(scope) {
		switch strings.ToLower(s) {
		case "openid", "offline_access", "profile", "email":
		default:
			rest = append(rest, s)
		}
	}
	invalid := func(s string) (string, string, int) {
		return "", "The provided value for the input parameter 'scope' is not valid. The scope " + s + " is not valid.", 70011
	}
	if len(rest) != 1 {
		return invalid(scope)
	}
	s := rest[0]
	res, ok := strings.CutSuffix(s, "/.default")
	if !ok {
		if i := strings.LastIndex(s, "/"); i > 0 {
			if _, known := resourceOf(s[:i]); known {
				return "", "The provided value for scope " + s + " is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", 1002012
			}
		}
		return invalid(s)
	}
	aud, known := resourceOf(res)
	if !known {
		return invalid(s)
	}
	return aud, "", 0
}

func (e *Emulator) spObjectID(a *app, t *tenant) string {
	return e.guid("service-principal", a.ClientID, t.ID)
}

// checkAssertion verifies a client assertion (RFC 7523 JWT signed with the app's certificate):
// PS256 or RS256 signature by a registered certificate (x5t#S256 / x5t thumbprint),
// iss = sub = client id, aud = this tenant's token endpoint, valid at the emulator's time.
func (e *Emulator) checkAssertion(c *call, a *app, cert *x509.Certificate, t *tenant, raw string) (status int, errCode string, code int, msg string) {
	bad := func(code int, msg string) (int, string, int, string) {
		return http.StatusUnauthorized, "invalid_client", code, msg
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return bad(50027, "JWT token is invalid or is malformed.")
	}
	hb, err1 := b64.DecodeString(parts[0])
	pb, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	var hdr struct {
		Alg     string   `json:"alg"`
		X5t     string   `json:"x5t"`
		X5tS256 string   `json:"x5t#S256"`
		X5c     []string `json:"x5c"`
	}
	var cl struct {
		Aud any    `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
		Nbf int64  `json:"nbf"`
	}
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(pb, &cl) != nil {
		return bad(50027, "JWT token is invalid or is malformed.")
	}
	if cert == nil {
		return bad(700027, "Client assertion failed signature validation. [Reason - The key was not found.] The certificate used to sign the client assertion is not registered on application '"+a.ClientID+"'.")
	}
	s256 := sha256.Sum256(cert.Raw)
	s1 := sha1.Sum(cert.Raw)
	thumbOK := false
	switch {
	case hdr.X5tS256 != "":
		thumbOK = thumbMatches(hdr.X5tS256, s256[:])
	case hdr.X5t != "":
		thumbOK = thumbMatches(hdr.X5t, s1[:])
	default:
		thumbOK = true // no thumbprint: try the registered key
	}
	if !thumbOK {
		return bad(700027, "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '"+hdr.X5tS256+hdr.X5t+"'] The certificate used to sign the client assertion is not registered on application '"+a.ClientID+"'.")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return bad(700027, "Client assertion failed signature validation.")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	var verr error
	switch hdr.Alg {
	case "PS256":
		verr = rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "RS256":
		verr = rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
	default:
		return bad(5002738, "Invalid JWT token. '"+hdr.Alg+"' is not a supported signature algorithm.")
	}
	if verr != nil {
		return bad(700027, "Client assertion failed signature validation.")
	}
	if !strings.EqualFold(cl.Iss, a.ClientID) || !strings.EqualFold(cl.Sub, a.ClientID) {
		return bad(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")
	}
	if !c.assertionAudienceOK(cl.Aud, t) {
		return bad(700027, fmt.Sprintf("Client assertion contains an invalid audience claim %v; it must be the token endpoint of tenant %s.", cl.Aud, t.ID))
	}
	// Only expiry is checked against the emulator's clock: clients stamp nbf with their wall
	// clock, which tests may have left far behind the emulator's.
	const skew = 300
	if cl.Exp == 0 || c.start.Unix() > cl.Exp+skew {
		return bad(700024, fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, expiry time of assertion %s.",
			c.start.Format("2006-01-02T15:04:05.0000000Z"), time.Unix(cl.Exp, 0).UTC().Format("2006-01-02T15:04:05.0000000Z")))
	}
	return 0, "", 0, ""
}

func thumbMatches(header string, want []byte) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if got, err := enc.DecodeString(header); err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// assertionAudienceOK accepts the token endpoint of the tenant (by id or domain, any host).
func (c *call) assertionAudienceOK(aud any, t *tenant) bool {
	var auds []string
	switch v := aud.(type) {
	case string:
		auds = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				auds = append(auds, s)
			}
		}
	}
	for _, a := range auds {
		u, err := url.Parse(a)
		if err != nil {
			continue
		}
		segs := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(segs) < 2 {
			continue
		}
		tk := strings.ToLower(segs[0])
		if tk != t.ID && tk != t.Domain {
			continue
		}
		rest := strings.Join(segs[1:], "/")
		if rest == "oauth2/v2.0/token" || rest == "oauth2/token" || rest == "v2.0" {
			return true
		}
	}
	return false
}

// registeredCert returns the app's certificate if it has a certificate credential.
func (a *app) registeredCert() *x509.Certificate {
	if !a.certWanted {
		return nil
	}
	return a.cert
}

// newCertificate generates a certificate credential (RSA 2048, self-signed) for an app: the
// parsed certificate, its key, and one PEM holding both.
func newCertificate(name string, serial []byte) (*x509.Certificate, *rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-24 * time.Hour),
		NotAfter:     time.Now().Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	return cert, key, pemData, nil
}

// ensureCertificates generates the certificate credentials of the given apps that have none
// yet, in parallel and without holding e.mu.
func (e *Emulator) ensureCertificates(apps []*app) error {
	type result struct {
		a    *app
		cert *x509.Certificate
		key  *rsa.PrivateKey
		pem  []byte
		err  error
	}
	e.mu.Lock()
	var todo []*app
	for _, a := range apps {
		if a.certWanted && a.cert == nil {
			todo = append(todo, a)
		}
	}
	e.mu.Unlock()
	ch := make(chan result, len(todo))
	sem := make(chan struct{}, 4)
	for _, a := range todo {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cert, key, p, err := newCertificate(a.Name+" "+a.ClientID, e.bytes(16, "cert-serial", a.ClientID))
			ch <- result{a, cert, key, p, err}
		}()
	}
	results := make([]result, 0, len(todo))
	for range todo {
		results = append(results, <-ch)
	}
	var errs []error
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if r.a.cert == nil {
			r.a.cert, r.a.certPEM = r.cert, r.pem
		}
	}
	return errors.Join(errs...)
}
