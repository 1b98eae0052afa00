package ingest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gapwatch/gapwatch/ingest/decode"
)

// DLQSuffix is appended to an input topic's name to name its dead-letter topic.
const DLQSuffix = ".dlq"

// MaxDeadLetterValue bounds the copy of a rejected message kept in its dead
// letter; longer values are cut and marked with the gapwatch.truncated header.
const MaxDeadLetterValue = 256 << 10

// DeadLetter is a message, or a message with some records, that was not counted.
type DeadLetter struct {
	Topic     string // the input topic; the letter goes to Topic + DLQSuffix
	Partition int32
	Offset    int64
	Arrival   time.Time
	Key       []byte
	Value     []byte        // the original value, cut at MaxDeadLetterValue
	Size      int           // the original value's length
	Reason    decode.Reason // of the first rejection
	Detail    string        // the first rejections' details
	Rejected  int           // records (or 1 for the whole message) not counted
}

func newDeadLetter(m *Message, rejects []rejection, refused int) DeadLetter {
	v := m.Value
	if len(v) > MaxDeadLetterValue {
		v = v[:MaxDeadLetterValue]
	}
	var detail strings.Builder
	for i, r := range rejects {
		if i == 3 {
			fmt.Fprintf(&detail, "; and %d more", len(rejects)-3)
			break
		}
		if i > 0 {
			detail.WriteString("; ")
		}
		detail.WriteString(string(r.reason) + ": " + r.detail)
	}
	n := len(rejects)
	if refused > 1 {
		n += refused - 1 // one rejection stands for all refused events
	}
	return DeadLetter{
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Arrival: m.Arrival,
		Key: append([]byte(nil), m.Key...), Value: append([]byte(nil), v...), Size: len(m.Value),
		Reason: rejects[0].reason, Detail: detail.String(), Rejected: n,
	}
}

// DeadLetterPublisher stores dead letters before the offsets that pass them are
// stored. Publish returns only once all letters are acknowledged, or an error;
// after an error the ingester drops those letters (counted) rather than stall
// counting behind a broken dead-letter topic.
type DeadLetterPublisher interface {
	Publish(ctx context.Context, letters []DeadLetter) error
}

// KafkaDeadLetters publishes dead letters to <topic>.dlq with the reason in headers.
type KafkaDeadLetters struct {
	w *kafka.Writer
}

var _ DeadLetterPublisher = (*KafkaDeadLetters)(nil)

// NewKafkaDeadLetters returns a publisher writing with acks from all in-sync
// replicas, through transport (TLS, SASL; nil: kafka-go's default).
func NewKafkaDeadLetters(brokers []string, transport kafka.RoundTripper) *KafkaDeadLetters {
	return &KafkaDeadLetters{w: &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Transport:              transport,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond,
		BatchBytes:             4 << 20,
		AllowAutoTopicCreation: true,
	}}
}

// Publish writes the letters and waits for their acknowledgement.
func (k *KafkaDeadLetters) Publish(ctx context.Context, letters []DeadLetter) error {
	msgs := make([]kafka.Message, len(letters))
	for i, l := range letters {
		h := []kafka.Header{
			{Key: "gapwatch.reason", Value: []byte(l.Reason)},
			{Key: "gapwatch.detail", Value: []byte(l.Detail)},
			{Key: "gapwatch.rejected", Value: []byte(strconv.Itoa(l.Rejected))},
			{Key: "gapwatch.topic", Value: []byte(l.Topic)},
			{Key: "gapwatch.partition", Value: []byte(strconv.Itoa(int(l.Partition)))},
			{Key: "gapwatch.offset", Value: []byte(strconv.FormatInt(l.Offset, 10))},
		}
		if l.Size > len(l.Value) {
			h = append(h, kafka.Header{Key: "gapwatch.truncated", Value: []byte(strconv.Itoa(l.Size))})
		}
		msgs[i] = kafka.Message{Topic: l.Topic + DLQSuffix, Key: l.Key, Value: l.Value, Time: l.Arrival, Headers: h}
	}
	if err := k.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publishing %d dead letters: %w", len(letters), err)
	}
	return nil
}

// Close flushes and closes the writer.
func (k *KafkaDeadLetters) Close() error { return k.w.Close() }
