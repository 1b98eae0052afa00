package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsMatchTheContract(t *testing.T) {
	t.Chdir(t.TempDir()) // no gapwatch.yaml here
	c, err := config.Load("", env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:9092"}, c.Kafka.Brokers)
	require.Equal(t, []string{"logs"}, c.Ingest.Topics)
	require.Equal(t, "gapwatch-ingest", c.Ingest.Group)
	require.Equal(t, "gapwatch.alerts", c.AlertsTopic)
	require.Equal(t, "clickhouse", c.Store)
	require.Equal(t, "127.0.0.1:9000", c.ClickHouse.Addr)
	require.Equal(t, "gapwatch", c.ClickHouse.Database)
	require.Equal(t, "default", c.ClickHouse.User)
	require.Equal(t, "", c.ClickHouse.Password)
	require.Equal(t, "127.0.0.1:8080", c.HTTP.Addr)
	require.Equal(t, time.Minute, c.Bucket)
	require.Equal(t, time.Minute, c.Ingest.Bucket)
}

func TestFileThenEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
bucket: 5m
kafka: {brokers: [k1:9092, k2:9092]}
ingest:
  topics: [azure, cloudtrail]
  topic_fields:
    syslog_json: {tenant: [org.id], fixed_source: firewall}
clickhouse: {database: from_file, password: s3cret}
`), 0o600))
	c, err := config.Load(path, env(map[string]string{
		"GAPWATCH_INPUT_TOPICS":        "a, b ,c",
		"GAPWATCH_CLICKHOUSE_DATABASE": "from_env",
		"GAPWATCH_HTTP_ADDR":           "0.0.0.0:9999",
	}))
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, c.Ingest.Bucket)
	require.Equal(t, []string{"k1:9092", "k2:9092"}, c.Ingest.Brokers)
	require.Equal(t, []string{"a", "b", "c"}, c.Ingest.Topics, "environment overrides the file")
	require.Equal(t, "from_env", c.ClickHouse.Database)
	require.Equal(t, []string{"org.id"}, c.Ingest.TopicFields["syslog_json"].Tenant)
	require.Equal(t, "0.0.0.0:9999", c.HTTP.Addr)
	require.NotContains(t, c.Redacted(), "s3cret")
}

func TestBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.yaml")
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
	}{
		"unknown key":          {yaml: "kafak: {brokers: [x]}"},
		"bad store":            {env: map[string]string{"GAPWATCH_STORE": "postgres"}},
		"bad bucket":           {env: map[string]string{"GAPWATCH_BUCKET": "7s"}},
		"unparsable bucket":    {env: map[string]string{"GAPWATCH_BUCKET": "soon"}},
		"injected database":    {env: map[string]string{"GAPWATCH_CLICKHOUSE_DATABASE": "x; DROP TABLE y"}},
		"bad field format":     {yaml: "ingest: {fields: {format: xml}}"},
		"write vs rebalance":   {yaml: "ingest: {write_timeout: 2m, rebalance_timeout: 1m}"},
		"retire too soon":      {yaml: "detect: {resolve_after: 2h, retire_after: 90m}"},
		"empty label":          {yaml: "detect: {tenant_labels: {acme: [prod, '']}}"},
		"rule without tenants": {yaml: "detect: {coverage: [{sources: [edr]}]}"},
		"unknown SASL":         {env: map[string]string{"GAPWATCH_KAFKA_SASL_MECHANISM": "GSSAPI", "GAPWATCH_KAFKA_SASL_USERNAME": "u"}},
		"SASL without a user":  {yaml: "kafka: {sasl: {mechanism: PLAIN}}"},
		"user without SASL":    {env: map[string]string{"GAPWATCH_KAFKA_SASL_USERNAME": "u", "GAPWATCH_KAFKA_SASL_PASSWORD": "p"}},
		"TLS not a bool":       {env: map[string]string{"GAPWATCH_KAFKA_TLS": "yes please"}},
		"CA without TLS":       {env: map[string]string{"GAPWATCH_KAFKA_TLS_CA": "/etc/hostname"}},
		"CA missing":           {env: map[string]string{"GAPWATCH_CLICKHOUSE_TLS": "1", "GAPWATCH_CLICKHOUSE_TLS_CA": "/nonexistent.pem"}},
		"CA not PEM":           {env: map[string]string{"GAPWATCH_KAFKA_TLS": "true", "GAPWATCH_KAFKA_TLS_CA": "/etc/hostname"}},
		"token not a hash":     {yaml: "http: {tokens: [{name: g, sha256: hunter2, tenants: ['*']}]}"},
		"token without scope":  {yaml: "http: {tokens: [{name: g, sha256: " + strings.Repeat("ab", 32) + "}]}"},
		"unknown http key":     {yaml: "http: {token: x}"},
	} {
		_, err := config.Load(write(c.yaml), env(c.env))
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "\n", "%s: one line", name)
	}
	_, err := config.Load(filepath.Join(dir, "missing.yaml"), env(nil))
	require.Error(t, err, "an explicit file must exist")
}

// The tenants the coverage policy names are ingest's priority tenants,
// unless ingest names its own.
func TestPolicyTenantsArePriorityTenants(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
detect:
  coverage:
    - {tenants: ["*"], sources: [SignInLogs]}
    - {tenants: [globex, acme], sources: [aws.cloudtrail]}
  tenant_labels: {initech: [prod], acme: [prod]}
`), 0o600))
	c, err := config.Load(path, env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"acme", "globex", "initech"}, c.Ingest.Limits.PriorityTenants)
	require.Equal(t, 10_000, c.Ingest.Limits.ReservedStreams, "a tenth of max_streams")

	require.NoError(t, os.WriteFile(path, []byte("ingest: {limits: {priority_tenants: [only]}}\ndetect: {coverage: [{tenants: [acme], sources: [x]}]}\n"), 0o600))
	c, err = config.Load(path, env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"only"}, c.Ingest.Limits.PriorityTenants)
}
