package ingest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// A transactional producer's aborted records are not counted: ingest reads
// committed records only, from the real Kafka.
func TestAbortedTransactionsAreNotCounted(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("txn_logs")
	servers.CreateTopic(t, brokers, topic, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(servers.Unique("txn")))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now().UTC()
	txn := func(n int, commit bool) {
		require.NoError(t, cl.BeginTransaction())
		for i := range n {
			v := fmt.Sprintf(`{"tenant":"acme","source":"fw","time":%q}`, now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339))
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr())
		}
		require.NoError(t, cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
	}
	txn(50, true)
	txn(30, false)
	txn(20, true)
	end := servers.EndOffsets(t, brokers, topic, 1)

	mem := memstore.New(24 * time.Hour)
	reg := prometheus.NewRegistry()
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("txn_group"), FlushInterval: 100 * time.Millisecond}
	in, err := ingest.New(cfg, ingest.Deps{Sink: mem, Registry: reg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()
	servers.WaitStored(t, mem, topic, end, 60*time.Second)
	rcancel()
	require.NoError(t, <-done)
	require.Equal(t, 70.0, metric(t, reg, "gapwatch_ingest_events_stored_total", ""), "the 30 aborted records are not counted")
	require.Equal(t, 30.0, metric(t, reg, "gapwatch_ingest_aborted_records_total", ""))
}
