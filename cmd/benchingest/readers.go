package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/ingest/fetch"
)

// The -readers mode compares partition readers, in this process, on one topic
// of -records records (simulate's messages, produced again until there are
// enough): gapwatch's own (package ingest/fetch), kafka-go's Reader and
// Conn.ReadBatch, and franz-go's consumer. Every reader reads every partition
// from the start to its end offset, one goroutine per partition (franz-go: one
// poll loop, each poll's partitions handled in parallel), with ingest's fetch
// sizes (8 MiB per partition, 250 ms wait). Each is measured twice per round:
// reading only, and reading plus decoding every value as ingest does (one
// decoder per partition). The order of the readers rotates from round to
// round, so that each runs early and late in a round as often.

// partitionReader reads partitions [0, len(ends)) of topic up to their end
// offsets, calling each[p] with every value of partition p (in that
// partition's goroutine).
type partitionReader struct {
	name string
	read func(ctx context.Context, o options, topic string, ends map[int32]int64, each []func([]byte)) error
}

var partitionReaders = []partitionReader{
	{"gapwatch ingest/fetch", readFetch},
	{"kafka-go Reader", readKafkaGoReader},
	{"kafka-go Conn.ReadBatch", readKafkaGoBatch},
	{"franz-go kgo", readFranz},
}

// Ingest's fetch sizes.
const (
	readMaxBytes = 8 << 20
	readMaxWait  = 250 * time.Millisecond
)

// perPartition runs f for every partition of ends in its own goroutine and
// returns the first error.
func perPartition(ends map[int32]int64, f func(p int32, end int64) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ends))
	for p, end := range ends {
		wg.Go(func() { errs[p] = f(p, end) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func readFetch(ctx context.Context, o options, topic string, ends map[int32]int64, each []func([]byte)) error {
	return perPartition(ends, func(p int32, end int64) error {
		r, err := fetch.NewReader(fetch.Config{Brokers: o.brokers, Topic: topic, Partition: p, MaxBytes: readMaxBytes, MaxWait: readMaxWait}, kafka.FirstOffset)
		if err != nil {
			return err
		}
		defer r.Close()
		var rec fetch.Record
		for r.Offset() < end {
			resp, err := r.Fetch(ctx)
			if err != nil {
				return err
			}
			for resp.Next(&rec) {
				each[p](rec.Value)
			}
			r.Done(ctx, resp)
		}
		return nil
	})
}

func readKafkaGoReader(ctx context.Context, o options, topic string, ends map[int32]int64, each []func([]byte)) error {
	return perPartition(ends, func(p int32, end int64) error {
		if end == 0 {
			return nil
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: o.brokers, Topic: topic, Partition: int(p), MinBytes: 1, MaxBytes: readMaxBytes, MaxWait: readMaxWait})
		defer r.Close()
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			return err
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				return err
			}
			each[p](m.Value)
			if m.Offset >= end-1 {
				return nil
			}
		}
	})
}

func readKafkaGoBatch(ctx context.Context, o options, topic string, ends map[int32]int64, each []func([]byte)) error {
	return perPartition(ends, func(p int32, end int64) error {
		conn, err := kafka.DialLeader(ctx, "tcp", o.brokers[0], topic, int(p))
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.Seek(kafka.FirstOffset, kafka.SeekAbsolute); err != nil {
			return err
		}
		for next := int64(0); next < end; {
			if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
				return err
			}
			b := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: readMaxBytes, MaxWait: readMaxWait})
			for {
				m, err := b.ReadMessage()
				if err != nil {
					break
				}
				each[p](m.Value)
				next = m.Offset + 1
			}
			if err := b.Close(); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
		}
		return nil
	})
}

func readFranz(ctx context.Context, o options, topic string, ends map[int32]int64, each []func([]byte)) error {
	parts := map[int32]kgo.Offset{}
	left := 0
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().AtStart()
			left++
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxBytes(int32(readMaxBytes*len(ends))), kgo.FetchMaxPartitionBytes(readMaxBytes), kgo.FetchMaxWait(readMaxWait))
	if err != nil {
		return err
	}
	defer cl.Close()
	var done atomic.Int32
	for int(done.Load()) < left {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var errs []error
		fetches.EachError(func(_ string, _ int32, err error) { errs = append(errs, err) })
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		var wg sync.WaitGroup
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			wg.Go(func() {
				f := each[fp.Partition]
				for _, r := range fp.Records {
					f(r.Value)
				}
				if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset >= ends[fp.Partition]-1 {
					done.Add(1)
				}
			})
		})
		wg.Wait()
	}
	return nil
}

// readResult is one measurement of one reader.
type readResult struct {
	seconds, cpu float64 // wall and this process's CPU
	kafkaCPU     float64 // the broker's CPU meanwhile
	other        float64 // the rest of the machine's CPU meanwhile
	records      int64
	bytes        int64
	events       int64 // with decoding
}

// timeReader reads the whole topic once with rd, decoding each value if decoding.
func timeReader(ctx context.Context, o options, rd partitionReader, topic string, ends map[int32]int64, decoding bool) (readResult, error) {
	each := make([]func([]byte), len(ends))
	records := make([]int64, len(ends))
	bytes := make([]int64, len(ends))
	events := make([]int64, len(ends))
	for p := range each {
		var dec *decode.Decoder
		var emit func(decode.Event)
		if decoding {
			var err error
			if dec, err = decode.New(decode.FieldConfig{}); err != nil {
				return readResult{}, err
			}
			emit = func(decode.Event) { events[p]++ }
		}
		each[p] = func(v []byte) {
			records[p]++
			bytes[p] += int64(len(v))
			if dec != nil {
				dec.Decode(v, emit, nil)
			}
		}
	}
	runtime.GC()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	s0 := snapCPU()
	err := rd.read(ctx, o, topic, ends, each)
	s1 := snapCPU()
	if err != nil {
		return readResult{}, fmt.Errorf("%s: %w", rd.name, err)
	}
	r := readResult{seconds: s1.at.Sub(s0.at).Seconds(), cpu: s1.self - s0.self, kafkaCPU: s1.kafka - s0.kafka}
	r.other = since(s0, s1, r.cpu).other
	for p := range each {
		r.records += records[p]
		r.bytes += bytes[p]
		r.events += events[p]
	}
	return r, nil
}

// runReaders is the -readers mode.
func runReaders(ctx context.Context, o options) error {
	client := &kafka.Client{Addr: kafka.TCP(o.brokers...), Timeout: 30 * time.Second}
	if _, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}}); err != nil {
		return fmt.Errorf("Kafka at %s is not answering (make services): %w", strings.Join(o.brokers, ","), err)
	}
	w, err := generate(o.events, o.streams, o.span, o.tick, o.seed, time.Now())
	if err != nil {
		return err
	}
	topic := unique("bench_readers_")
	if err := createTopic(ctx, client, topic, o.partitions); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := client.DeleteTopics(cctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
			fmt.Fprintf(os.Stderr, "benchingest: deleting topic %s: %v\n", topic, err)
		}
	}()
	// The generated messages, again and again, until the topic holds -records.
	for left := o.records; left > 0; left -= min(left, len(w.msgs)) {
		pctx, cancel := context.WithTimeout(ctx, o.timeout)
		_, err := produce(pctx, o, topic, w.msgs[:min(left, len(w.msgs))])
		cancel()
		if err != nil {
			return err
		}
	}
	w.msgs = nil
	ends, err := endOffsets(ctx, client, topic, o.partitions)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range ends {
		total += e
	}
	if total != int64(o.records) {
		return fmt.Errorf("topic %s holds %d records, produced %d", topic, total, o.records)
	}
	fmt.Printf("partition readers: %d records (simulate's messages, %s compression) in %d partitions, %d rounds, reader order rotating\n",
		total, o.compression, o.partitions, o.runs)
	firstOf := map[bool]readResult{}
	defer func() {
		if r, ok := firstOf[true]; ok {
			fmt.Printf("\nevery measurement read %d bytes of values (%.0f B per record); decoded: %d events\n", r.bytes, float64(r.bytes)/float64(total), r.events)
		}
	}()

	type key struct {
		reader   int
		decoding bool
	}
	results := map[key][]readResult{}
	for round := range o.runs {
		for i := range partitionReaders {
			ri := (i + round) % len(partitionReaders)
			for _, decoding := range []bool{false, true} {
				waitQuiet(ctx, o)
				r, err := timeReader(ctx, o, partitionReaders[ri], topic, ends, decoding)
				if err != nil {
					return err
				}
				if r.records != total {
					return fmt.Errorf("%s read %d records, want %d", partitionReaders[ri].name, r.records, total)
				}
				k := key{ri, decoding}
				// Every reader reads the same values: the same bytes, and the same events when decoding.
				if first, ok := firstOf[decoding]; !ok {
					firstOf[decoding] = r
				} else if first.bytes != r.bytes || first.events != r.events {
					return fmt.Errorf("%s read %d bytes / %d events, the first measurement %d / %d", partitionReaders[ri].name, r.bytes, r.events, first.bytes, first.events)
				}
				results[k] = append(results[k], r)
				progress(o, "round %d %-24s decode=%-5v %.2f s wall, %.2f CPU-s, broker %.2f, other %.2f", round+1,
					partitionReaders[ri].name, decoding, r.seconds, r.cpu, r.kafkaCPU, r.other)
			}
		}
	}
	med := func(rs []readResult, f func(readResult) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		slices.Sort(xs)
		if n := len(xs); n%2 == 0 {
			return (xs[n/2-1] + xs[n/2]) / 2
		}
		return xs[len(xs)/2]
	}
	for _, decoding := range []bool{false, true} {
		what := "read only"
		if decoding {
			what = "read + decode every value"
		}
		fmt.Printf("\n%s (medians of %d; ranges in brackets):\n", what, o.runs)
		fmt.Printf("  %-24s %-24s %-26s %-13s %s\n", "reader", "k records/s [range]", "CPU-s per 1 M [range]", "broker CPU-s", "other CPU-s")
		for ri, rd := range partitionReaders {
			rs := results[key{ri, decoding}]
			rate := func(r readResult) float64 { return float64(r.records) / r.seconds / 1e3 }
			cpu := func(r readResult) float64 { return r.cpu / float64(r.records) * 1e6 }
			span := func(f func(readResult) float64, prec int) string {
				lo, hi := f(rs[0]), f(rs[0])
				for _, r := range rs {
					lo, hi = min(lo, f(r)), max(hi, f(r))
				}
				return fmt.Sprintf("[%.*f–%.*f]", prec, lo, prec, hi)
			}
			fmt.Printf("  %-24s %-24s %-26s %-13.2f %.2f\n", rd.name,
				fmt.Sprintf("%.0f %s", med(rs, rate), span(rate, 0)), fmt.Sprintf("%.2f %s", med(rs, cpu), span(cpu, 2)),
				med(rs, func(r readResult) float64 { return r.kafkaCPU }), med(rs, func(r readResult) float64 { return r.other }))
		}
	}
	return nil
}
