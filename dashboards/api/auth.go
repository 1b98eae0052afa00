package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Access configures who may use the API. See docs/security.md.
type Access struct {
	// Tokens, when any, are required on every /api/v1/ request. Empty: the API
	// binds only a loopback address (unless InsecureNoAuth).
	Tokens []Token `yaml:"tokens"`
	// InsecureNoAuth allows serving a non-loopback address without tokens.
	InsecureNoAuth bool `yaml:"insecure_no_auth"`
	// TLS serves HTTPS when both files are given; default plain HTTP.
	TLS TLSFiles `yaml:"tls"`
}

// Token is one API token: the SHA-256 of its secret (never the secret) and the
// tenants it may see, or ["*"] for all.
type Token struct {
	Name    string   `yaml:"name"`
	SHA256  string   `yaml:"sha256"` // hex SHA-256 of the token presented as "Authorization: Bearer <token>"
	Tenants []string `yaml:"tenants"`
}

// TLSFiles names a PEM certificate chain and its private key.
type TLSFiles struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLSFiles) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Validate checks the tokens and TLS files.
func (a Access) Validate() error {
	names := map[string]bool{}
	for i, t := range a.Tokens {
		if t.Name == "" {
			return fmt.Errorf("http.tokens[%d]: name is required", i)
		}
		if names[t.Name] {
			return fmt.Errorf("http.tokens: name %q twice", t.Name)
		}
		names[t.Name] = true
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("http.tokens %s: sha256 must be 64 hex digits (the SHA-256 of the token, e.g. printf %%s TOKEN | sha256sum)", t.Name)
		}
		if len(t.Tenants) == 0 {
			return fmt.Errorf("http.tokens %s: tenants is required ([\"*\"] for all)", t.Name)
		}
		for _, tn := range t.Tenants {
			if tn == "" {
				return fmt.Errorf("http.tokens %s: empty tenant name", t.Name)
			}
		}
	}
	if a.TLS.Enabled() {
		if a.TLS.CertFile == "" || a.TLS.KeyFile == "" {
			return errors.New("http.tls: both cert_file and key_file are required")
		}
		if _, err := tls.LoadX509KeyPair(a.TLS.CertFile, a.TLS.KeyFile); err != nil {
			return fmt.Errorf("http.tls: %w", err)
		}
	}
	return nil
}

// ErrExposed is returned for a non-loopback listen address without tokens.
var ErrExposed = errors.New("serving the API beyond loopback needs http.tokens (or http.insecure_no_auth: true)")

// CheckExposure refuses to serve addr beyond loopback without tokens, unless
// InsecureNoAuth is set. ":8080" (an empty host) means every interface.
func (a Access) CheckExposure(addr string) error {
	if len(a.Tokens) > 0 || a.InsecureNoAuth || IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("http.addr %s: %w", addr, ErrExposed)
}

// IsLoopback reports whether addr (host:port or host) names only a loopback
// interface: 127.0.0.0/8, ::1 or localhost. An empty host is every interface.
func IsLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Scope is what one request may see: every tenant, or those of its token.
type Scope struct {
	Token   string // the token's name; "" without tokens
	all     bool
	tenants map[string]bool
}

// Allowed reports whether the scope covers tenant. A nil scope allows all.
func (s *Scope) Allowed(tenant string) bool {
	return s == nil || s.all || s.tenants[tenant]
}

type scopeKey struct{}

// ScopeOf returns the request's scope; nil (everything) when no tokens are configured.
func ScopeOf(ctx context.Context) *Scope {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}

// Allowed reports whether the request of ctx may see tenant. Listing handlers
// filter their rows with it.
func Allowed(ctx context.Context, tenant string) bool { return ScopeOf(ctx).Allowed(tenant) }

// withScope returns ctx carrying s (for tests of handlers).
func withScope(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// authenticator checks the bearer tokens of /api/v1/ requests.
type authenticator struct {
	tokens []tokenHash
	// loopbackOnly: no tokens, so requests must name a loopback host (a foreign
	// Host is a DNS-rebinding page talking to 127.0.0.1).
	loopbackOnly bool
}

type tokenHash struct {
	sum   []byte
	scope *Scope
}

func newAuthenticator(a Access) *authenticator {
	au := &authenticator{loopbackOnly: len(a.Tokens) == 0 && !a.InsecureNoAuth}
	for _, t := range a.Tokens {
		sum, err := hex.DecodeString(t.SHA256)
		if err != nil || len(sum) != sha256.Size {
			continue // Validate refuses it; never let a malformed entry match
		}
		sc := &Scope{Token: t.Name, tenants: map[string]bool{}}
		for _, tn := range t.Tenants {
			if tn == "*" {
				sc.all = true
			}
			sc.tenants[tn] = true
		}
		au.tokens = append(au.tokens, tokenHash{sum: sum, scope: sc})
	}
	return au
}

// lookup returns the scope of the presented token, or nil. It compares the
// SHA-256 of the token with every configured hash in constant time.
func (au *authenticator) lookup(token string) *Scope {
	sum := sha256.Sum256([]byte(token))
	var found *Scope
	for _, t := range au.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum) == 1 && found == nil {
			found = t.scope
		}
	}
	return found
}

// protect wraps next: /api/v1/ requests need a known bearer token (when tokens
// are configured) and a tenant= inside its scope, writes must be same-origin
// JSON. Everything else (/healthz, /readyz, /metrics, the page at /) is open.
func (s *Server) protect(next http.Handler) http.Handler {
	au := newAuthenticator(s.cfg.Access)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		if au.loopbackOnly && !IsLoopback(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q: without tokens the API answers only loopback names", r.Host))
			return
		}
		if err := sameOrigin(r); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		if isWrite(r.Method) && r.Method != http.MethodDelete {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, errors.New("writes need Content-Type: application/json"))
				return
			}
		}
		if len(au.tokens) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		var sc *Scope
		if ok && strings.EqualFold(scheme, "Bearer") {
			sc = au.lookup(strings.TrimSpace(token))
		}
		if sc == nil {
			// The presented token is never logged or echoed.
			w.Header().Set("WWW-Authenticate", `Bearer realm="gapwatch"`)
			writeError(w, http.StatusUnauthorized, errors.New("a valid bearer token is required"))
			return
		}
		for _, t := range r.URL.Query()["tenant"] {
			if t != "" && !sc.Allowed(t) {
				s.deps.Log.Info("tenant refused", "token", sc.Token, "tenant", t, "path", r.URL.Path)
				writeError(w, http.StatusForbidden, fmt.Errorf("token %s may not read tenant %q", sc.Token, t))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(withScope(r.Context(), sc)))
	})
}

// forbidTenant answers 403 and returns true when the request may not touch tenant.
func (s *Server) forbidTenant(w http.ResponseWriter, r *http.Request, tenant string) bool {
	sc := ScopeOf(r.Context())
	if sc.Allowed(tenant) {
		return false
	}
	s.deps.Log.Info("tenant refused", "token", sc.Token, "tenant", tenant, "path", r.URL.Path)
	writeError(w, http.StatusForbidden, fmt.Errorf("token %s may not touch tenant %q", sc.Token, tenant))
	return true
}

func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// sameOrigin refuses requests a browser sends on behalf of another site: an
// Origin (or Sec-Fetch-Site) that is not this host. Non-browser clients send
// neither and pass.
func sameOrigin(r *http.Request) error {
	if isWrite(r.Method) && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return errors.New("cross-site request refused")
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("origin %q is not this API's (%s): cross-site request refused", o, r.Host)
	}
	return nil
}
