package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// The partition reader parses Fetch responses and record batches itself
// (package ingest/fetch). On the real broker: batches in every
// codec that producers use, a restart that resumes inside a compressed batch
// (the batch's records before the stored offset are not counted again, none
// after it is missed), and a topic whose timestamps are the broker's.
func TestFetchCodecsAndMidBatchResume(t *testing.T) {
	brokers := servers.Kafka(t)
	f := newFixture(time.Now().UTC().Truncate(time.Minute).Add(-15 * time.Minute))
	codecs := []struct {
		name  string
		codec kafka.Compression
	}{{"none", 0}, {"gzip", kafka.Gzip}, {"snappy", kafka.Snappy}, {"lz4", kafka.Lz4}, {"zstd", kafka.Zstd}}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := servers.Unique("it_codec")
			servers.CreateTopic(t, brokers, topic, 1)
			// One partition and one batch of all messages: offset i is f.msgs[i].
			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
				Compression: c.codec, BatchSize: len(f.msgs), BatchTimeout: time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(t, w.WriteMessages(ctx, f.msgs...))
			require.NoError(t, w.Close())
			end := servers.EndOffsets(t, brokers, topic, 1)
			require.Equal(t, int64(len(f.msgs)), end[0])

			for _, resume := range []int{0, len(f.msgs) / 3} {
				mem := memstore.New(24 * time.Hour)
				if resume > 0 { // as after a crash: progress stored up to resume
					require.NoError(t, mem.Write(ctx, storage.Batch{Offsets: []storage.Offset{{Topic: topic, Partition: 0, Next: int64(resume)}}}))
				}
				cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_codec"), FlushInterval: 100 * time.Millisecond}
				ingestUntil(t, cfg, mem, prometheus.NewRegistry(), end)
				for _, clock := range []storage.Clock{storage.Arrival, storage.Event} {
					require.Equal(t, f.countsFrom(resume, clock), storedCounts(t, mem, clock), "%s clock, resumed at offset %d", clock, resume)
				}
			}
		})
	}

	t.Run("log append time", func(t *testing.T) {
		topic := servers.Unique("it_appendtime")
		servers.CreateTopic(t, brokers, topic, 1, kafka.ConfigEntry{ConfigName: "message.timestamp.type", ConfigValue: "LogAppendTime"})
		before := time.Now().UTC()
		produce(t, brokers, topic, f.msgs)
		after := time.Now().UTC()
		end := servers.EndOffsets(t, brokers, topic, 1)
		mem := memstore.New(24 * time.Hour)
		cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_appendtime"), FlushInterval: 100 * time.Millisecond}
		ingestUntil(t, cfg, mem, prometheus.NewRegistry(), end)

		require.Equal(t, f.countsFrom(0, storage.Event), storedCounts(t, mem, storage.Event))
		// Arrival is when the broker appended each record, not the producer's time.
		var n uint64
		for _, buckets := range storedCounts(t, mem, storage.Arrival) {
			for b, c := range buckets {
				require.True(t, b >= storage.BucketStart(before, time.Minute) && b <= storage.BucketStart(after, time.Minute),
					"arrival bucket %s outside the produce call (%s – %s)", time.Unix(b, 0).UTC(), before, after)
				n += c
			}
		}
		require.Equal(t, uint64(f.events), n)
	})
}

// countsFrom is what the records of the messages from offset i on (of a
// one-partition topic holding f.msgs in order) count on clock.
func (f *fixture) countsFrom(i int, clock storage.Clock) map[[2]string]map[int64]uint64 {
	out := map[[2]string]map[int64]uint64{}
	for j := i; j < len(f.msgs); j++ {
		for _, r := range f.recs[j] {
			at := r.event
			if clock == storage.Arrival {
				at = f.msgs[j].Time
			}
			k := [2]string{r.tenant, r.source}
			if out[k] == nil {
				out[k] = map[int64]uint64{}
			}
			out[k][storage.BucketStart(at, time.Minute)]++
		}
	}
	return out
}

// countReader is a store's view of the counts (both stores).
type countReader interface {
	BucketCounts(ctx context.Context, clock storage.Clock, from, to time.Time) ([]storage.StreamCount, error)
}

// storedCounts returns every stream's stored events per bucket of clock.
func storedCounts(t *testing.T, st countReader, clock storage.Clock) map[[2]string]map[int64]uint64 {
	t.Helper()
	rows, err := st.BucketCounts(context.Background(), clock, time.Unix(0, 0), time.Now().Add(time.Hour))
	require.NoError(t, err)
	out := map[[2]string]map[int64]uint64{}
	for _, r := range rows {
		k := [2]string{r.Tenant, r.Source}
		if out[k] == nil {
			out[k] = map[int64]uint64{}
		}
		out[k][r.Bucket] += r.Events
	}
	return out
}
