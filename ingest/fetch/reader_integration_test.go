package fetch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/ingest/fetch"
	"github.com/gapwatch/gapwatch/internal/servers"
)

// On the real broker: a Reader started at kafka.FirstOffset, at an offset
// inside a compressed batch and at kafka.LastOffset reads exactly the
// records from there on, in order, and reports the lag it has left.
func TestReaderReadsPartition(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("it_fetch")
	servers.CreateTopic(t, brokers, topic, 2)
	const n = 300
	var msgs []kafka.Message
	for i := range n {
		msgs = append(msgs, kafka.Message{Partition: 1, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, Compression: kafka.Zstd,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 1 }), BatchSize: 100, BatchTimeout: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	require.NoError(t, w.Close())

	read := func(start int64, want int) (keys, values []string, last int64) {
		r, err := fetch.NewReader(fetch.Config{Brokers: brokers, Topic: topic, Partition: 1, MaxWait: 50 * time.Millisecond}, start)
		require.NoError(t, err)
		defer r.Close()
		var rec fetch.Record
		for len(values) < want {
			resp, err := r.Fetch(ctx)
			require.NoError(t, err)
			for resp.Next(&rec) {
				if len(values) > 0 {
					require.Equal(t, last+1, rec.Offset, "offsets in order, none missed")
				}
				keys, values = append(keys, string(rec.Key)), append(values, string(rec.Value))
				last = rec.Offset
				require.False(t, rec.Time.IsZero(), "a producer's timestamp")
			}
			lag, ok := r.Done(ctx, resp)
			require.True(t, ok)
			require.Equal(t, int64(n)-r.Offset(), lag)
		}
		require.Equal(t, int64(n), r.Offset())
		return keys, values, last
	}

	_, values, last := read(kafka.FirstOffset, n)
	require.Len(t, values, n)
	require.Equal(t, "v0", values[0])
	require.Equal(t, fmt.Sprint("v", n-1), values[n-1])
	require.Equal(t, int64(n-1), last)

	keys, values, _ := read(150, n-150)
	require.Equal(t, "k150", keys[0])
	require.Equal(t, "v150", values[0])
	require.Len(t, values, n-150)

	// At the end: nothing to read, caught up.
	r, err := fetch.NewReader(fetch.Config{Brokers: brokers, Topic: topic, Partition: 1, MaxWait: 50 * time.Millisecond}, kafka.LastOffset)
	require.NoError(t, err)
	defer r.Close()
	resp, err := r.Fetch(ctx)
	require.NoError(t, err)
	require.False(t, resp.Next(&fetch.Record{}))
	lag, ok := r.Done(ctx, resp)
	require.True(t, ok)
	require.Zero(t, lag)
	require.Equal(t, int64(n), r.Offset())
}
