package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// record is one log record the test sends, with what gapwatch must read from it.
type record struct {
	tenant, source string
	event          time.Time
}

// fixture is the test's input and its expected counts, computed from the
// records themselves, not by gapwatch's decoder.
type fixture struct {
	msgs     []kafka.Message
	recs     [][]record // what each message of msgs holds (nil: rejected)
	expected map[storage.Clock]map[[2]string]map[int64]uint64
	rejected map[decode.Reason]int
	events   int
}

func (f *fixture) add(arrival time.Time, value string, recs ...record) {
	f.msgs = append(f.msgs, kafka.Message{Value: []byte(value), Time: arrival})
	f.recs = append(f.recs, recs)
	f.events += len(recs)
}

func (f *fixture) reject(arrival time.Time, value string, reason decode.Reason) {
	f.msgs = append(f.msgs, kafka.Message{Value: []byte(value), Time: arrival})
	f.recs = append(f.recs, nil)
	f.rejected[reason]++
}

func newFixture(base time.Time) *fixture {
	f := &fixture{rejected: map[decode.Reason]int{}}
	// Plain JSON: a firewall every 7 s for 10 minutes, event time 3 s before arrival
	// (so some events fall in the previous minute on the event clock).
	for i := range 86 {
		arrival := base.Add(time.Duration(i) * 7 * time.Second)
		ev := arrival.Add(-3 * time.Second)
		f.add(arrival, fmt.Sprintf(`{"tenant":"acme","source":"firewall","@timestamp":%q,"action":"deny","bytes":%d}`,
			ev.Format("2006-01-02T15:04:05.000Z07:00"), i), record{"acme", "firewall", ev})
	}
	// Plain JSON with other field names and epoch milliseconds.
	for i := range 40 {
		arrival := base.Add(time.Duration(i) * 13 * time.Second)
		ev := arrival.Add(-90 * time.Second)
		f.add(arrival, fmt.Sprintf(`{"tenant_id":"globex","log_type":"edr","timestamp":%d,"device":{"name":"wks-%d"}}`, ev.UnixMilli(), i),
			record{"globex", "edr", ev})
	}
	// Azure Monitor diagnostic export: 4 records per message, tenant from tenantId or resourceId.
	for i := range 12 {
		arrival := base.Add(time.Duration(i) * 41 * time.Second)
		var recs []record
		var parts []string
		for j := range 4 {
			ev := arrival.Add(-time.Duration(j*20) * time.Second)
			cat := "SignInLogs"
			if j == 3 {
				cat = "AuditLogs"
			}
			if j%2 == 0 {
				parts = append(parts, fmt.Sprintf(`{"time":%q,"tenantId":"72f988bf-0000-4000-8000-2d7cd011db47","category":%q,"operationName":"Sign-in activity","resourceId":"/tenants/72f988bf-0000-4000-8000-2d7cd011db47/providers/Microsoft.aadiam"}`,
					ev.Format("2006-01-02T15:04:05.0000000Z"), cat))
				recs = append(recs, record{"72f988bf-0000-4000-8000-2d7cd011db47", cat, ev})
			} else {
				parts = append(parts, fmt.Sprintf(`{"time":%q,"category":%q,"resourceId":"/SUBSCRIPTIONS/0b1f6471-1bf0-4dda-aec3-cb9272f09590/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1"}`,
					ev.Format("2006-01-02T15:04:05.0000000Z"), cat))
				recs = append(recs, record{"0b1f6471-1bf0-4dda-aec3-cb9272f09590", cat, ev})
			}
		}
		f.add(arrival, `{"records":[`+strings.Join(parts, ",")+`]}`, recs...)
	}
	// CloudTrail: 3 records per message; one only has userIdentity.accountId.
	for i := range 9 {
		arrival := base.Add(time.Duration(i) * 61 * time.Second)
		ev := arrival.Add(-5 * time.Minute)
		t := ev.Format(time.RFC3339)
		f.add(arrival, fmt.Sprintf(`{"Records":[{"eventTime":%q,"recipientAccountId":"123456789012","eventName":"GetObject"},{"eventTime":%q,"recipientAccountId":"123456789012","eventName":"PutObject"},{"eventTime":%q,"userIdentity":{"type":"IAMUser","accountId":"210987654321"},"eventName":"ConsoleLogin"}]}`, t, t, t),
			record{"123456789012", "aws.cloudtrail", ev}, record{"123456789012", "aws.cloudtrail", ev}, record{"210987654321", "aws.cloudtrail", ev})
	}
	// A hostile tenant name is data, not SQL.
	for i := range 5 {
		arrival := base.Add(time.Duration(i) * time.Minute)
		f.add(arrival, fmt.Sprintf(`{"tenant":"x' OR '1'='1","source":"dns","time":%d}`, arrival.Unix()), record{"x' OR '1'='1", "dns", arrival})
	}
	// Bad input, mixed in: each rejected with its reason, the good records beside it still counted.
	bad := base.Add(30 * time.Second)
	f.reject(bad, `{"tenant":"acme","source":"firewall","time":`, decode.ReasonInvalidJSON)
	f.reject(bad, `{"source":"firewall","time":"2026-01-01T00:00:00Z"}`, decode.ReasonMissingTenant)
	f.reject(bad, `{"tenant":"acme","source":"firewall","time":"yesterday"}`, decode.ReasonBadTime)
	f.reject(bad, "\xff\xfe{}", decode.ReasonInvalidUTF8)
	ev := bad.Add(-time.Second)
	f.add(bad, fmt.Sprintf(`{"records":[{"time":%q,"tenantId":"t-mixed","category":"AuditLogs"},{"tenantId":"t-mixed","category":"AuditLogs"}]}`, ev.Format(time.RFC3339Nano)),
		record{"t-mixed", "AuditLogs", ev})
	f.rejected[decode.ReasonMissingTime]++
	f.expected = map[storage.Clock]map[[2]string]map[int64]uint64{
		storage.Arrival: f.countsFrom(0, storage.Arrival), storage.Event: f.countsFrom(0, storage.Event)}
	return f
}

func produce(t *testing.T, brokers []string, topic string, msgs []kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, msgs...))
}

// startIngester runs an ingester with deps until stop, which requires Run to
// have returned no error.
func startIngester(t *testing.T, cfg ingest.Config, deps ingest.Deps) (in *ingest.Ingester, stop func()) {
	t.Helper()
	in, err := ingest.New(cfg, deps)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	return in, func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// quietDeps are an ingester's dependencies with sink and reg, logging nowhere.
func quietDeps(sink ingest.Sink, reg prometheus.Registerer) ingest.Deps {
	return ingest.Deps{Sink: sink, Registry: reg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// ingestUntil runs an ingester on sink until the store's offsets reach the end of topic.
func ingestUntil(t *testing.T, cfg ingest.Config, sink ingest.Sink, reg prometheus.Registerer, end map[int]int64) {
	t.Helper()
	_, stop := startIngester(t, cfg, quietDeps(sink, reg))
	defer stop()
	servers.WaitStored(t, sink, cfg.Topics[0], end, 90*time.Second)
}

func TestIngestCountsExactlyOnRealServers(t *testing.T) {
	brokers := servers.Kafka(t)
	ch, _ := servers.ClickHouse(t)
	topic := servers.Unique("it_logs")
	servers.CreateTopic(t, brokers, topic, 6)

	base := time.Now().UTC().Truncate(time.Minute).Add(-15 * time.Minute)
	f := newFixture(base)
	produce(t, brokers, topic, f.msgs)
	end := servers.EndOffsets(t, brokers, topic, 6)

	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_group"), FlushInterval: 200 * time.Millisecond}
	reg := prometheus.NewRegistry()
	ingestUntil(t, cfg, ch, reg, end)

	require.Equal(t, float64(f.events), metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
	for reason, n := range f.rejected {
		require.Equal(t, float64(n), metric(t, reg, "gapwatch_ingest_rejected_total", reason), "rejected{reason=%s}", reason)
	}

	// Every message with rejected input is in the dead-letter topic, with its reason.
	require.Equal(t, float64(len(f.rejected)), metric(t, reg, "gapwatch_ingest_dead_letters_total", ""))
	require.Equal(t, f.rejected, readDeadLetters(t, brokers, topic+ingest.DLQSuffix, len(f.rejected)))

	// The same input through the in-memory store, by a second consumer group.
	mem := memstore.New(24 * time.Hour)
	cfg.Group = servers.Unique("it_group_mem")
	ingestUntil(t, cfg, mem, prometheus.NewRegistry(), end)

	chAPI := httptest.NewServer(api.New(api.Config{}, api.Deps{Rates: ch}).Handler())
	defer chAPI.Close()
	memAPI := httptest.NewServer(api.New(api.Config{}, api.Deps{Rates: mem}).Handler())
	defer memAPI.Close()

	from, to := base.Add(-10*time.Minute), base.Add(20*time.Minute)
	checked := 0
	for clock, streams := range f.expected {
		for stream, buckets := range streams {
			q := url.Values{"tenant": {stream[0]}, "source": {stream[1]}, "clock": {clock.String()}, "step": {"1m"},
				"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
			got := getJSON(t, chAPI.URL+"/api/v1/rates?"+q.Encode())
			require.Equal(t, got, getJSON(t, memAPI.URL+"/api/v1/rates?"+q.Encode()), "ClickHouse and memory answer alike")
			want := map[string]uint64{}
			for b, n := range buckets {
				want[time.Unix(b, 0).UTC().Format(time.RFC3339)] = n
			}
			gotCounts := map[string]uint64{}
			for _, p := range got.Points {
				if p.Events > 0 {
					gotCounts[p.T] = p.Events
				}
			}
			require.Equal(t, want, gotCounts, "%s %v", clock, stream)
			require.Len(t, got.Points, 30, "every bucket in range is present")
			checked++
		}
	}
	require.Equal(t, 2*9, checked, "streams × clocks checked")
}

// readDeadLetters reads n letters from the DLQ topic and counts them by reason.
func readDeadLetters(t *testing.T, brokers []string, topic string, n int) map[decode.Reason]int {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: servers.Unique("it_dlq"), Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := map[decode.Reason]int{}
	for range n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err)
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		require.NotEmpty(t, h["gapwatch.detail"])
		require.Equal(t, strings.TrimSuffix(topic, ingest.DLQSuffix), h["gapwatch.topic"])
		got[decode.Reason(h["gapwatch.reason"])]++
	}
	return got
}

type ratesBody struct {
	Tenant, Source, Clock string
	Step                  int64
	Points                []struct {
		T        string   `json:"t"`
		Events   uint64   `json:"events"`
		Expected *float64 `json:"expected"`
	}
}

func getJSON(t *testing.T, u string) ratesBody {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var rb ratesBody
	require.NoError(t, json.Unmarshal(body, &rb))
	return rb
}

// metric returns the value of a counter of g, the one with label reason when reason is set.
func metric(t *testing.T, g prometheus.Gatherer, name string, reason decode.Reason) float64 {
	t.Helper()
	if reason != "" {
		return metricLabel(t, g, name, "reason", string(reason))
	}
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A graceful stop writes what was counted since the last flush before Run returns.
func TestGracefulStopWritesEverything(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("it_stop")
	servers.CreateTopic(t, brokers, topic, 6)
	f := newFixture(time.Now().UTC().Truncate(time.Minute).Add(-15 * time.Minute))
	produce(t, brokers, topic, f.msgs)
	end := servers.EndOffsets(t, brokers, topic, 6)

	mem := memstore.New(24 * time.Hour)
	reg := prometheus.NewRegistry()
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_stop"), FlushInterval: time.Hour}
	in, err := ingest.New(cfg, ingest.Deps{Sink: mem, Registry: reg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for metric(t, reg, "gapwatch_ingest_messages_total", "") < float64(len(f.msgs)) {
		require.True(t, time.Now().Before(deadline), "messages not consumed")
		time.Sleep(50 * time.Millisecond)
	}
	stored, err := mem.Offsets(context.Background(), topic)
	require.NoError(t, err)
	require.Empty(t, stored, "nothing is written before the (hourly) flush")
	cancel()
	require.NoError(t, <-done)
	stored, err = mem.Offsets(context.Background(), topic)
	require.NoError(t, err)
	for p, e := range end {
		require.Equal(t, e, stored[int32(p)].Next, "partition %d stored on stop", p)
	}
	require.Equal(t, float64(f.events), metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
}

// Idle, caught-up partitions — including ones that never had a record — store
// progress with an arrival watermark near now, so they do not hold detection back.
func TestIdlePartitionsAdvanceTheWatermark(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("it_idle")
	servers.CreateTopic(t, brokers, topic, 6)
	old := time.Now().UTC().Add(-20 * time.Minute)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 2 })}
	defer w.Close()
	require.NoError(t, w.WriteMessages(context.Background(),
		kafka.Message{Value: []byte(fmt.Sprintf(`{"tenant":"a","source":"s","time":%d}`, old.Unix())), Time: old}))

	mem := memstore.New(24 * time.Hour)
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_idle"),
		FlushInterval: 100 * time.Millisecond, IdleAfter: 500 * time.Millisecond, FetchMaxWait: 100 * time.Millisecond}
	in, err := ingest.New(cfg, ingest.Deps{Sink: mem, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		stored, err := mem.Offsets(context.Background(), topic)
		require.NoError(t, err)
		fresh := 0
		for _, o := range stored {
			if o.ArrivalHW.After(start.Add(-2 * time.Second)) {
				fresh++
			}
		}
		if len(stored) == 6 && fresh == 6 {
			require.Equal(t, int64(1), stored[2].Next, "the partition with one record")
			for _, p := range []int32{0, 1, 3, 4, 5} {
				require.Equal(t, int64(0), stored[p].Next, "empty partition %d", p)
			}
			return
		}
		require.True(t, time.Now().Before(deadline), "watermarks did not advance: %+v", stored)
		time.Sleep(100 * time.Millisecond)
	}
}

// downSink is a store that fails every call while down.
type downSink struct {
	ingest.Sink
	down atomic.Bool
}

func (s *downSink) Write(ctx context.Context, b storage.Batch) error {
	if s.down.Load() {
		return errors.New("store down")
	}
	return s.Sink.Write(ctx, b)
}

func (s *downSink) Offsets(ctx context.Context, topic string) (map[int32]storage.Offset, error) {
	if s.down.Load() {
		return nil, errors.New("store down")
	}
	return s.Sink.Offsets(ctx, topic)
}

// A store outage stalls ingest at the pending caps: the flushers keep trying
// the batch they hold and take no more counts meanwhile (which would grow
// memory with the input for as long as the outage lasts). When the store is
// back, everything is stored, exactly.
func TestStoreOutageStallsIngest(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("it_outage")
	servers.CreateTopic(t, brokers, topic, 6)
	f := newFixture(time.Now().UTC().Truncate(time.Minute).Add(-15 * time.Minute))
	half := len(f.msgs) / 2
	produce(t, brokers, topic, f.msgs[:half])

	mem := memstore.New(24 * time.Hour)
	sink := &downSink{Sink: mem}
	reg := prometheus.NewRegistry()
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_outage"),
		FlushInterval: 50 * time.Millisecond, Limits: ingest.Limits{MaxPendingCells: 64}}
	in, err := ingest.New(cfg, ingest.Deps{Sink: sink, Registry: reg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	servers.WaitStored(t, mem, topic, servers.EndOffsets(t, brokers, topic, 6), 60*time.Second)

	sink.down.Store(true)
	consumed := metric(t, reg, "gapwatch_ingest_messages_total", "")
	produce(t, brokers, topic, f.msgs[half:])
	end := servers.EndOffsets(t, brokers, topic, 6)
	time.Sleep(3 * time.Second) // dozens of flush attempts
	require.Positive(t, metric(t, reg, "gapwatch_ingest_flush_errors_total", ""))
	require.Less(t, metric(t, reg, "gapwatch_ingest_messages_total", "")-consumed, float64(len(f.msgs)-half),
		"ingest stalls while the store is down")
	sink.down.Store(false)
	servers.WaitStored(t, mem, topic, end, 60*time.Second)
	require.Eventually(t, func() bool {
		return metric(t, reg, "gapwatch_ingest_events_stored_total", "") == float64(f.events)
	}, 10*time.Second, 20*time.Millisecond, "every event stored, once")
}
