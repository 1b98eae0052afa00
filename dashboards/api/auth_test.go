package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

func hash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// tokens: "all-secret" sees every tenant, "acme-secret" only acme.
var tokens = []api.Token{
	{Name: "grafana", SHA256: hash("all-secret"), Tenants: []string{"*"}},
	{Name: "acme-viewer", SHA256: hash("acme-secret"), Tenants: []string{"acme"}},
}

type call struct {
	method, path, token, body, contentType, origin, host string
}

func do(t *testing.T, srv *httptest.Server, c call) (int, string) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, srv.URL+c.path, body)
	require.NoError(t, err)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// scopedServer serves two tenants' gaps, streams and silences behind tokens;
// the log goes to logs.
func scopedServer(t *testing.T, access api.Access, logs io.Writer) (*httptest.Server, *memstore.Store) {
	t.Helper()
	st := memstore.New(0)
	ctx := context.Background()
	var alerts []storage.Alert
	for i, tenant := range []string{"acme", "globex"} {
		alerts = append(alerts, storage.Alert{ID: tenant, Type: "io.gapwatch.gap.opened", Time: base, Key: tenant + "/fw",
			GapID: "g-" + tenant, Tenant: tenant, Source: "fw", Kind: "silence", StartedAt: base, DetectedAt: base, Expected: 10, Missing: 10, Seq: uint32(i)})
	}
	require.NoError(t, st.WriteAlerts(ctx, storage.AlertBatch{DetectProgress: storage.DetectProgress{Shards: 1, Seq: 1}, Alerts: alerts}))
	for _, tenant := range []string{"acme", "globex"} {
		require.NoError(t, st.PutSilence(ctx, storage.Silence{ID: "s-" + tenant, Tenant: tenant, StartsAt: base, EndsAt: base.Add(time.Hour), Created: base}))
		require.NoError(t, st.Write(ctx, storage.Batch{Counts: []storage.Count{{Tenant: tenant, Source: "fw", Clock: storage.Arrival, Bucket: base.Unix(), Events: 3}}}))
	}
	if logs == nil {
		logs = io.Discard
	}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(api.New(api.Config{Bucket: time.Minute, Access: access}, api.Deps{
		Rates: st, Gaps: st, Silences: st, Tenants: st, Gatherer: reg,
		Streams: streamList{{Tenant: "acme", Source: "fw", Status: "ok"}, {Tenant: "globex", Source: "fw", Status: "ok"}},
		Log:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}).Handler())
	t.Cleanup(srv.Close)
	return srv, st
}

func tenantsOf(t *testing.T, body string) []string {
	t.Helper()
	var rows []struct{ Tenant string }
	require.NoError(t, json.Unmarshal([]byte(body), &rows), body)
	var out []string
	for _, r := range rows {
		out = append(out, r.Tenant)
	}
	return out
}

func TestTokens(t *testing.T) {
	var logs bytes.Buffer
	srv, st := scopedServer(t, api.Access{Tokens: tokens}, &logs)
	rates := "/api/v1/rates?source=fw&from=2026-11-20T10:00:00Z&to=2026-11-20T10:01:00Z&tenant="

	for _, tc := range []struct {
		name  string
		c     call
		code  int
		rows  []string // the tenants a listing shows
		check bool
	}{
		{name: "no token", c: call{path: "/api/v1/gaps"}, code: 401},
		{name: "unknown token", c: call{path: "/api/v1/gaps", token: "guess"}, code: 401},
		{name: "a token's hash is not a token", c: call{path: "/api/v1/gaps", token: hash("all-secret")}, code: 401},
		{name: "unknown token on an unknown path", c: call{path: "/api/v1/nothing", token: "guess"}, code: 401},
		{name: "all tenants", c: call{path: "/api/v1/gaps", token: "all-secret"}, code: 200, rows: []string{"acme", "globex"}, check: true},
		{name: "scoped gaps", c: call{path: "/api/v1/gaps", token: "acme-secret"}, code: 200, rows: []string{"acme"}, check: true},
		{name: "scoped streams", c: call{path: "/api/v1/streams", token: "acme-secret"}, code: 200, rows: []string{"acme"}, check: true},
		{name: "scoped silences", c: call{path: "/api/v1/silences", token: "acme-secret"}, code: 200, rows: []string{"acme"}, check: true},
		{name: "scoped tenants", c: call{path: "/api/v1/tenants", token: "acme-secret"}, code: 200, rows: []string{"acme"}, check: true},
		{name: "all tenants listed", c: call{path: "/api/v1/tenants", token: "all-secret"}, code: 200, rows: []string{"acme", "globex"}, check: true},
		{name: "other tenant's sources", c: call{path: "/api/v1/tenants?tenant=globex", token: "acme-secret"}, code: 403},
		{name: "own tenant", c: call{path: "/api/v1/gaps?tenant=acme", token: "acme-secret"}, code: 200, rows: []string{"acme"}, check: true},
		{name: "other tenant's gaps", c: call{path: "/api/v1/gaps?tenant=globex", token: "acme-secret"}, code: 403},
		{name: "other tenant's streams", c: call{path: "/api/v1/streams?tenant=globex", token: "acme-secret"}, code: 403},
		{name: "other tenant's rates", c: call{path: rates + "globex", token: "acme-secret"}, code: 403},
		{name: "other tenant's coverage", c: call{path: "/api/v1/coverage?tenant=globex", token: "acme-secret"}, code: 403},
		{name: "a second tenant= is checked too", c: call{path: rates + "acme&tenant=globex", token: "acme-secret"}, code: 403},
		{name: "own rates", c: call{path: rates + "acme", token: "acme-secret"}, code: 200},
		{name: "create for another tenant", c: call{method: "POST", path: "/api/v1/silences", token: "acme-secret", contentType: "application/json",
			body: `{"tenant":"globex","ends_at":"2099-01-01T00:00:00Z","starts_at":"2098-12-31T00:00:00Z"}`}, code: 403},
		{name: "create for own tenant", c: call{method: "POST", path: "/api/v1/silences", token: "acme-secret", contentType: "application/json",
			body: `{"tenant":"acme","ends_at":"2099-01-01T00:00:00Z","starts_at":"2098-12-31T00:00:00Z"}`}, code: 201},
		{name: "delete another tenant's", c: call{method: "DELETE", path: "/api/v1/silences/s-globex", token: "acme-secret"}, code: 403},
		{name: "delete without a token", c: call{method: "DELETE", path: "/api/v1/silences/s-acme"}, code: 401},
		{name: "delete own", c: call{method: "DELETE", path: "/api/v1/silences/s-acme", token: "acme-secret"}, code: 204},
		{name: "healthz open", c: call{path: "/healthz"}, code: 200},
		{name: "readyz open", c: call{path: "/readyz"}, code: 200},
		{name: "metrics open", c: call{path: "/metrics"}, code: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.method == "" {
				tc.c.method = "GET"
			}
			code, body := do(t, srv, tc.c)
			require.Equal(t, tc.code, code, body)
			if tc.check {
				require.Equal(t, tc.rows, tenantsOf(t, body))
			}
		})
	}
	all, err := st.Silences(context.Background())
	require.NoError(t, err)
	left := map[string]string{}
	for _, sl := range all {
		left[sl.ID] = sl.Tenant
	}
	require.Len(t, left, 2, "globex's silence and acme's new one: %v", left)
	require.Equal(t, "globex", left["s-globex"], "the forbidden delete deleted nothing")
	require.NotContains(t, left, "s-acme", "the allowed delete deleted")

	require.NotContains(t, logs.String(), "guess", "a presented token is never logged")
	require.NotContains(t, logs.String(), "acme-secret")
	require.Contains(t, logs.String(), "acme-viewer", "refusals name the token")
}

// The exploit of issue 18: a page on any site makes the browser POST a silence
// to the API on 127.0.0.1 (no tokens) as a "simple" request: text/plain, no preflight.
func TestCrossSiteWritesRefused(t *testing.T) {
	srv, st := scopedServer(t, api.Access{}, nil)
	body := `{"tenant":"acme","ends_at":"2099-01-01T00:00:00Z","starts_at":"2098-12-31T00:00:00Z"}`
	for _, tc := range []struct {
		name string
		c    call
		code int
	}{
		{"the exploit: text/plain from a foreign origin", call{contentType: "text/plain", origin: "https://evil.example"}, 403},
		{"text/plain, no origin", call{contentType: "text/plain"}, 415},
		{"a form", call{contentType: "application/x-www-form-urlencoded"}, 415},
		{"JSON from a foreign origin", call{contentType: "application/json", origin: "https://evil.example"}, 403},
		{"JSON from another port of this host", call{contentType: "application/json", origin: "http://127.0.0.1:1"}, 403},
		{"opaque origin", call{contentType: "application/json", origin: "null"}, 403},
		{"DNS rebinding: a foreign Host on loopback", call{contentType: "application/json", host: "evil.example:8080", origin: "http://evil.example:8080"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.method, tc.c.path, tc.c.body = "POST", "/api/v1/silences", body
			code, resp := do(t, srv, tc.c)
			require.Equal(t, tc.code, code, resp)
		})
	}
	code, resp := do(t, srv, call{method: "DELETE", path: "/api/v1/silences/s-acme", origin: "https://evil.example"})
	require.Equal(t, http.StatusForbidden, code, resp)
	code, resp = do(t, srv, call{path: "/api/v1/gaps", host: "evil.example"})
	require.Equal(t, http.StatusForbidden, code, "reads through DNS rebinding: %s", resp)
	all, err := st.Silences(context.Background())
	require.NoError(t, err)
	require.Len(t, all, 2, "nothing was created or deleted")

	// Same-origin JSON (the built-in page, curl) is accepted.
	code, resp = do(t, srv, call{method: "POST", path: "/api/v1/silences", body: body, contentType: "application/json; charset=utf-8", origin: srv.URL})
	require.Equal(t, http.StatusCreated, code, resp)
	code, resp = do(t, srv, call{method: "DELETE", path: "/api/v1/silences/s-acme", host: "localhost"})
	require.Equal(t, http.StatusNoContent, code, resp)
}

func TestExposure(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		access api.Access
		ok     bool
	}{
		{"127.0.0.1:8080", api.Access{}, true},
		{"127.9.9.9:8080", api.Access{}, true},
		{"localhost:8080", api.Access{}, true},
		{"[::1]:8080", api.Access{}, true},
		{":8080", api.Access{}, false},
		{"0.0.0.0:8080", api.Access{}, false},
		{"[::]:8080", api.Access{}, false},
		{"10.1.2.3:8080", api.Access{}, false},
		{"gapwatch.internal:8080", api.Access{}, false},
		{"localhost.evil.example:8080", api.Access{}, false},
		{":8080", api.Access{Tokens: tokens}, true},
		{":8080", api.Access{InsecureNoAuth: true}, true},
	} {
		err := tc.access.CheckExposure(tc.addr)
		if tc.ok {
			require.NoError(t, err, tc.addr)
		} else {
			require.ErrorIs(t, err, api.ErrExposed, tc.addr)
		}
	}
	// Run and Serve refuse on their own too, whatever the caller checked.
	err := api.New(api.Config{Addr: ":0"}, api.Deps{}).Run(context.Background())
	require.ErrorIs(t, err, api.ErrExposed)
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	defer ln.Close()
	require.ErrorIs(t, api.New(api.Config{}, api.Deps{}).Serve(context.Background(), ln), api.ErrExposed)
}

func TestAccessValidate(t *testing.T) {
	require.NoError(t, api.Access{Tokens: tokens}.Validate())
	for _, bad := range []api.Access{
		{Tokens: []api.Token{{Name: "x", SHA256: "abc", Tenants: []string{"*"}}}},
		{Tokens: []api.Token{{Name: "x", SHA256: "all-secret", Tenants: []string{"*"}}}},
		{Tokens: []api.Token{{Name: "x", SHA256: hash("a")}}},
		{Tokens: []api.Token{{SHA256: hash("a"), Tenants: []string{"*"}}}},
		{Tokens: []api.Token{tokens[0], tokens[0]}},
		{TLS: api.TLSFiles{CertFile: "only-a-cert.pem"}},
		{TLS: api.TLSFiles{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}},
	} {
		require.Error(t, bad.Validate(), "%+v", bad)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gapwatch test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	access := api.Access{Tokens: tokens, TLS: api.TLSFiles{CertFile: certFile, KeyFile: keyFile}}
	require.NoError(t, access.Validate())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- api.New(api.Config{Access: access}, api.Deps{Gaps: memstore.New(0)}).Serve(ctx, ln)
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	req, err := http.NewRequest("GET", "https://"+ln.Addr().String()+"/api/v1/gaps", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer all-secret")
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP is not served")
	cancel()
	require.NoError(t, <-done)
}
