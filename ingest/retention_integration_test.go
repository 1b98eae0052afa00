package ingest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// TestRecordsDeletedBeforeCountedAreReported: while ingest is down, Kafka
// deletes records it has not counted (retention; here DeleteRecords). On
// restart ingest says how many were lost, counts the rest exactly, and goes on.
func TestRecordsDeletedBeforeCountedAreReported(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("it_lost")
	servers.CreateTopic(t, brokers, topic, 1)
	ctx := context.Background()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchSize: 100}
	defer w.Close()
	produce := func(n int) {
		now := time.Now().UTC()
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Value: []byte(fmt.Sprintf(`{"tenant":"a","source":"s","time":%d}`, now.Unix())), Time: now}
		}
		require.NoError(t, w.WriteMessages(ctx, msgs...))
	}
	mem := memstore.New(24 * time.Hour)
	group := servers.Unique("it_lost")
	run := func(until int64) *prometheus.Registry {
		reg := prometheus.NewRegistry()
		in, err := ingest.New(ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: group, FlushInterval: 100 * time.Millisecond},
			ingest.Deps{Sink: mem, Registry: reg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(t, err)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- in.Run(rctx) }()
		deadline := time.Now().Add(60 * time.Second)
		for {
			stored, err := mem.Offsets(ctx, topic)
			require.NoError(t, err)
			if stored[0].Next >= until {
				break
			}
			require.True(t, time.Now().Before(deadline), "stored %+v, want offset %d", stored, until)
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		require.NoError(t, <-done)
		return reg
	}

	produce(100)
	run(100)
	produce(100) // offsets 100–199, never read: then 100–149 are deleted
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 150
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, resp.Topics[0].Partitions[0].ErrorCode, "DeleteRecords")

	reg := run(200)
	require.Equal(t, 50.0, metric(t, reg, "gapwatch_ingest_lost_records_total", ""))
	counts, err := mem.BucketCounts(ctx, storage.Arrival, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	require.NoError(t, err)
	var total uint64
	for _, c := range counts {
		total += c.Events
	}
	require.Equal(t, uint64(150), total, "the 100 before and the 50 kept after the deletion, each once")
}
