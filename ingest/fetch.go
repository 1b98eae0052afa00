package ingest

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// fetcher reads one partition with Fetch requests on a connection to its
// leader, in the partition goroutine itself: no goroutine, channel or context
// per message between the socket and the decoder (kafka-go's Reader costs
// about 2 µs per message in those), and no allocation per record either: the
// response is read batch by batch into a reused buffer and records are parsed
// in place (batchReader). kafka-go's Dialer still opens the connection (leader
// lookup, SASL, ApiVersions; TLS in bufferedDialer); gapwatch speaks only
// Fetch on it. See
// docs/ingest-speed.md. It reconnects on errors with backoff, like the Reader.
type fetcher struct {
	in        *Ingester
	topic     string
	partition int32
	next      int64 // offset of the next record to read
	conn      *kafka.Conn
	raw       *bufferedConn // under conn: the Fetch requests and responses
	version   int16         // of the Fetch API
	corr      int32         // correlation id of the last request
	req       []byte
	resp      fetchResponse
	failures  int
}

// Fetch API versions gapwatch speaks: 4 (Kafka 0.11, record batches,
// isolation levels) through 11 (the last before the flexible encoding).
const (
	fetchAPIKey     = 1
	fetchMinVersion = 4
	fetchMaxVersion = 11
)

// fetchResponse is the response to one Fetch request, read from the
// connection as its records are: batch by batch, each batch's records in place.
type fetchResponse struct {
	f         *fetcher
	r         *bufio.Reader
	frame     int   // bytes of the response frame not yet read
	set       int   // bytes of the record set not yet read
	highWater int64 // the partition's high-water mark
	// lastStable is the partition's last stable offset: read committed, the
	// records up to it are all that can be read yet.
	lastStable int64
	// aborted are the response's aborted transactions by first offset, still
	// ahead; abortedBy their producers whose aborted transaction has begun and
	// not yet ended (its abort marker) in the batches read so far.
	aborted   []abortedTxn
	abortedBy map[int64]bool
	next      int64 // offset after the records read or passed over
	err       error // the partition's error, or why reading stopped
	batch     []byte
	br        batchReader
}

// fetch sends a Fetch request for the next records and reads the response's
// head, waiting at most FetchMaxWait for records. It returns an error only
// when ctx ends; the records follow through fetchResponse.read.
func (f *fetcher) fetch(ctx context.Context) (*fetchResponse, error) {
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
			if err := f.dial(ctx); err != nil {
				f.fail("connecting to the partition leader", err)
				continue
			}
		}
		resp, err := f.roundTrip()
		if err != nil {
			f.handle(ctx, err)
			continue
		}
		return resp, nil
	}
}

// roundTrip writes the request and reads the response up to its record set.
func (f *fetcher) roundTrip() (*fetchResponse, error) {
	cfg := &f.in.cfg
	f.corr++
	f.req = appendFetchRequest(f.req[:0], f.version, f.corr, f.in.fetchDialer.ClientID, f.topic, f.partition, f.next, cfg.FetchMaxBytes, cfg.FetchMaxWait)
	// The broker answers within MaxWait; the deadline only catches a dead one
	// (or a partition goroutine stalled by a store outage mid-response: the
	// fetch is then made again).
	deadline := time.Now().Add(cfg.FetchMaxWait + 30*time.Second)
	if err := f.raw.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := f.raw.Write(f.req); err != nil {
		return nil, fmt.Errorf("writing the fetch request: %w", err)
	}
	resp := &f.resp
	resp.f, resp.r, resp.frame, resp.set, resp.highWater, resp.next, resp.err = f, f.raw.r, 0, 0, 0, f.next, nil
	resp.br.clear()
	if err := resp.head(f.version, f.corr, f.topic, f.partition); err != nil {
		return nil, err
	}
	return resp, nil
}

// appendFetchRequest appends a Fetch request (v4–v11) for one partition.
func appendFetchRequest(b []byte, version int16, corr int32, clientID, topic string, partition int32, offset int64, maxBytes int, maxWait time.Duration) []byte {
	b = append(b, 0, 0, 0, 0) // size, set below
	b = binary.BigEndian.AppendUint16(b, fetchAPIKey)
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = appendString(b, clientID)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica id -1: a consumer
	b = binary.BigEndian.AppendUint32(b, uint32(max(1, maxWait.Milliseconds())))
	b = binary.BigEndian.AppendUint32(b, 1) // min bytes
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	b = append(b, 1) // isolation: read committed (records of aborted transactions are skipped)
	if version >= 7 {
		b = binary.BigEndian.AppendUint32(b, 0)          // session id: none
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // session epoch -1: no session
	}
	b = binary.BigEndian.AppendUint32(b, 1) // topics
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, 1) // partitions
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	if version >= 9 {
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // current leader epoch: unknown
	}
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	if version >= 5 {
		b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff) // log start offset: n/a for consumers
	}
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	if version >= 7 {
		b = binary.BigEndian.AppendUint32(b, 0) // forgotten topics
	}
	if version >= 11 {
		b = appendString(b, "") // rack id
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// head reads the response up to the partition's record set.
func (r *fetchResponse) head(version int16, corr int32, topic string, partition int32) error {
	size, err := r.fixed(4)
	if err != nil {
		return err
	}
	r.frame = int(int32(binary.BigEndian.Uint32(size)))
	if r.frame < 4 {
		return fmt.Errorf("fetch response of %d bytes", r.frame)
	}
	if b, err := r.take(4); err != nil {
		return err
	} else if id := int32(binary.BigEndian.Uint32(b)); id != corr {
		return fmt.Errorf("fetch response to request %d, want %d", id, corr)
	}
	n := 4 // throttle time
	if version >= 7 {
		n += 2 + 4 // error code, session id
	}
	b, err := r.take(n + 4)
	if err != nil {
		return err
	}
	if version >= 7 {
		if code := int16(binary.BigEndian.Uint16(b[4:])); code != 0 {
			return kafka.Error(code)
		}
	}
	if topics := int32(binary.BigEndian.Uint32(b[n:])); topics != 1 {
		return fmt.Errorf("fetch response for %d topics, want 1", topics)
	}
	if b, err = r.take(2); err != nil {
		return err
	}
	name, err := r.take(int(binary.BigEndian.Uint16(b)))
	if err != nil {
		return err
	}
	if string(name) != topic {
		return fmt.Errorf("fetch response for topic %q, want %q", name, topic)
	}
	// partitions (1), partition, error code, high watermark, last stable
	// offset, log start offset (v5+), aborted transactions.
	n = 4 + 4 + 2 + 8 + 8
	if version >= 5 {
		n += 8
	}
	if b, err = r.take(n + 4); err != nil {
		return err
	}
	if parts, p := int32(binary.BigEndian.Uint32(b)), int32(binary.BigEndian.Uint32(b[4:])); parts != 1 || p != partition {
		return fmt.Errorf("fetch response for %d partitions (first %d), want partition %d", parts, p, partition)
	}
	code := int16(binary.BigEndian.Uint16(b[8:]))
	r.highWater = int64(binary.BigEndian.Uint64(b[10:]))
	r.lastStable = int64(binary.BigEndian.Uint64(b[18:]))
	if err := r.readAborted(int(int32(binary.BigEndian.Uint32(b[n:])))); err != nil {
		return err
	}
	if version >= 11 {
		if _, err := r.take(4); err != nil { // preferred read replica
			return err
		}
	}
	if b, err = r.take(4); err != nil {
		return err
	}
	r.set = max(0, int(int32(binary.BigEndian.Uint32(b)))) // -1: null
	if r.set > r.frame {
		return fmt.Errorf("record set of %d bytes in %d left of the fetch response", r.set, r.frame)
	}
	if code != 0 {
		r.err = kafka.Error(code)
	}
	return nil
}

// fixed reads n bytes outside the frame (its size).
func (r *fetchResponse) fixed(n int) ([]byte, error) {
	b, err := r.r.Peek(n)
	if err != nil {
		return nil, err
	}
	r.r.Discard(n)
	return b, nil
}

// take reads n bytes of the frame; the slice is valid until the next read.
func (r *fetchResponse) take(n int) ([]byte, error) {
	if n > r.frame {
		return nil, fmt.Errorf("fetch response ends %d bytes early", n-r.frame)
	}
	if n > r.r.Size() {
		return nil, fmt.Errorf("fetch response field of %d bytes", n)
	}
	b, err := r.fixed(n)
	if err != nil {
		return nil, err
	}
	r.frame -= n
	return b, nil
}

func (r *fetchResponse) skip(n int) error {
	if n > r.frame {
		return fmt.Errorf("fetch response ends %d bytes early", n-r.frame)
	}
	d, err := r.r.Discard(n)
	r.frame -= d
	return err
}

// read reads the next record at or after the fetch offset into rec; false at
// the end of the response, or when reading failed (r.err). A record's key and
// value are valid until the next call.
func (r *fetchResponse) read(rec *record) bool {
	for r.err == nil {
		ok, err := r.br.next(rec)
		switch {
		case err != nil:
			r.err = err
		case ok && rec.Offset < r.f.next:
			// A batch may start before the offset asked for.
		case ok:
			r.next = rec.Offset + 1
			return true
		default:
			// The batch is done: go past its end too (compacted records,
			// transaction markers), then on to the next batch.
			if r.br.base >= 0 {
				r.next = max(r.next, r.br.last+1)
			}
			r.err = r.nextBatch()
		}
	}
	return false
}

// nextBatch reads the next complete batch of the record set into r.br, or
// sets io.EOF at the end of the set (a batch cut at the response's size limit
// is dropped: the next fetch starts there).
func (r *fetchResponse) nextBatch() error {
	r.br.clear()
	if r.set < batchLengthEnd {
		return io.EOF
	}
	head, err := r.take(batchLengthEnd)
	if err != nil {
		return err
	}
	r.set -= batchLengthEnd
	n := int(int32(binary.BigEndian.Uint32(head[8:])))
	if n > r.set {
		return io.EOF // cut short
	}
	if n < batchHeaderLen-batchLengthEnd {
		return fmt.Errorf("%w: length %d", errBadBatch, n)
	}
	if n > r.frame {
		return fmt.Errorf("fetch response ends %d bytes early", n-r.frame)
	}
	r.batch = append(r.batch[:0], head...)
	r.batch = append(r.batch, make([]byte, n)...)
	if _, err := io.ReadFull(r.r, r.batch[batchLengthEnd:]); err != nil {
		return err
	}
	r.frame -= n
	r.set -= n
	if err := r.br.reset(r.batch); err != nil {
		return err
	}
	r.filterAborted()
	return nil
}

// abortedTxn is an aborted transaction of a fetch response.
type abortedTxn struct{ producer, first int64 }

// readAborted reads the response's n aborted transactions (-1: null).
func (r *fetchResponse) readAborted(n int) error {
	r.aborted = r.aborted[:0]
	if r.abortedBy == nil {
		r.abortedBy = map[int64]bool{}
	}
	clear(r.abortedBy)
	if n > r.frame/16 {
		return fmt.Errorf("fetch response with %d aborted transactions in %d bytes", n, r.frame)
	}
	for range max(0, n) {
		b, err := r.take(16)
		if err != nil {
			return err
		}
		r.aborted = append(r.aborted, abortedTxn{producer: int64(binary.BigEndian.Uint64(b)), first: int64(binary.BigEndian.Uint64(b[8:]))})
	}
	slices.SortFunc(r.aborted, func(a, b abortedTxn) int { return cmp.Compare(a.first, b.first) })
	return nil
}

// filterAborted empties the batch just read when it belongs to an aborted
// transaction, as Kafka's own consumer does read committed: a producer's
// transaction is aborted from its first offset to its marker.
func (r *fetchResponse) filterAborted() {
	br := &r.br
	if !br.txn {
		return
	}
	for len(r.aborted) > 0 && r.aborted[0].first <= br.last {
		r.abortedBy[r.aborted[0].producer] = true
		r.aborted = r.aborted[1:]
	}
	switch {
	case br.control:
		delete(r.abortedBy, br.producer) // the transaction's end
	case r.abortedBy[br.producer]:
		br.recs, br.left = nil, 0
		if in := r.f.in; in != nil {
			in.metrics.abortedRecords.WithLabelValues(r.f.topic).Add(float64(br.last - br.base + 1))
		}
	}
}

// done settles a response read up to where the caller stopped: the rest of
// it is read past (or the connection dropped, if reading failed), and the
// next fetch starts after the last record read. It returns how many records
// the partition is behind its high-water mark (0: caught up); ok is false when
// the fetch failed and the lag is unknown.
func (f *fetcher) done(ctx context.Context, r *fetchResponse) (lag int64, ok bool) {
	f.next = max(f.next, r.next)
	err := r.err
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if err == nil && r.frame > 0 {
		err = r.skip(r.frame) // the caller stopped early
	}
	if err != nil {
		f.handle(ctx, err)
		return 0, false
	}
	f.failures = 0
	// Read committed, the readable end is the last stable offset: an open
	// transaction holds it below the high-water mark.
	end := r.highWater
	if r.lastStable >= 0 {
		end = min(end, r.lastStable)
	}
	return max(0, end-f.next), true
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
	f.close()
	log := f.in.log.Debug
	if f.failures >= 3 || errors.Is(err, errBadBatch) {
		log = f.in.log.Warn
	}
	log("kafka partition: "+what+" failed; retrying", "topic", f.topic, "partition", f.partition, "offset", f.next, "attempt", f.failures, "err", err)
}

// dial connects to the partition's leader through the first broker that
// answers, and picks the Fetch version to speak.
func (f *fetcher) dial(ctx context.Context) error {
	var err error
	for _, b := range f.in.cfg.Brokers {
		if err = f.dialVia(ctx, b); err == nil {
			return nil
		}
	}
	return err
}

func (f *fetcher) dialVia(ctx context.Context, bootstrap string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := f.in.fetchDialer
	leader, err := d.LookupLeader(ctx, "tcp", bootstrap, f.topic, int(f.partition))
	if err != nil {
		return err
	}
	var raw *bufferedConn
	conn, err := d.DialContext(context.WithValue(ctx, rawConnKey{}, &raw), "tcp", net.JoinHostPort(leader.Host, strconv.Itoa(leader.Port)))
	if err != nil {
		return err
	}
	if raw == nil { // a Dialer not made by bufferedDialer
		conn.Close()
		return errors.New("fetch connection: no raw connection")
	}
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		conn.Close()
		return err
	}
	versions, err := conn.ApiVersions()
	if err != nil {
		conn.Close()
		return fmt.Errorf("asking for API versions: %w", err)
	}
	f.version = -1
	for _, v := range versions {
		if v.ApiKey == fetchAPIKey && v.MaxVersion >= fetchMinVersion && v.MinVersion <= fetchMaxVersion {
			f.version = min(v.MaxVersion, fetchMaxVersion)
		}
	}
	if f.version < 0 {
		conn.Close()
		return fmt.Errorf("broker %s speaks no Fetch version in %d–%d (Kafka 0.11 or later is needed)", conn.RemoteAddr(), fetchMinVersion, fetchMaxVersion)
	}
	f.conn, f.raw = conn, raw
	return nil
}

func (f *fetcher) close() {
	if f.conn != nil {
		f.conn.Close()
		f.conn, f.raw = nil, nil
	}
}

// fetchReadBuffer is the read buffer under a fetch connection.
const fetchReadBuffer = 256 << 10

// rawConnKey is the context key under which fetcher.dialVia asks
// bufferedDialer's dial function for the connection it made.
type rawConnKey struct{}

// bufferedDialer returns a copy of d whose connections read through a
// fetchReadBuffer buffer and can be handed to a fetcher (rawConnKey). It does
// d's TLS itself, so that the connection handed over is the one that carries
// the requests.
func bufferedDialer(d *kafka.Dialer) *kafka.Dialer {
	c := *d
	dial := d.DialFunc
	if dial == nil {
		dial = (&net.Dialer{LocalAddr: d.LocalAddr, FallbackDelay: d.FallbackDelay, KeepAlive: d.KeepAlive}).DialContext
	}
	tlsConfig := d.TLS
	c.TLS = nil
	c.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if tlsConfig != nil {
			cfg := tlsConfig
			if cfg.ServerName == "" { // as kafka-go: the host dialed
				cfg = cfg.Clone()
				cfg.ServerName, _, _ = net.SplitHostPort(address)
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			conn = tc
		}
		bc := &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, fetchReadBuffer)}
		if slot, ok := ctx.Value(rawConnKey{}).(**bufferedConn); ok {
			*slot = bc
		}
		return bc, nil
	}
	return &c
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
