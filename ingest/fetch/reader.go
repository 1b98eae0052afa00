package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Config is a partition reader's configuration. Zero values take the
// documented defaults.
type Config struct {
	Brokers   []string // bootstrap brokers, tried in order; required
	Topic     string   // required
	Partition int32
	// Dialer opens every connection of the reader: to the bootstrap brokers
	// for the leader lookup and the offset lists, and to the leader for the
	// fetches. Its TLS and SASLMechanism are used on all of them (TLS is done
	// by the reader's buffered copy of the Dialer, SASL by kafka-go's Dialer
	// on the connection that then carries the fetches). Default
	// kafka.DefaultDialer.
	Dialer   *kafka.Dialer
	MaxBytes int           // most bytes of records one fetch returns; default 8 MiB
	MaxWait  time.Duration // longest a fetch waits for records; default 250ms
	Log      *slog.Logger  // fetch failures (debug, warn when repeated); default slog.Default()
	// OnLost, if set, is called (in the reading goroutine) when Kafka
	// retention deleted records before they were read: the offsets from
	// through to-1 are lost, and reading goes on at to. The reader logs the
	// loss as an error either way.
	OnLost func(from, to int64)
	// OnAborted, if set, is called (in the reading goroutine) with the
	// number of offsets of an aborted transaction's batch that a
	// read-committed fetch passed over.
	OnAborted func(n int64)
}

// WithDefaults returns c with every zero field set to its documented default.
func (c Config) WithDefaults() Config {
	if c.Dialer == nil {
		c.Dialer = kafka.DefaultDialer
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 8 << 20
	}
	if c.MaxWait == 0 {
		c.MaxWait = 250 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0 || c.Brokers[0] == "":
		return errors.New("fetch: no Kafka brokers")
	case c.Topic == "":
		return errors.New("fetch: no topic")
	case c.Partition < 0:
		return fmt.Errorf("fetch: partition %d", c.Partition)
	case c.MaxBytes < 1:
		return fmt.Errorf("fetch: max bytes %d", c.MaxBytes)
	case c.MaxWait < time.Millisecond:
		return fmt.Errorf("fetch: max wait %s", c.MaxWait)
	}
	return nil
}

// Reader reads one partition with Fetch requests on a connection to its
// leader, in the caller's goroutine: no goroutine, channel or context per
// record between the socket and the caller, and no allocation per record
// either (the response is read batch by batch into a reused buffer, and
// records are parsed in place). kafka-go's Dialer opens the connection
// (leader lookup, SASL, ApiVersions; TLS in the buffered Dialer); the Reader
// speaks only Fetch on it. It reconnects on errors with backoff. Not safe for
// concurrent use.
//
// The loop of a caller:
//
//	for {
//		resp, err := r.Fetch(ctx) // err only when ctx ends
//		for resp.Next(&rec) { … }
//		lag, ok := r.Done(ctx, resp)
//	}
type Reader struct {
	cfg       Config
	dialer    *kafka.Dialer // cfg.Dialer's buffered copy
	offsets   *kafka.Client // for the partition's first and end offsets
	transport *kafka.Transport
	next      int64 // offset of the next record to read
	conn      *kafka.Conn
	raw       *bufferedConn // under conn: the Fetch requests and responses
	version   int16         // of the Fetch API
	corr      int32         // correlation id of the last request
	req       []byte
	resp      Response
	failures  int
	// highWater is the partition's high-water mark as of the last fetch that
	// succeeded (-1 before one): see CaughtUp.
	highWater int64
}

// NewReader returns a reader of cfg's partition that starts at offset:
// an absolute offset, or kafka.FirstOffset or kafka.LastOffset (the first
// Fetch then asks the cluster where that is). It connects on the first Fetch.
func NewReader(cfg Config, offset int64) (*Reader, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if offset < 0 && offset != kafka.FirstOffset && offset != kafka.LastOffset {
		return nil, fmt.Errorf("fetch: start offset %d", offset)
	}
	d := cfg.Dialer
	transport := &kafka.Transport{Dial: d.DialFunc, TLS: d.TLS, SASL: d.SASLMechanism, ClientID: d.ClientID}
	return &Reader{
		cfg:       cfg,
		dialer:    bufferedDialer(d),
		transport: transport,
		offsets:   &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: transport},
		next:      offset,
		highWater: -1,
	}, nil
}

// Offset returns the offset of the next record to read (negative until the
// first Fetch has resolved kafka.FirstOffset or kafka.LastOffset).
func (r *Reader) Offset() int64 { return r.next }

// Fetch sends a Fetch request for the next records and reads the response's
// head, waiting at most MaxWait for records. It returns an error only when
// ctx ends; the records follow through Response.Next, and Done must be
// called before the next Fetch.
func (r *Reader) Fetch(ctx context.Context) (*Response, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.failures > 0 {
			wait := min(100*time.Millisecond<<min(r.failures-1, 6), 5*time.Second)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		if r.next < 0 {
			next, err := r.listOffset(ctx, r.next)
			if err != nil {
				r.fail("resolving the start offset", err)
				continue
			}
			r.next = next
		}
		if r.conn == nil {
			if err := r.dial(ctx); err != nil {
				r.fail("connecting to the partition leader", err)
				continue
			}
		}
		resp, err := r.roundTrip()
		if err != nil {
			r.handle(ctx, err)
			continue
		}
		return resp, nil
	}
}

// roundTrip writes the request and reads the response up to its record set.
func (r *Reader) roundTrip() (*Response, error) {
	cfg := &r.cfg
	r.corr++
	r.req = appendFetchRequest(r.req[:0], r.version, r.corr, r.dialer.ClientID, cfg.Topic, cfg.Partition, r.next, cfg.MaxBytes, cfg.MaxWait)
	// The broker answers within MaxWait; the deadline only catches a dead one
	// (or a caller stalled mid-response, e.g. by a store outage: the fetch is
	// then made again).
	deadline := time.Now().Add(cfg.MaxWait + 30*time.Second)
	if err := r.raw.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := r.raw.Write(r.req); err != nil {
		return nil, fmt.Errorf("writing the fetch request: %w", err)
	}
	resp := &r.resp
	resp.f, resp.r, resp.frame, resp.set, resp.highWater, resp.lastStable, resp.next, resp.err = r, r.raw.r, 0, 0, 0, -1, r.next, nil
	resp.br.clear()
	if err := resp.head(r.version, r.corr, cfg.Topic, cfg.Partition); err != nil {
		return nil, err
	}
	return resp, nil
}

// Done settles a response read up to where the caller stopped: the rest of
// it is read past (or the connection dropped, if reading failed), and the
// next fetch starts after the last record read. It returns how many records
// the partition is behind its high-water mark (0: caught up); ok is false when
// the fetch failed and the lag is unknown.
func (r *Reader) Done(ctx context.Context, resp *Response) (lag int64, ok bool) {
	r.next = max(r.next, resp.next)
	err := resp.err
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if err == nil && resp.frame > 0 {
		err = resp.skip(resp.frame) // the caller stopped early
	}
	if err != nil {
		r.handle(ctx, err)
		return 0, false
	}
	r.failures = 0
	r.highWater = resp.highWater
	end := resp.highWater
	if resp.lastStable >= 0 {
		end = min(end, resp.lastStable) // read committed: what can be read yet
	}
	return max(0, end-r.next), true
}

// CaughtUp reports whether the last fetch (settled by Done) found nothing
// after Offset up to the partition's high-water mark: no record left to read,
// not even one of a transaction still open (which a read-committed fetch
// cannot return yet, and whose records carry the times they were produced at,
// however long the transaction takes to commit).
func (r *Reader) CaughtUp() bool { return r.highWater >= 0 && r.next >= r.highWater }

// handle reacts to a failed fetch: an offset out of range is looked into, any
// other error drops the connection (the next fetch redials the leader).
func (r *Reader) handle(ctx context.Context, err error) {
	if errors.Is(err, kafka.OffsetOutOfRange) {
		// The connection is of no use after this error: ask the cluster.
		first, ferr := r.listOffset(ctx, kafka.FirstOffset)
		if ferr == nil && r.next < first {
			// Retention deleted records before they were read: they are
			// lost. Say so loudly and go on from the oldest kept.
			r.cfg.Log.Error("records deleted by Kafka retention before they were read; continuing from the oldest kept",
				"topic", r.cfg.Topic, "partition", r.cfg.Partition, "from", r.next, "to", first, "lost_records", first-r.next)
			if r.cfg.OnLost != nil {
				r.cfg.OnLost(r.next, first)
			}
			r.next = first
			r.Close()
			return
		}
		if ferr == nil {
			err = fmt.Errorf("%w (the partition starts at offset %d)", err, first)
		}
	}
	r.fail("fetching", err)
}

func (r *Reader) fail(what string, err error) {
	r.failures++
	r.closeConn()
	log := r.cfg.Log.Debug
	if r.failures >= 3 || errors.Is(err, errBadBatch) {
		log = r.cfg.Log.Warn
	}
	log("kafka partition: "+what+" failed; retrying", "topic", r.cfg.Topic, "partition", r.cfg.Partition, "offset", r.next, "attempt", r.failures, "err", err)
}

// listOffset asks the cluster for the partition's first offset
// (kafka.FirstOffset) or end offset (kafka.LastOffset), once.
func (r *Reader) listOffset(ctx context.Context, which int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	topic, p := r.cfg.Topic, int(r.cfg.Partition)
	req := kafka.FirstOffsetOf(p)
	if which == kafka.LastOffset {
		req = kafka.LastOffsetOf(p)
	}
	resp, err := r.offsets.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {req}}})
	if err != nil {
		return 0, fmt.Errorf("listing offsets: %w", err)
	}
	if len(resp.Topics[topic]) != 1 {
		return 0, fmt.Errorf("listing offsets: %d partitions in the answer", len(resp.Topics[topic]))
	}
	po := resp.Topics[topic][0]
	if po.Error != nil {
		return 0, fmt.Errorf("listing offsets: %w", po.Error)
	}
	if which == kafka.LastOffset {
		return po.LastOffset, nil
	}
	return po.FirstOffset, nil
}

// dial connects to the partition's leader through the first broker that
// answers, and picks the Fetch version to speak.
func (r *Reader) dial(ctx context.Context) error {
	var err error
	for _, b := range r.cfg.Brokers {
		if err = r.dialVia(ctx, b); err == nil {
			return nil
		}
	}
	return err
}

func (r *Reader) dialVia(ctx context.Context, bootstrap string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := r.dialer
	leader, err := d.LookupLeader(ctx, "tcp", bootstrap, r.cfg.Topic, int(r.cfg.Partition))
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
	r.version = -1
	for _, v := range versions {
		if v.ApiKey == fetchAPIKey && v.MaxVersion >= fetchMinVersion && v.MinVersion <= fetchMaxVersion {
			r.version = min(v.MaxVersion, fetchMaxVersion)
		}
	}
	if r.version < 0 {
		conn.Close()
		return fmt.Errorf("broker %s speaks no Fetch version in %d–%d (Kafka 0.11 or later is needed)", conn.RemoteAddr(), fetchMinVersion, fetchMaxVersion)
	}
	r.conn, r.raw = conn, raw
	return nil
}

func (r *Reader) closeConn() {
	if r.conn != nil {
		r.conn.Close()
		r.conn, r.raw = nil, nil
	}
}

// Close drops the reader's connections; a later Fetch connects again.
func (r *Reader) Close() {
	r.closeConn()
	r.transport.CloseIdleConnections()
}
