package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
)

// runIngest runs an ingester on sink until the test ends.
func runIngest(t *testing.T, cfg ingest.Config, sink ingest.Sink, reg prometheus.Registerer) *ingest.Ingester {
	t.Helper()
	in, stop := startIngester(t, cfg, quietDeps(sink, reg))
	t.Cleanup(stop)
	return in
}

// A topic of 4 partitions of which only one ever gets records, on the real
// Kafka and ClickHouse: the pipeline's watermark becomes known, follows
// ingest's clock less idle_margin (never ahead of it) and advances with time,
// also past the old records of the partition that went idle; the counts stay
// exact.
func TestIdleWatermarkOnClickHouse(t *testing.T) {
	brokers := servers.Kafka(t)
	ch, _ := servers.ClickHouse(t)
	topic := servers.Unique("it_idle_ch")
	servers.CreateTopic(t, brokers, topic, 4)

	// Old record timestamps (CreateTime 15 to 5 minutes ago), all in partition 2.
	f := newFixture(time.Now().UTC().Truncate(time.Minute).Add(-15 * time.Minute))
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 2 })}
	defer w.Close()
	require.NoError(t, w.WriteMessages(context.Background(), f.msgs...))
	end := map[int]int64{0: 0, 1: 0, 2: int64(len(f.msgs)), 3: 0} // (listing offsets of a partition never written to may fail for a moment)

	const margin = 1500 * time.Millisecond
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_idle_ch"),
		FlushInterval: 100 * time.Millisecond, IdleAfter: 500 * time.Millisecond, FetchMaxWait: 100 * time.Millisecond, IdleMargin: margin}
	reg := prometheus.NewRegistry()
	start := time.Now()
	runIngest(t, cfg, ch, reg)
	servers.WaitStored(t, ch, topic, end, 60*time.Second)

	parts := map[string][]int32{topic: {0, 1, 2, 3}}
	watermark := func() time.Time {
		wm, unknown, err := storage.IngestWatermark(context.Background(), ch, []string{topic}, parts)
		require.NoError(t, err)
		if unknown != "" {
			return time.Time{}
		}
		return wm
	}
	var first time.Time
	require.Eventually(t, func() bool {
		first = watermark()
		return first.After(start.Add(-margin - time.Second))
	}, 20*time.Second, 50*time.Millisecond, "the watermark becomes known and near the clock")
	stored, err := ch.Offsets(context.Background(), topic)
	require.NoError(t, err)
	require.Len(t, stored, 4, "every partition has progress, the three empty ones too")
	for p, o := range stored {
		require.Equal(t, end[int(p)], o.Next, "partition %d: the offset is where the records end", p)
		require.False(t, o.ArrivalHW.After(time.Now().Add(-margin)), "partition %d: the watermark %s is never ahead of ingest's clock less idle_margin", p, o.ArrivalHW)
	}
	require.Eventually(t, func() bool { return watermark().Sub(first) >= 2*time.Second },
		20*time.Second, 100*time.Millisecond, "the watermark advances with time")

	require.Equal(t, f.expected[storage.Arrival], storedCounts(t, ch, storage.Arrival), "arrival counts exact")
	require.Equal(t, f.expected[storage.Event], storedCounts(t, ch, storage.Event), "event counts exact")
	require.Equal(t, float64(f.events), metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
}

// A partition with a transaction still open is not caught up, even though a
// read-committed fetch has nothing more to return: its records come at the
// commit, with the timestamps they were produced at. Its watermark stays
// below them until then; counting stays exact.
func TestOpenTransactionHoldsTheWatermark(t *testing.T) {
	brokers := servers.Kafka(t)
	ch, _ := servers.ClickHouse(t)
	topic := servers.Unique("it_idle_txn")
	servers.CreateTopic(t, brokers, topic, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(servers.Unique("txn")))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	produced := 0
	produceTxn := func(n int) time.Time {
		require.NoError(t, cl.BeginTransaction())
		at := time.Now().UTC()
		for range n {
			v := fmt.Sprintf(`{"tenant":"acme","source":"fw","time":%q}`, at.Format(time.RFC3339))
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Timestamp: at}).FirstErr())
		}
		produced += n
		return at
	}
	produceTxn(10)
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryCommit))

	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_idle_txn"),
		FlushInterval: 100 * time.Millisecond, IdleAfter: 300 * time.Millisecond, FetchMaxWait: 100 * time.Millisecond, IdleMargin: 100 * time.Millisecond}
	reg := prometheus.NewRegistry()
	runIngest(t, cfg, ch, reg)
	servers.WaitStored(t, ch, topic, servers.EndOffsets(t, brokers, topic, 1), 60*time.Second)

	open := produceTxn(15)
	deadline := time.Now().Add(4 * time.Second) // many idle_after and fetches
	for time.Now().Before(deadline) {
		stored, err := ch.Offsets(context.Background(), topic)
		require.NoError(t, err)
		require.False(t, stored[0].ArrivalHW.After(open),
			"the watermark %s passed the open transaction's records (%s) before they could be read", stored[0].ArrivalHW, open)
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryCommit))
	servers.WaitStored(t, ch, topic, servers.EndOffsets(t, brokers, topic, 1), 60*time.Second)
	require.Eventually(t, func() bool {
		stored, err := ch.Offsets(context.Background(), topic)
		require.NoError(t, err)
		return stored[0].ArrivalHW.After(open.Add(time.Second))
	}, 20*time.Second, 100*time.Millisecond, "committed and read, the partition is idle again")
	require.Equal(t, float64(produced), metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
	var n uint64
	for _, buckets := range storedCounts(t, ch, storage.Arrival) {
		for _, c := range buckets {
			n += c
		}
	}
	require.Equal(t, uint64(produced), n, "every committed record counted once")
}
