package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/valyala/fastjson"

	"github.com/gapwatch/gapwatch/simulate"
)

// workload is the generated traffic and what it holds.
type workload struct {
	msgs        []kafka.Message
	events      int   // records over all messages
	bytes       int64 // sum of the values' lengths
	streams     int   // distinct (tenant, source) with at least one event
	tenants     int
	toppedUp    int // streams the simulator left silent, given one message
	first, last time.Time
}

// generate renders at least n events (exactly n unless one envelope overshoots
// at the very end, which trimming avoids in practice) from simulate's generator
// with streams/6 tenants, arriving over about span, in ticks of tick, sorted by
// arrival. Streams the Poisson draws left silent get one message rewritten from
// another stream of the same source, so every stream is active.
func generate(n, streams int, span, tick time.Duration, seed uint64, now time.Time) (*workload, error) {
	tenants := streams / 6
	start := now.Add(-span - tick).Truncate(time.Minute)
	g := simulate.NewGenerator(simulate.Config{Tenants: tenants, Rate: float64(n) / span.Seconds(), Seed: seed}, start)

	type item struct {
		m      kafka.Message
		events int
	}
	var items []item
	perStream := map[string]int{} // messages per stream key tenant/source
	total := 0
	var p fastjson.Parser
	for at, i := start, 0; total < n; at, i = at.Add(tick), i+1 {
		if i > 100_000 {
			return nil, errors.New("simulator produces no events")
		}
		ms, _ := g.Tick(at, tick)
		slices.SortStableFunc(ms, func(a, b simulate.Message) int { return a.Time.Compare(b.Time) })
		for _, m := range ms {
			k, err := countEvents(&p, m.Value)
			if err != nil {
				return nil, fmt.Errorf("simulated message %.80q: %w", m.Value, err)
			}
			items = append(items, item{kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}, k})
			perStream[string(m.Key)]++
			total += k
		}
	}

	// Donors: per source, the message with the fewest records.
	donors := map[string]int{}
	for i, it := range items {
		_, source := splitKey(it.m.Key)
		if d, ok := donors[source]; !ok || it.events < items[d].events {
			donors[source] = i
		}
	}
	topped := 0
	for _, s := range g.Streams() {
		key := s.Tenant + "/" + s.Source
		if perStream[key] > 0 {
			continue
		}
		d, ok := donors[s.Source]
		if !ok {
			return nil, fmt.Errorf("no message of source %s to model stream %s on", s.Source, key)
		}
		donor := items[d]
		dt, _ := splitKey(donor.m.Key)
		v, err := retenant(donor.m.Value, dt, s.Tenant)
		if err != nil {
			return nil, err
		}
		items = append(items, item{kafka.Message{Key: []byte(key), Value: v, Time: donor.m.Time}, donor.events})
		perStream[key]++
		total += donor.events
		topped++
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.m.Time.Compare(b.m.Time) })

	// Trim the newest messages down to n events, never a stream's last message.
	keep := make([]bool, len(items))
	for i := range keep {
		keep[i] = true
	}
	for i := len(items) - 1; i >= 0 && total > n; i-- {
		it := items[i]
		if total-it.events >= n && perStream[string(it.m.Key)] > 1 {
			keep[i] = false
			total -= it.events
			perStream[string(it.m.Key)]--
		}
	}
	w := &workload{tenants: tenants, toppedUp: topped, events: total}
	w.msgs = make([]kafka.Message, 0, len(items))
	active := map[string]bool{}
	for i, it := range items {
		if !keep[i] {
			continue
		}
		w.msgs = append(w.msgs, it.m)
		w.bytes += int64(len(it.m.Value))
		active[string(it.m.Key)] = true
	}
	w.streams = len(active)
	w.first, w.last = w.msgs[0].Time, w.msgs[len(w.msgs)-1].Time
	return w, nil
}

func splitKey(k []byte) (tenant, source string) {
	t, s, _ := strings.Cut(string(k), "/")
	return t, s
}

// countEvents returns the number of events gapwatch must count in a simulated
// message: the length of an Azure `records` or CloudTrail `Records` array, else 1.
func countEvents(p *fastjson.Parser, v []byte) (int, error) {
	val, err := p.ParseBytes(v)
	if err != nil {
		return 0, err
	}
	o, err := val.Object()
	if err != nil {
		return 0, err
	}
	for _, k := range []string{"records", "Records"} {
		if a := o.Get(k); a != nil && a.Type() == fastjson.TypeArray {
			arr, _ := a.Array()
			return len(arr), nil
		}
	}
	return 1, nil
}

// retenant rewrites a simulated message of tenant from to tenant to: every JSON
// string equal to from, and Azure's resourceId path /tenants/from/.
func retenant(v []byte, from, to string) ([]byte, error) {
	q := func(s string) []byte { return strconv.AppendQuote(nil, s) }
	out := bytes.ReplaceAll(v, q(from), q(to))
	out = bytes.ReplaceAll(out, []byte("/tenants/"+from+"/"), []byte("/tenants/"+to+"/"))
	if bytes.Equal(out, v) || bytes.Contains(out, q(from)) {
		return nil, fmt.Errorf("rewriting tenant %s to %s in %.80q failed", from, to, v)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Kafka

func codec(name string) (kafka.Compression, error) {
	switch name {
	case "none", "":
		return 0, nil
	case "gzip":
		return compress.Gzip, nil
	case "snappy":
		return compress.Snappy, nil
	case "lz4":
		return compress.Lz4, nil
	case "zstd":
		return compress.Zstd, nil
	}
	return 0, fmt.Errorf("-compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

func createTopic(ctx context.Context, client *kafka.Client, name string, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[name]
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", name, err)
	}
	for { // until every partition has a leader
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ok := true
			for _, p := range md.Topics[0].Partitions {
				ok = ok && p.Error == nil && p.Leader.ID >= 0
			}
			if ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s has no leaders after 30s", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// endOffsets returns the next offset to be written of every partition.
func endOffsets(ctx context.Context, client *kafka.Client, topic string, partitions int) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[int32(po.Partition)] = po.LastOffset
	}
	if len(out) != partitions {
		return nil, fmt.Errorf("listing offsets of %s: %d partitions answered, want %d", topic, len(out), partitions)
	}
	return out, nil
}

// produce writes msgs to topic, keyed by stream (hash balancer), fully acknowledged.
func produce(ctx context.Context, o options, topic string, msgs []kafka.Message) (float64, error) {
	c, _ := codec(o.compression)
	w := &kafka.Writer{
		Addr:         kafka.TCP(o.brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Compression:  c,
		BatchSize:    4000,
		BatchBytes:   1_000_000, // below the broker's message.max.bytes
		BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: 30 * time.Second,
	}
	began := time.Now()
	const chunk = 50_000
	for i := 0; i < len(msgs); i += chunk {
		if err := w.WriteMessages(ctx, msgs[i:min(i+chunk, len(msgs))]...); err != nil {
			w.Close()
			return 0, fmt.Errorf("producing to %s: %w", topic, err)
		}
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("producing to %s: %w", topic, err)
	}
	return time.Since(began).Seconds(), nil
}

// ---------------------------------------------------------------------------
// reference: kcat
