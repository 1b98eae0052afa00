package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// fetcher reads one partition with fetch requests on a connection to its
// leader, in the partition goroutine itself: no goroutine, channel or context
// per message between the socket and the decoder (kafka-go's Reader costs
// about 2 µs per message in those; see docs/ingest-speed.md). It reconnects
// on errors with backoff, like the Reader.
type fetcher struct {
	in        *Ingester
	topic     string
	partition int32
	next      int64 // offset of the next record to read
	conn      *kafka.Conn
	failures  int
}

// batch returns the next fetch response, waiting at most FetchMaxWait for
// records. It returns an error only when ctx ends.
func (f *fetcher) batch(ctx context.Context) (*kafka.Batch, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if f.failures > 0 {
			wait := min(100*time.Millisecond<<min(f.failures-1, 6), 5*time.Second)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		if f.conn == nil {
			conn, err := f.dial(ctx)
			if err != nil {
				f.fail("connecting to the partition leader", err)
				continue
			}
			f.conn = conn
		}
		if _, err := f.conn.Seek(f.next, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
			f.fail("seeking", err)
			continue
		}
		cfg := &f.in.cfg
		// The broker answers within MaxWait; the deadline only catches a dead one.
		if err := f.conn.SetReadDeadline(time.Now().Add(cfg.FetchMaxWait + 30*time.Second)); err != nil {
			f.fail("setting a deadline", err)
			continue
		}
		b := f.conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: cfg.FetchMaxBytes, MaxWait: cfg.FetchMaxWait})
		if err := b.Err(); err != nil {
			b.Close()
			f.handle(ctx, err)
			continue
		}
		return b, nil
	}
}

// done settles a batch read up to where the caller stopped: the next fetch
// starts after the last record read (or past records the batch skipped, such
// as compacted ones or transaction markers). It returns how many records the
// partition is behind its high-water mark (0: caught up); ok is false when the
// fetch failed and the lag is unknown.
func (f *fetcher) done(ctx context.Context, b *kafka.Batch) (lag int64, ok bool) {
	err := b.Close()
	f.next = max(f.next, b.Offset())
	if errors.Is(err, kafka.RequestTimedOut) {
		err = nil // an empty fetch: MaxWait passed without records
	}
	if err != nil {
		f.handle(ctx, err)
		return 0, false
	}
	f.failures = 0
	return max(0, b.HighWaterMark()-f.next), true
}

// handle reacts to a failed fetch: an offset out of range is looked into, any
// other error drops the connection (the next fetch redials the leader).
func (f *fetcher) handle(ctx context.Context, err error) {
	if errors.Is(err, kafka.OffsetOutOfRange) {
		// The connection is of no use after this error: ask the cluster.
		first, ferr := f.in.absoluteOffset(ctx, f.topic, f.partition, kafka.FirstOffset)
		if ferr == nil && f.next < first {
			// Retention deleted records before they were counted: they are
			// lost to gapwatch. Say so loudly and go on from the oldest kept.
			f.in.log.Error("records deleted by Kafka retention before ingest counted them; continuing from the oldest kept",
				"topic", f.topic, "partition", f.partition, "from", f.next, "to", first, "lost_records", first-f.next)
			f.in.metrics.lostRecords.WithLabelValues(f.topic).Add(float64(first - f.next))
			f.next = first
			f.close()
			return
		}
		if ferr == nil {
			err = fmt.Errorf("%w (the partition starts at offset %d)", err, first)
		}
	}
	f.fail("fetching", err)
}

func (f *fetcher) fail(what string, err error) {
	f.failures++
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
	log := f.in.log.Debug
	if f.failures >= 3 {
		log = f.in.log.Warn
	}
	log("kafka partition: "+what+" failed; retrying", "topic", f.topic, "partition", f.partition, "offset", f.next, "attempt", f.failures, "err", err)
}

// dial connects to the partition's leader through the first broker that answers.
func (f *fetcher) dial(ctx context.Context) (*kafka.Conn, error) {
	var err error
	for _, b := range f.in.cfg.Brokers {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var conn *kafka.Conn
		conn, err = f.in.fetchDialer.DialLeader(dctx, "tcp", b, f.topic, int(f.partition))
		cancel()
		if err == nil {
			return conn, nil
		}
	}
	return nil, err
}

func (f *fetcher) close() {
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}

// fetchReadBuffer is the read buffer under a fetch connection: kafka-go reads
// through a 4 KiB buffer, which costs a system call per dozen records.
const fetchReadBuffer = 256 << 10

// bufferedDialer returns a copy of d whose connections read through a
// fetchReadBuffer buffer (below TLS, when d has it).
func bufferedDialer(d *kafka.Dialer) *kafka.Dialer {
	c := *d
	dial := d.DialFunc
	if dial == nil {
		dial = (&net.Dialer{LocalAddr: d.LocalAddr, FallbackDelay: d.FallbackDelay, KeepAlive: d.KeepAlive}).DialContext
	}
	c.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, fetchReadBuffer)}, nil
	}
	return &c
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
