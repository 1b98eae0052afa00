package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/config"
)

// caFile writes a throwaway CA certificate.
func caFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return p
}

func TestSecureConnectionsFromEnvironment(t *testing.T) {
	ca := caFile(t)
	c, err := config.Load(filepath.Join(t.TempDir(), "none.yaml"), env(nil))
	require.Error(t, err)
	path := filepath.Join(t.TempDir(), "g.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
kafka: {brokers: [kafka.internal:9093], sasl: {mechanism: plain, username: from-file}}
clickhouse: {addr: "ch.internal:9440", password: "ch-s3cret", tls: {enabled: true}}
http: {addr: ":8443", tokens: [{name: grafana, sha256: `+strings.Repeat("ab", 32)+`, tenants: ["*"]}]}
`), 0o600))
	c, err = config.Load(path, env(map[string]string{
		"GAPWATCH_KAFKA_TLS":            "true",
		"GAPWATCH_KAFKA_TLS_CA":         ca,
		"GAPWATCH_KAFKA_SASL_MECHANISM": "scram-sha-512",
		"GAPWATCH_KAFKA_SASL_USERNAME":  "gapwatch",
		"GAPWATCH_KAFKA_SASL_PASSWORD":  "kafka-s3cret",
		"GAPWATCH_CLICKHOUSE_TLS_CA":    ca,
	}))
	require.NoError(t, err)
	require.True(t, c.Kafka.TLS.Enabled)
	require.Equal(t, ca, c.Kafka.TLS.CAFile)
	require.Equal(t, config.SASL{Mechanism: "SCRAM-SHA-512", Username: "gapwatch", Password: "kafka-s3cret"}, c.Kafka.SASL)
	require.True(t, c.ClickHouse.TLS.Enabled)
	require.Equal(t, ca, c.ClickHouse.TLS.CAFile)

	out := c.Redacted()
	for _, secret := range []string{"kafka-s3cret", "ch-s3cret", strings.Repeat("ab", 32)} {
		require.NotContains(t, out, secret)
	}
	require.Contains(t, out, "name: grafana")

	d, tr, err := c.Kafka.Clients()
	require.NoError(t, err)
	require.NotNil(t, d.TLS)
	require.NotNil(t, d.TLS.RootCAs, "the CA file is trusted")
	require.Equal(t, "SCRAM-SHA-512", d.SASLMechanism.Name())
	require.NotNil(t, tr.TLS)
	require.Equal(t, "SCRAM-SHA-512", tr.SASL.Name())
	require.NotZero(t, d.Timeout, "a silent broker is an error, not a hang")

	warnings, err := c.Insecure()
	require.NoError(t, err, "TLS everywhere, tokens on the API")
	require.Len(t, warnings, 1, "tokens over plain HTTP: %v", warnings)

	c.Kafka.SASL, c.Kafka.TLS.Enabled, c.Kafka.TLS.CAFile = config.SASL{}, false, ""
	d, tr, err = c.Kafka.Clients()
	require.NoError(t, err)
	require.Nil(t, d.TLS)
	require.Nil(t, d.SASLMechanism)
	require.Nil(t, tr.TLS)
	require.Nil(t, tr.SASL)
}

func TestInsecureSettingsRefused(t *testing.T) {
	tokens := "[{name: g, sha256: " + strings.Repeat("ab", 32) + ", tenants: ['*']}]"
	for _, tc := range []struct {
		name, yaml string
		refused    string // in the reason; "" when accepted
	}{
		{"defaults: all on loopback", "", ""},
		{"SASL on loopback plaintext", "kafka: {sasl: {mechanism: SCRAM-SHA-256, username: u, password: p}}", ""},
		{"SASL over plaintext", "kafka: {brokers: [127.0.0.1:9092, kafka2.internal:9092], sasl: {mechanism: SCRAM-SHA-256, username: u, password: p}}", "kafka2.internal:9092"},
		{"SASL over TLS", "kafka: {brokers: [kafka.internal:9093], tls: {enabled: true}, sasl: {mechanism: SCRAM-SHA-256, username: u, password: p}}", ""},
		{"ClickHouse without a password", "clickhouse: {addr: 'ch.internal:9440', tls: {enabled: true}}", "empty password"},
		{"ClickHouse password in plaintext", "clickhouse: {addr: '10.0.0.5:9000', password: p}", "plaintext"},
		{"ClickHouse remote over TLS", "clickhouse: {addr: 'ch.internal:9440', password: p, tls: {enabled: true}}", ""},
		{"ClickHouse remote but the memory store", "store: memory\nclickhouse: {addr: 'ch.internal:9000'}", ""},
		{"API on every interface without tokens", "http: {addr: ':8080'}", "http.tokens"},
		{"API on every interface with tokens", "http: {addr: ':8080', tokens: " + tokens + "}", ""},
		{"API open on purpose", "http: {addr: '0.0.0.0:8080', insecure_no_auth: true}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "g.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
			c, err := config.Load(path, env(nil))
			require.NoError(t, err)
			_, err = c.Insecure()
			if tc.refused == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, config.ErrInsecure)
			require.Contains(t, err.Error(), tc.refused)
			require.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestCheckConfigShowsEveryDefault(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := config.Load("", env(nil))
	require.NoError(t, err)
	out := c.Redacted()
	for _, want := range []string{"false_alarms_per_week: 0.03", "resolve_after: 15m0s", "retire_after: 168h0m0s",
		"interval: 1s", "history: 360h0m0s", "max_lag: 5m0s", "heartbeat: 1m0s", "alert_partitions: 3", "fill_window: 24h0m0s", "shards: 1"} {
		require.Contains(t, out, want)
	}
	// What check-config prints loads back as the same configuration.
	require.NoError(t, os.WriteFile("printed.yaml", []byte(out), 0o600))
	again, err := config.Load("printed.yaml", env(nil))
	require.NoError(t, err)
	require.Equal(t, out, again.Redacted())
	require.Equal(t, c.Live().Engine, again.Live().Engine)
}
