// Package servers connects tests to the real Kafka and ClickHouse that
// `make services` starts. With GAPWATCH_INTEGRATION=1 (set by `make test`) a
// missing server fails the test; without it, integration tests are skipped.
package servers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// Required skips tb unless integration tests are enabled.
func Required(tb testing.TB) {
	tb.Helper()
	if os.Getenv("GAPWATCH_INTEGRATION") == "" {
		tb.Skip("integration test: run `make test` (or set GAPWATCH_INTEGRATION=1 after `make services`)")
	}
}

// KafkaBrokers returns the test Kafka's bootstrap addresses.
func KafkaBrokers() []string {
	if v := os.Getenv("GAPWATCH_KAFKA_BROKERS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"127.0.0.1:9092"}
}

// Unique returns prefix with a random suffix, usable as a topic or database name.
func Unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Kafka checks that the broker answers and returns its addresses.
func Kafka(tb testing.TB) []string {
	tb.Helper()
	Required(tb)
	brokers := KafkaBrokers()
	c, err := net.DialTimeout("tcp", brokers[0], 3*time.Second)
	if err != nil {
		tb.Fatalf("Kafka at %s is not answering (run `make services`): %v", brokers[0], err)
	}
	c.Close()
	return brokers
}

// CreateTopic creates a fresh topic with n partitions (and the topic configs
// given) and deletes it when tb ends.
func CreateTopic(tb testing.TB, brokers []string, name string, partitions int, configs ...kafka.ConfigEntry) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 20 * time.Second}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}}})
	if err != nil {
		tb.Fatalf("creating topic %s: %v", name, err)
	}
	if err := resp.Errors[name]; err != nil {
		tb.Fatalf("creating topic %s: %v", name, err)
	}
	// Wait until every partition has a leader.
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			break
		}
		if ctx.Err() != nil {
			tb.Fatalf("topic %s has no leaders after 30s", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
	})
}

// EndOffsets returns the next offset to be written in every partition of topic.
func EndOffsets(tb testing.TB, brokers []string, topic string, partitions int) map[int]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	for {
		resp, err := client.ListOffsets(ctx, req)
		if err != nil {
			tb.Fatalf("listing offsets of %s: %v", topic, err)
		}
		out, retry := map[int]int64{}, error(nil)
		for _, po := range resp.Topics[topic] {
			var ke kafka.Error
			switch {
			case po.Error == nil:
				out[po.Partition] = po.LastOffset
			case errors.As(po.Error, &ke) && ke.Temporary() && ctx.Err() == nil:
				// A topic just created (or auto-created by a shipper) whose
				// leaders are still being elected.
				retry = po.Error
			default:
				tb.Fatalf("listing offsets of %s/%d: %v", topic, po.Partition, po.Error)
			}
		}
		if retry == nil {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ClickHouse opens a store on a fresh, migrated database, dropped when tb ends.
func ClickHouse(tb testing.TB) (*chstore.Store, chstore.Config) {
	tb.Helper()
	Required(tb)
	cfg := chstore.Config{Database: Unique("gapwatch_test")}
	if a := os.Getenv("GAPWATCH_CLICKHOUSE_ADDR"); a != "" {
		cfg.Addr = a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := chstore.Open(ctx, cfg, slog.Default())
	if err != nil {
		tb.Fatalf("ClickHouse is not answering (run `make services`): %v", err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		tb.Fatalf("migrating %s: %v", cfg.Database, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS `%s`", cfg.Database)); err != nil {
			tb.Logf("dropping %s: %v", cfg.Database, err)
		}
		s.Close()
	})
	return s, cfg.WithDefaults()
}

// OffsetReader is a store's view of ingest progress.
type OffsetReader interface {
	Offsets(ctx context.Context, topic string) (map[int32]storage.Offset, error)
}

// WaitStored waits until the progress stored in st reaches end (from EndOffsets)
// in every partition of topic, and fails tb after timeout.
func WaitStored(tb testing.TB, st OffsetReader, topic string, end map[int]int64, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		stored, err := st.Offsets(context.Background(), topic)
		if err != nil {
			tb.Fatalf("reading stored offsets: %v", err)
		}
		caughtUp := true
		for p, e := range end {
			if stored[int32(p)].Next < e {
				caughtUp = false
			}
		}
		if caughtUp {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("ingest did not catch up in %s: stored %v, end %v", timeout, stored, end)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
