package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect/live"
	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// capInput is a tenant at its own cap ("big", 6 sources over a cap of 3),
// then a storm of forged tenants over the global cap, then the coverage
// policy's tenant, whose streams the reserve keeps.
func capInput(now time.Time, forged int) (msgs []kafka.Message, counted int) {
	rec := func(tenant, source string) kafka.Message {
		return kafka.Message{Value: []byte(fmt.Sprintf(`{"tenant":%q,"source":%q,"time":%q}`, tenant, source, now.Format(time.RFC3339)))}
	}
	for s := range 6 {
		msgs = append(msgs, rec("big", fmt.Sprint("src", s)))
	}
	for i := range forged {
		msgs = append(msgs, rec(fmt.Sprintf("forged-%05d", i), "x"))
	}
	for _, s := range []string{"SignInLogs", "AuditLogs"} {
		msgs = append(msgs, rec("acme", s))
	}
	// big: 3 streams; forged: 20 - 5 (acme's reserve) - 3; acme: 2.
	return msgs, 3 + 12 + 2
}

type capAlertEvent struct {
	Type, ID, Source string
	Data             struct {
		State   string   `json:"state"`
		Reason  string   `json:"reason"`
		Cap     string   `json:"cap"`
		Limit   int      `json:"limit"`
		Tenant  string   `json:"tenant"`
		Tenants []string `json:"tenants"`
		Count   int      `json:"tenants_count"`
	}
}

// readAlerts reads the whole alert topic (3 partitions, as ingest creates it).
func readAlerts(t *testing.T, brokers []string, topic string) []capAlertEvent {
	t.Helper()
	end := servers.EndOffsets(t, brokers, topic, 3)
	n := 0
	for _, o := range end {
		n += int(o)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: servers.Unique("it_cap_alerts"), Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []capAlertEvent
	for range n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err)
		require.Equal(t, live.PipelineKey, string(m.Key))
		var e capAlertEvent
		require.NoError(t, json.Unmarshal(m.Value, &e), string(m.Value))
		out = append(out, e)
	}
	return out
}

// Forged tenants fill a tiny cap on the real Kafka: the alert topic gets one
// alert naming the tenant at its own cap and one for the global cap (a
// bounded sample and the count), not one per forged name; counting is exact.
func TestStreamCapAlertsOnRealKafka(t *testing.T) {
	brokers := servers.Kafka(t)
	topic, alerts := servers.Unique("cap_in"), servers.Unique("cap_alerts")
	servers.CreateTopic(t, brokers, topic, 1) // one partition: the order above is the order counted
	now := time.Now().UTC().Truncate(time.Second)
	msgs, counted := capInput(now, 3000)
	produce(t, brokers, topic, msgs)
	end := servers.EndOffsets(t, brokers, topic, 1)

	mem := memstore.New(24 * time.Hour)
	reg := prometheus.NewRegistry()
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("cap_group"),
		FlushInterval: 100 * time.Millisecond, WriteTimeout: time.Second,
		Limits: ingest.Limits{MaxStreams: 20, MaxStreamsPerTenant: 3, PriorityTenants: []string{"acme"}, ReservedStreams: 5}}
	_, stop := startIngester(t, cfg, ingest.Deps{Sink: mem, Registry: reg, AlertsTopic: alerts, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	servers.WaitStored(t, mem, topic, end, 60*time.Second)
	require.Eventually(t, func() bool {
		return metricLabel(t, reg, "gapwatch_ingest_cap_alerts_total", "state", ingest.StateStreamCap) == 2
	}, 30*time.Second, 50*time.Millisecond)
	stop()

	require.Equal(t, float64(counted), metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
	require.Equal(t, float64(len(msgs)-counted), metric(t, reg, "gapwatch_ingest_rejected_total", ingest.ReasonStreamLimit))
	got := readAlerts(t, brokers, alerts)
	require.Len(t, got, 2, "one for big's cap, one for the global cap: %+v", got)
	byCap := map[string]capAlertEvent{}
	for _, e := range got {
		require.Equal(t, live.TypePipelineDegraded, e.Type)
		require.Equal(t, ingest.CapAlertSource, e.Source)
		require.Equal(t, ingest.StateStreamCap, e.Data.State)
		require.NotEmpty(t, e.Data.Reason)
		byCap[e.Data.Cap] = e
	}
	big := byCap[ingest.CapPerTenant]
	require.Equal(t, "big", big.Data.Tenant)
	require.Equal(t, 3, big.Data.Limit)
	global := byCap[ingest.CapGlobal]
	require.Equal(t, 20, global.Data.Limit)
	require.Equal(t, "forged-00012", global.Data.Tenant, "the first forged tenant refused")
	require.NotEmpty(t, global.Data.Tenants)
	require.LessOrEqual(t, len(global.Data.Tenants), 10, "a bounded sample")
	require.GreaterOrEqual(t, global.Data.Count, len(global.Data.Tenants))
	require.LessOrEqual(t, global.Data.Count, 20, "bounded by the tenants at cap that are tracked (max_streams)")
	t.Logf("global cap alert: %d tenants, sample %v", global.Data.Count, global.Data.Tenants)

	// A restart replays nothing (the offsets are stored); the same input
	// counted again from scratch gives the same ids (consumers dedupe by id).
	reg2 := prometheus.NewRegistry()
	cfg.Group = servers.Unique("cap_group_again")
	_, stop = startIngester(t, cfg, ingest.Deps{Sink: memstore.New(24 * time.Hour), Registry: reg2, AlertsTopic: alerts, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.Eventually(t, func() bool {
		return metricLabel(t, reg2, "gapwatch_ingest_cap_alerts_total", "state", ingest.StateStreamCap) == 2
	}, 60*time.Second, 50*time.Millisecond)
	stop()
	again := readAlerts(t, brokers, alerts)
	require.Len(t, again, 4)
	ids := map[string]int{}
	for _, e := range again {
		ids[e.ID]++
	}
	require.Equal(t, map[string]int{big.ID: 2, global.ID: 2}, ids)
}

// An alert topic Kafka refuses (here a name it cannot create) costs the
// alerts, counted and logged, never the counting.
func TestFailingAlertTopicDoesNotStallCounting(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("cap_broken")
	servers.CreateTopic(t, brokers, topic, 1)
	now := time.Now().UTC().Truncate(time.Second)
	msgs, counted := capInput(now, 200)
	produce(t, brokers, topic, msgs)
	end := servers.EndOffsets(t, brokers, topic, 1)

	mem := memstore.New(24 * time.Hour)
	reg := prometheus.NewRegistry()
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("cap_broken_group"),
		FlushInterval: 100 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, RebalanceTimeout: 10 * time.Second,
		Limits: ingest.Limits{MaxStreams: 20, MaxStreamsPerTenant: 3, PriorityTenants: []string{"acme"}, ReservedStreams: 5}}
	began := time.Now()
	_, stop := startIngester(t, cfg, ingest.Deps{Sink: mem, Registry: reg, AlertsTopic: "no such topic!", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer func() { stop() }()
	servers.WaitStored(t, mem, topic, end, 60*time.Second)
	t.Logf("all counted in %s while the alert topic fails", time.Since(began).Round(time.Millisecond))
	require.Equal(t, float64(counted), metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
	require.Eventually(t, func() bool {
		return metric(t, reg, "gapwatch_ingest_cap_alerts_dropped_total", "") == 2
	}, 30*time.Second, 50*time.Millisecond, "given up after three write timeouts")
	require.Positive(t, metric(t, reg, "gapwatch_ingest_cap_alert_errors_total", ""))
	require.Equal(t, 0.0, metricLabel(t, reg, "gapwatch_ingest_cap_alerts_total", "state", ingest.StateStreamCap))
}

// metricLabel returns the value of the counter of g named name with label=value.
func metricLabel(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no metric %s{%s=%q}", name, label, value)
	return 0
}
