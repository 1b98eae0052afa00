package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gapwatch/gapwatch/storage"
)

// KafkaConfig configures the alert topic.
type KafkaConfig struct {
	Brokers []string
	Topic   string
	// Partitions of the alert topic when gapwatch creates it. Default 3.
	Partitions int

	// Dialer (reading the alert topic) and Transport (writing, admin) carry TLS
	// and SASL; nil: kafka-go's defaults.
	Dialer    *kafka.Dialer
	Transport kafka.RoundTripper
}

// Kafka is the alert topic (a Sink) and the reader of the input topics'
// partitions (an Input), with kafka-go.
type Kafka struct {
	cfg    KafkaConfig
	client *kafka.Client
	writer *kafka.Writer
}

// NewKafka returns the alert topic's writer. It creates nothing until used.
func NewKafka(cfg KafkaConfig) *Kafka {
	if cfg.Partitions == 0 {
		cfg.Partitions = 3
	}
	addr := kafka.TCP(cfg.Brokers...)
	return &Kafka{
		cfg:    cfg,
		client: &kafka.Client{Addr: addr, Timeout: 10 * time.Second, Transport: cfg.Transport},
		writer: &kafka.Writer{
			Addr:  addr,
			Topic: cfg.Topic,
			// The key (stream id) picks the partition, so each stream's alerts
			// stay in order; FNV-1a, stable across processes and replicas.
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			BatchSize:    1000,
			MaxAttempts:  5,

			Transport: cfg.Transport,
		},
	}
}

// Close flushes and closes the writer.
func (k *Kafka) Close() error { return k.writer.Close() }

// EnsureTopic creates the alert topic if it does not exist.
func (k *Kafka) EnsureTopic(ctx context.Context) error {
	parts, err := k.Partitions(ctx, []string{k.cfg.Topic})
	if err == nil && len(parts[k.cfg.Topic]) > 0 {
		return nil
	}
	resp, err := k.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: k.cfg.Topic, NumPartitions: k.cfg.Partitions, ReplicationFactor: -1, // the broker's default
	}}})
	if err != nil {
		return fmt.Errorf("creating alert topic %s: %w", k.cfg.Topic, err)
	}
	if err := resp.Errors[k.cfg.Topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("creating alert topic %s: %w", k.cfg.Topic, err)
	}
	return nil
}

// Partitions returns the partitions of topics, sorted.
func (k *Kafka) Partitions(ctx context.Context, topics []string) (map[string][]int32, error) {
	md, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, err
	}
	out := map[string][]int32{}
	for _, t := range md.Topics {
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			out[t.Name] = append(out[t.Name], int32(p.ID))
		}
		slices.Sort(out[t.Name])
	}
	return out, nil
}

// Mark returns the alert topic's end offsets, indexed by partition.
func (k *Kafka) Mark(ctx context.Context) ([]int64, error) {
	parts, err := k.Partitions(ctx, []string{k.cfg.Topic})
	if err != nil {
		return nil, err
	}
	ps := parts[k.cfg.Topic]
	if len(ps) == 0 {
		return nil, fmt.Errorf("alert topic %s does not exist", k.cfg.Topic)
	}
	req := make([]kafka.OffsetRequest, len(ps))
	for i, p := range ps {
		req[i] = kafka.LastOffsetOf(int(p))
	}
	resp, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{k.cfg.Topic: req}})
	if err != nil {
		return nil, err
	}
	out := make([]int64, ps[len(ps)-1]+1)
	for _, po := range resp.Topics[k.cfg.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("alert topic %s/%d: %w", k.cfg.Topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

// Published reads the alert topic from the offsets from to its current end
// and returns the ids of the alerts found there.
func (k *Kafka) Published(ctx context.Context, from []int64) (map[string]bool, error) {
	end, err := k.Mark(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for p := range end {
		start := int64(0)
		if p < len(from) {
			start = from[p]
		}
		if start >= end[p] {
			continue
		}
		if err := k.readIDs(ctx, p, start, end[p], seen); err != nil {
			return nil, fmt.Errorf("reading alert topic %s/%d from %d: %w", k.cfg.Topic, p, start, err)
		}
	}
	return seen, nil
}

func (k *Kafka) readIDs(ctx context.Context, partition int, from, to int64, seen map[string]bool) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: k.cfg.Brokers, Topic: k.cfg.Topic, Partition: partition, MaxBytes: 8 << 20, Dialer: k.cfg.Dialer,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		var ce struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Value, &ce) == nil && ce.ID != "" {
			seen[ce.ID] = true
		}
		if m.Offset+1 >= to {
			return nil
		}
	}
}

var structured = []kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json; charset=UTF-8")}}

// Publish writes alerts keyed by their Key and waits for every in-sync replica.
func (k *Kafka) Publish(ctx context.Context, alerts []storage.Alert) error {
	msgs := make([]kafka.Message, len(alerts))
	for i, a := range alerts {
		// Structured mode of the CloudEvents Kafka binding: the event is the value.
		msgs[i] = kafka.Message{Key: []byte(a.Key), Value: a.Payload, Headers: structured}
	}
	if err := k.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publishing %d alerts to %s: %w", len(alerts), k.cfg.Topic, err)
	}
	return nil
}
