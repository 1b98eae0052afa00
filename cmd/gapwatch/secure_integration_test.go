package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/config/tlsclient"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/chstore"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// lockedBuffer is a log sink safe for concurrent writes and reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// secureConfig is every role against the SASL_SSL listener with SCRAM-SHA-512,
// the in-memory store, a heartbeat a second.
func secureConfig(t *testing.T, s servers.Secure, password string) config.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	var cfg config.Config
	cfg.Store = "memory"
	cfg.Kafka = config.Kafka{Brokers: s.KafkaBrokers, TLS: tlsclient.Config{Enabled: true, CAFile: s.CAFile},
		SASL: config.SASL{Mechanism: "SCRAM-SHA-512", Username: s.Username, Password: password}}
	cfg.Ingest.Topics = []string{servers.Unique("sasl_logs")}
	cfg.Ingest.Group = servers.Unique("sasl_group")
	cfg.Ingest.FlushInterval = 200 * time.Millisecond
	cfg.AlertsTopic = servers.Unique("sasl_alerts")
	cfg.Detect.Heartbeat = time.Second
	cfg.HTTP.Addr = addr
	cfg = cfg.WithDefaults()
	require.NoError(t, cfg.Validate())
	return cfg
}

// createSecureTopic creates a topic through the SASL_SSL listener.
func createSecureTopic(t *testing.T, transport kafka.RoundTripper, brokers []string, name string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}}})
	require.NoError(t, err)
	require.NoError(t, resp.Errors[name])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
	})
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startRoles runs every role in this process until the test ends.
func startRoles(t *testing.T, cfg config.Config, st store, logs io.Writer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		done <- runRoles(ctx, cfg, map[string]bool{"ingest": true, "detect": true, "api": true}, st, newRegistry(), log)
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("the roles did not stop within 30s of cancellation")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// Every Kafka connection speaks SASL_SSL: ingest counts exactly what a Go
// producer wrote over SCRAM-SHA-512, dead letters land, and the detector
// publishes its alerts (heartbeats) there.
func TestKafkaOverSASLSSL(t *testing.T) {
	s := servers.SecureServers(t)
	cfg := secureConfig(t, s, s.Password)
	_, transport, err := cfg.Kafka.Clients()
	require.NoError(t, err)
	topic := cfg.Ingest.Topics[0]
	createSecureTopic(t, transport, s.KafkaBrokers, topic, 3)
	createSecureTopic(t, transport, s.KafkaBrokers, cfg.AlertsTopic, 1)

	// 600 events over 6 streams, and one message that is not JSON; every
	// stream's counts add up to what was produced, once.
	now := time.Now().UTC().Truncate(time.Second)
	msgs, want := sixStreams(now)
	msgs = append(msgs, kafka.Message{Value: []byte("not json")})
	logs, stop, sum := produceAndCount(t, cfg, s.KafkaBrokers, transport, &kafka.RoundRobin{}, msgs, want, now, "SASL_SSL")

	// The dead letter went through the transport too.
	dlq := kafka.NewReader(kafka.ReaderConfig{Brokers: s.KafkaBrokers, Topic: topic + ".dlq", Partition: 0, MaxWait: 500 * time.Millisecond,
		Dialer: mustDialer(t, cfg)})
	defer dlq.Close()
	// Alerts: the heartbeat is published over SASL_SSL.
	alerts := kafka.NewReader(kafka.ReaderConfig{Brokers: s.KafkaBrokers, Topic: cfg.AlertsTopic, Partition: 0, MaxWait: 500 * time.Millisecond,
		Dialer: mustDialer(t, cfg)})
	defer alerts.Close()
	actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer acancel()
	m, err := alerts.ReadMessage(actx)
	require.NoError(t, err, "an alert on %s; log:\n%s", cfg.AlertsTopic, logs)
	var ce struct{ Type string }
	require.NoError(t, json.Unmarshal(m.Value, &ce))
	require.True(t, strings.HasPrefix(ce.Type, "io.gapwatch."), ce.Type)
	dm, err := dlq.ReadMessage(actx)
	require.NoError(t, err, "the dead letter on %s.dlq", topic)
	require.Equal(t, "not json", string(dm.Value))

	require.NoError(t, stop())
	require.Equal(t, fmt.Sprint(want), fmt.Sprint(sum()), "nothing counted twice")
	require.NotContains(t, logs.String(), s.Password, "the password is never logged")
}

func mustDialer(t *testing.T, cfg config.Config) *kafka.Dialer {
	d, _, err := cfg.Kafka.Clients()
	require.NoError(t, err)
	return d
}

// A wrong password is a clear error in the log and in /readyz within
// seconds, and the roles still stop promptly.
func TestKafkaWrongPassword(t *testing.T) {
	s := servers.SecureServers(t)
	const wrong = "not-the-password-4711"
	cfg := secureConfig(t, s, wrong)
	var logs lockedBuffer
	stop := startRoles(t, cfg, memstore.New(time.Hour), &logs)
	base := "http://" + cfg.HTTP.Addr
	start := time.Now()
	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = httpGet(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "authentication failed")
	}, 15*time.Second, 100*time.Millisecond, "readyz: %s", &body)
	t.Logf("readyz after %s:\n%s", time.Since(start).Round(time.Millisecond), body)
	require.Contains(t, body, "Kafka at "+s.KafkaBrokers[0])
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "authentication failed") }, 5*time.Second, 100*time.Millisecond)
	require.NotContains(t, logs.String(), wrong, "the password is never logged")
	require.NotContains(t, body, wrong)
	require.NoError(t, stop(), "no hang on shutdown")
}

// TLS to ClickHouse's secure native port, trusting the test CA; without the CA
// the certificate is refused.
func TestClickHouseTLS(t *testing.T) {
	s := servers.SecureServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := chstore.Config{Addr: s.ClickHouseAddr, Database: servers.Unique("gapwatch_tls"), TLS: tlsclient.Config{Enabled: true, CAFile: s.CAFile}}
	st, err := chstore.Open(ctx, cfg, nil)
	require.NoError(t, err)
	defer st.Close()
	_, err = st.Migrate(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+cfg.Database+"`") })
	require.NoError(t, st.Write(ctx, storage.Batch{Counts: []storage.Count{{Tenant: "acme", Source: "fw", Clock: storage.Arrival,
		Bucket: time.Now().Truncate(time.Minute).Unix(), Events: 5}}}))

	cfg.TLS.CAFile = "" // the system roots do not know the test CA
	_, err = chstore.Open(ctx, cfg, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "certificate")

	cfg.TLS.Enabled = false // plaintext to the TLS port: an error, not a hang
	short, cancel2 := context.WithTimeout(ctx, 15*time.Second)
	defer cancel2()
	_, err = chstore.Open(short, cfg, nil)
	require.Error(t, err)
	require.NoError(t, short.Err(), "failed before the deadline")
}

// Every supported mechanism authenticates through both the dialer (consumer
// group, fetches) and the transport (writers, admin); a wrong password fails
// both, quickly.
func TestKafkaSASLMechanisms(t *testing.T) {
	s := servers.SecureServers(t)
	for _, mech := range config.SASLMechanisms {
		for name, password := range map[string]string{"right": s.Password, "wrong": "wrong"} {
			t.Run(mech+"/"+name, func(t *testing.T) { // not the password: test names are printed
				k := config.Kafka{Brokers: s.KafkaBrokers, TLS: tlsclient.Config{Enabled: true, CAFile: s.CAFile},
					SASL: config.SASL{Mechanism: mech, Username: s.Username, Password: password}}
				dialer, transport, err := k.Clients()
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				_, terr := (&kafka.Client{Addr: kafka.TCP(s.KafkaBrokers...), Transport: transport}).ApiVersions(ctx, &kafka.ApiVersionsRequest{})
				conn, derr := dialer.DialContext(ctx, "tcp", s.KafkaBrokers[0])
				if derr == nil {
					conn.Close()
				}
				if password == s.Password {
					require.NoError(t, terr)
					require.NoError(t, derr)
					return
				}
				require.ErrorIs(t, terr, kafka.SASLAuthenticationFailed)
				require.ErrorIs(t, derr, kafka.SASLAuthenticationFailed)
				require.NoError(t, ctx.Err(), "an error, not a hang")
			})
		}
	}
}

// sixStreams are 600 events over 6 streams (tenants t0–t2, sources s0 and
// s1), a second apart back from now, keyed by tenant, and what each stream
// should count.
func sixStreams(now time.Time) ([]kafka.Message, map[[2]string]uint64) {
	var msgs []kafka.Message
	want := map[[2]string]uint64{}
	for i := range 600 {
		tenant, source := fmt.Sprintf("t%d", i%3), fmt.Sprintf("s%d", i%2)
		ev := fmt.Sprintf(`{"tenant":%q,"source":%q,"time":%q}`, tenant, source, now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339))
		msgs = append(msgs, kafka.Message{Key: []byte(tenant), Value: []byte(ev)})
		want[[2]string{tenant, source}]++
	}
	return msgs, want
}

// produceAndCount writes msgs to cfg's input topic over transport, runs the
// roles on a memstore until they are ready over the secured connection
// (named by over) and have counted exactly want, and returns their log,
// their stop and sum, which reads the counts again.
func produceAndCount(t *testing.T, cfg config.Config, brokers []string, transport kafka.RoundTripper, balancer kafka.Balancer,
	msgs []kafka.Message, want map[[2]string]uint64, now time.Time, over string) (logs *lockedBuffer, stop func() error, sum func() map[[2]string]uint64) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: cfg.Ingest.Topics[0], Transport: transport, Balancer: balancer,
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	require.NoError(t, w.Close())

	st := memstore.New(time.Hour)
	logs = &lockedBuffer{}
	stop = startRoles(t, cfg, st, logs)
	base := "http://" + cfg.HTTP.Addr
	require.Eventually(t, func() bool { code, _ := httpGet(t, base+"/readyz"); return code == http.StatusOK },
		60*time.Second, 200*time.Millisecond, "ready over %s; log:\n%s", over, logs)
	sum = func() map[[2]string]uint64 { return eventsPerStream(t, st, want, now) }
	require.Eventually(t, func() bool { return fmt.Sprint(sum()) == fmt.Sprint(want) }, 30*time.Second, 200*time.Millisecond,
		"counted %v, produced %v", sum(), want)
	return logs, stop, sum
}

// eventsPerStream sums, by event time, the events st holds for each stream of
// want (tenant, source) in the hour before now and the minute after it.
func eventsPerStream(t *testing.T, st *memstore.Store, want map[[2]string]uint64, now time.Time) map[[2]string]uint64 {
	t.Helper()
	got := map[[2]string]uint64{}
	for k := range want {
		pts, err := st.Rates(context.Background(), storage.RateQuery{Tenant: k[0], Source: k[1], Clock: storage.Event,
			From: now.Add(-time.Hour), To: now.Add(time.Minute), Step: time.Minute})
		require.NoError(t, err)
		for _, p := range pts {
			got[k] += p.Events
		}
	}
	return got
}
