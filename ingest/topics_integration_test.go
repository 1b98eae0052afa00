package ingest_test

import (
	"context"
	"fmt"
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

// Ingest started before its input topic exists says so in its readiness,
// does not create the topic (our brokers allow auto-creation: a consumer
// group that subscribed to it would have it created with 6 partitions), and
// consumes it within a bounded time once it is created; partitions added
// later are consumed too. Counts exact, on the real Kafka.
func TestTopicCreatedAfterIngestStarts(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("it_later")
	mem := memstore.New(24 * time.Hour)
	const watch = 500 * time.Millisecond
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_later"),
		FlushInterval: 100 * time.Millisecond, FetchMaxWait: 100 * time.Millisecond, TopicWatchInterval: watch}
	reg := prometheus.NewRegistry()
	in := runIngest(t, cfg, mem, reg)

	require.Eventually(t, func() bool {
		err := in.Readiness()
		return err != nil && err.Error() == fmt.Sprintf("input topic %s does not exist (waiting for it; checked every %s)", topic, watch)
	}, 10*time.Second, 20*time.Millisecond, "readiness names the missing topic")
	time.Sleep(4 * watch)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	require.NoError(t, err)
	require.Len(t, md.Topics, 1)
	require.ErrorIs(t, md.Topics[0].Error, kafka.UnknownTopicOrPartition, "ingest did not create the topic")
	require.Error(t, in.Readiness())

	// Created with 2 partitions: consumed within a few watch intervals.
	servers.CreateTopic(t, brokers, topic, 2)
	created := time.Now()
	require.Eventually(t, func() bool { return in.Readiness() == nil }, 10*time.Second, 10*time.Millisecond,
		"consuming within a watch interval and a rebalance")
	t.Logf("topic created to ingest ready: %s", time.Since(created).Round(10*time.Millisecond))
	f := newFixture(time.Now().UTC().Truncate(time.Minute).Add(-15 * time.Minute))
	produce(t, brokers, topic, f.msgs)
	servers.WaitStored(t, mem, topic, servers.EndOffsets(t, brokers, topic, 2), 20*time.Second)
	t.Logf("topic created to counts stored: %s (the dead-letter topic is auto-created meanwhile)", time.Since(created).Round(10*time.Millisecond))
	require.Equal(t, f.expected[storage.Arrival], storedCounts(t, mem, storage.Arrival), "arrival counts exact")
	require.Equal(t, f.expected[storage.Event], storedCounts(t, mem, storage.Event), "event counts exact")

	// Two partitions added: records in the new partition 3 are counted too.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}}})
	require.NoError(t, err)
	require.NoError(t, resp.Errors[topic])
	added := time.Now()
	at := time.Now().UTC().Truncate(time.Second)
	var msgs []kafka.Message
	for i := range 25 {
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf(`{"tenant":"newco","source":"dns","time":%d,"n":%d}`, at.Unix(), i)), Time: at})
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
		Balancer: kafka.BalancerFunc(func(_ kafka.Message, parts ...int) int { return 3 })}
	defer w.Close()
	require.Eventually(t, func() bool { return w.WriteMessages(ctx, msgs...) == nil }, 15*time.Second, 200*time.Millisecond,
		"the new partition takes records")
	servers.WaitStored(t, mem, topic, map[int]int64{3: int64(len(msgs))}, 20*time.Second)
	t.Logf("partitions added to counts stored: %s", time.Since(added).Round(10*time.Millisecond))
	got := storedCounts(t, mem, storage.Arrival)[[2]string{"newco", "dns"}]
	require.Equal(t, map[int64]uint64{storage.BucketStart(at, time.Minute): uint64(len(msgs))}, got, "the new partition's records, once")
	require.Equal(t, float64(f.events+len(msgs)), metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
}
