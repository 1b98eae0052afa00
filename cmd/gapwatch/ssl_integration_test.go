package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// sslConfig is every role against Kafka's SSL listener (TLS, no SASL) as the
// environment sets it: GAPWATCH_KAFKA_TLS=true and the CA, nothing else.
func sslConfig(t *testing.T, brokers []string, caFile string) config.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{
		"GAPWATCH_KAFKA_BROKERS": strings.Join(brokers, ","),
		"GAPWATCH_KAFKA_TLS":     "true",
		"GAPWATCH_KAFKA_TLS_CA":  caFile,
		"GAPWATCH_STORE":         "memory",
		"GAPWATCH_ALERTS_TOPIC":  servers.Unique("ssl_alerts"),
		"GAPWATCH_HTTP_ADDR":     addr,
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Empty(t, cfg.Kafka.SASL.Mechanism, "no SASL")
	cfg.Ingest.Topics = []string{servers.Unique("ssl_logs")}
	cfg.Ingest.Group = servers.Unique("ssl_group")
	cfg.Ingest.FlushInterval = 200 * time.Millisecond
	cfg.Ingest.Limits.MaxStreamsPerTenant = 2
	cfg.Detect.Heartbeat = time.Second
	cfg = cfg.WithDefaults()
	require.NoError(t, cfg.Validate())
	return cfg
}

// Over TLS without SASL every Kafka connection works: ingest counts exactly
// what a producer wrote, the dead letter lands, and the alert topic gets the
// detector's heartbeats and ingest's stream cap alert.
func TestKafkaOverTLSWithoutSASL(t *testing.T) {
	brokers, ca := servers.KafkaSSL(t)
	cfg := sslConfig(t, brokers, ca)
	dialer, transport, err := cfg.Kafka.Clients()
	require.NoError(t, err)
	topic := cfg.Ingest.Topics[0]
	createSecureTopic(t, transport, brokers, topic, 3)
	createSecureTopic(t, transport, brokers, cfg.AlertsTopic, 1)

	// 600 events over 6 streams, a third source of t0 over its cap of 2, and
	// one message that is not JSON.
	now := time.Now().UTC().Truncate(time.Second)
	msgs, want := sixStreams(now)
	over := fmt.Sprintf(`{"tenant":"t0","source":"s9","time":%q}`, now.Format(time.RFC3339))
	msgs = append(msgs, kafka.Message{Key: []byte("t0"), Value: []byte(over)}, kafka.Message{Value: []byte("not json")})
	logs, stop, sum := produceAndCount(t, cfg, brokers, transport, &kafka.Hash{}, msgs, want, now, "TLS")

	actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer acancel()
	dlq := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic + ".dlq", GroupID: servers.Unique("ssl_dlq"),
		StartOffset: kafka.FirstOffset, MaxWait: 500 * time.Millisecond, Dialer: dialer})
	defer dlq.Close()
	alerts := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: cfg.AlertsTopic, Partition: 0, MaxWait: 500 * time.Millisecond, Dialer: dialer})
	defer alerts.Close()
	seen := map[string]bool{}
	for !seen["heartbeat"] || !seen["cap"] {
		m, err := alerts.ReadMessage(actx)
		require.NoError(t, err, "alerts on %s (seen %v); log:\n%s", cfg.AlertsTopic, seen, logs)
		var ce struct {
			Type, Source string
			Data         struct{ State, Cap, Tenant string }
		}
		require.NoError(t, json.Unmarshal(m.Value, &ce))
		switch {
		case ce.Type == "io.gapwatch.pipeline.heartbeat":
			seen["heartbeat"] = true
		case ce.Source == ingest.CapAlertSource:
			require.Equal(t, "io.gapwatch.pipeline.degraded", ce.Type)
			require.Equal(t, ingest.StateStreamCap, ce.Data.State)
			require.Equal(t, ingest.CapPerTenant, ce.Data.Cap)
			require.Equal(t, "t0", ce.Data.Tenant)
			seen["cap"] = true
		}
	}
	letters := map[string]bool{}
	for range 2 {
		dm, err := dlq.ReadMessage(actx)
		require.NoError(t, err, "the dead letters on %s.dlq", topic)
		letters[string(dm.Value)] = true
	}
	require.Equal(t, map[string]bool{"not json": true, over: true}, letters)

	require.NoError(t, stop())
	require.Equal(t, fmt.Sprint(want), fmt.Sprint(sum()), "nothing counted twice")
}

// A client that does not trust the listener's CA (here: the system roots)
// gets a clear error within seconds: /readyz names Kafka, TLS and the
// certificate, the log says it once, and the roles stop promptly.
func TestKafkaTLSUntrustedCA(t *testing.T) {
	brokers, ca := servers.KafkaSSL(t)
	cfg := sslConfig(t, brokers, ca)
	cfg.Kafka.TLS.CAFile = ""
	_, transport, err := cfg.Kafka.Clients()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err = (&kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}).ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	require.ErrorContains(t, err, "certificate signed by unknown authority")
	require.NoError(t, ctx.Err(), "an error, not a hang")

	var logs lockedBuffer
	stop := startRoles(t, cfg, memstore.New(time.Hour), &logs)
	start := time.Now()
	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = httpGet(t, "http://"+cfg.HTTP.Addr+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "TLS handshake failed")
	}, 15*time.Second, 100*time.Millisecond, "readyz: %s", &body)
	t.Logf("readyz after %s:\n%s", time.Since(start).Round(time.Millisecond), body)
	require.Contains(t, body, "Kafka at "+brokers[0])
	require.Contains(t, body, "certificate signed by unknown authority")
	require.Eventually(t, func() bool { return strings.Count(logs.String(), `msg="Kafka unusable"`) == 1 }, 5*time.Second, 100*time.Millisecond)
	require.NoError(t, stop(), "no hang on shutdown")
}
