package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// brokenDeadLetters is a dead-letter topic that refuses everything, as one
// whose ACL denies gapwatch or that cannot be created.
type brokenDeadLetters struct{ calls atomic.Int64 }

func (b *brokenDeadLetters) Publish(context.Context, []ingest.DeadLetter) error {
	b.calls.Add(1)
	return errors.New("TOPIC_AUTHORIZATION_FAILED")
}

// A dead-letter topic that fails must not stall counting: the good events are
// stored exactly, the rejections counted, the letters dropped and counted.
func TestDeadLetterFailureDoesNotStallCounting(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("dlq_broken")
	servers.CreateTopic(t, brokers, topic, 2)
	now := time.Now().UTC().Truncate(time.Second)
	var msgs []kafka.Message
	for i := range 200 {
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf(`{"tenant":"acme","source":"fw","time":%q}`, now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339)))})
		if i%20 == 0 {
			msgs = append(msgs, kafka.Message{Value: []byte(`not json`)})
		}
	}
	produce(t, brokers, topic, msgs)
	end := servers.EndOffsets(t, brokers, topic, 2)

	mem := memstore.New(24 * time.Hour)
	reg := prometheus.NewRegistry()
	dlq := &brokenDeadLetters{}
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("dlq_broken_group"),
		FlushInterval: 100 * time.Millisecond, WriteTimeout: time.Second}
	deps := quietDeps(mem, reg)
	deps.DeadLetters = dlq
	_, stop := startIngester(t, cfg, deps)
	servers.WaitStored(t, mem, topic, end, 60*time.Second)
	stop()

	require.Equal(t, 200.0, metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
	require.Equal(t, 10.0, metric(t, reg, "gapwatch_ingest_rejected_total", decode.ReasonInvalidJSON))
	require.Equal(t, 10.0, metric(t, reg, "gapwatch_ingest_dead_letters_dropped_total", ""))
	require.Equal(t, 0.0, metric(t, reg, "gapwatch_ingest_dead_letters_total", ""))
	require.Greater(t, dlq.calls.Load(), int64(1), "retried before the topic is taken as down")
}
