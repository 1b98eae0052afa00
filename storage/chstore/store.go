// Package chstore is gapwatch's ClickHouse store. It works on ClickHouse 18.16
// (Debian's package, used by CI) and on current releases, using modern DDL only
// where the server's version has it.
package chstore

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/gapwatch/gapwatch/config/tlsclient"
	"github.com/gapwatch/gapwatch/storage"
)

// Config says where the store is and how long it keeps data.
type Config struct {
	Addr                string        `yaml:"addr"`                  // native protocol host:port; default 127.0.0.1:9000
	Database            string        `yaml:"database"`              // default gapwatch; created by Migrate
	User                string        `yaml:"user"`                  // default "default"
	Password            string        `yaml:"password"`              // default empty; never logged
	DialTimeout         time.Duration `yaml:"dial_timeout"`          // default 5s
	RetentionDays       int           `yaml:"retention_days"`        // raw per-bucket counts; default 30
	RollupRetentionDays int           `yaml:"rollup_retention_days"` // hourly rollup; default 400

	TLS tlsclient.Config `yaml:"tls"` // to the secure native port (9440); default plaintext
}

// WithDefaults fills unset fields with their documented defaults.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9000"
	}
	if c.Database == "" {
		c.Database = "gapwatch"
	}
	if c.User == "" {
		c.User = "default"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RetentionDays == 0 {
		c.RetentionDays = 30
	}
	if c.RollupRetentionDays == 0 {
		c.RollupRetentionDays = 400
	}
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	if err := ValidDatabase(c.Database); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	if !strings.Contains(c.Addr, ":") {
		return fmt.Errorf("clickhouse: addr %q: want host:port", c.Addr)
	}
	if c.RetentionDays < 1 || c.RollupRetentionDays < c.RetentionDays {
		return fmt.Errorf("clickhouse: retention_days must be ≥ 1 and rollup_retention_days ≥ retention_days (got %d, %d)", c.RetentionDays, c.RollupRetentionDays)
	}
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("clickhouse: tls: %w", err)
	}
	return nil
}

// Store reads and writes gapwatch's tables in one ClickHouse database.
type Store struct {
	cfg      Config
	conn     driver.Conn
	db       string // backquoted database name
	version  string
	features Features
	log      *slog.Logger
	metrics  *retentionMetrics // nil until RunRetention registers them
}

// Open connects to ClickHouse and reads the server's version. It does not
// create anything; call Migrate for that.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	tlsConfig, err := cfg.TLS.TLS()
	if err != nil {
		return nil, fmt.Errorf("clickhouse: tls: %w", err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		TLS:         tlsConfig,
		Addr:        []string{cfg.Addr},
		Auth:        clickhouse.Auth{Database: "default", Username: cfg.User, Password: cfg.Password},
		DialTimeout: cfg.DialTimeout,
		// Writes are one block each (one part, atomic); a long one must not be cut off.
		ReadTimeout:     5 * time.Minute,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to ClickHouse at %s: %w", cfg.Addr, err)
	}
	s := &Store{cfg: cfg, conn: conn, db: "`" + cfg.Database + "`", log: log.With("component", "clickhouse")}
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s.version); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connecting to ClickHouse at %s as %q: %w", cfg.Addr, cfg.User, err)
	}
	if s.features, err = FeaturesOf(s.version); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// Version returns the server's version() string.
func (s *Store) Version() string { return s.version }

// Features returns what the schema uses on this server.
func (s *Store) Features() Features { return s.features }

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// CheckSchema returns an error unless Migrate has brought the database up to this build's schema.
func (s *Store) CheckSchema(ctx context.Context) error {
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("%w (run `gapwatch migrate` first)", err)
	}
	if want := LatestVersion(); v < want {
		return fmt.Errorf("database %s is at schema version %d, this build needs %d: run `gapwatch migrate`", s.cfg.Database, v, want)
	}
	return nil
}

func (s *Store) q(sql string) string { return strings.ReplaceAll(sql, "{db}", s.db) }

// Write stores a batch's counts and offsets in one insert: one block whose rows all
// fall in one partition, which ClickHouse writes as one part, atomically. The
// partition is today's (UTC), so retention drops data by the day it was stored.
// It sorts b.Counts by the table's key in place if they are not already.
func (s *Store) Write(ctx context.Context, b storage.Batch) error {
	if len(b.Counts) == 0 && len(b.Offsets) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, s.q(qInsertCounts))
	if err != nil {
		return fmt.Errorf("preparing insert: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	// Columns are appended whole: far cheaper than row by row for large batches.
	n := len(b.Counts) + len(b.Offsets)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	zero := time.Unix(0, 0).UTC()
	empty := []uint64{}
	// The column slices are reused from write to write (the driver copies
	// them into its own buffers): else ~200 MB of garbage per million rows.
	w := writeScratchPool.Get().(*writeScratch)
	w.grow(n)
	defer func() {
		clear(w.lateness) // the batch's histograms are not kept alive
		writeScratchPool.Put(w)
	}()
	days, tenants, sources, clocks, buckets, events, lateness, topics, parts, offsets, arrivalHW :=
		w.days, w.tenants, w.sources, w.clocks, w.buckets, w.events, w.lateness, w.topics, w.parts, w.offsets, w.arrivalHW
	// The block goes in sorted by the table's key (progress rows, tenant '',
	// first): ClickHouse then skips sorting it (a third of its CPU for our inserts).
	// ingest.Counter.Take hands over sorted counts; the check costs a pass.
	if !slices.IsSortedFunc(b.Counts, compareCounts) {
		slices.SortFunc(b.Counts, compareCounts)
	}
	for i, o := range b.Offsets {
		days[i], tenants[i], sources[i], clocks[i], buckets[i], events[i], lateness[i] = day, "", "", 0, zero, 0, empty
		topics[i], parts[i], offsets[i], arrivalHW[i] = o.Topic, o.Partition, o.Next, o.ArrivalHW
	}
	for j, c := range b.Counts {
		i := len(b.Offsets) + j
		days[i], tenants[i], sources[i], clocks[i] = day, c.Tenant, c.Source, uint8(c.Clock)
		buckets[i], events[i], lateness[i], arrivalHW[i] = time.Unix(c.Bucket, 0), c.Events, trimZeros(c.Lateness), zero
		topics[i], parts[i], offsets[i] = "", 0, 0
		if c.Arrival > 0 {
			arrivalHW[i] = time.Unix(c.Arrival, 0)
		}
	}
	for i, col := range []any{days, tenants, sources, clocks, buckets, events, nil, topics, parts, offsets, arrivalHW} {
		if col == nil {
			continue
		}
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("appending column %d: %w", i, err)
		}
	}
	// Row by row, an array column takes its reflection-free path.
	latCol := batch.Column(6)
	for _, l := range lateness {
		if err := latCol.AppendRow(l); err != nil {
			return fmt.Errorf("appending lateness: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("inserting %d rows into %s.counts: %w", len(b.Counts)+len(b.Offsets), s.cfg.Database, err)
	}
	return nil
}

// writeScratch holds Write's column slices for reuse (see Write).
type writeScratch struct {
	days, buckets, arrivalHW []time.Time
	tenants, sources, topics []string
	clocks                   []uint8
	events                   []uint64
	lateness                 [][]uint64
	parts                    []int32
	offsets                  []int64
}

var writeScratchPool = sync.Pool{New: func() any { return new(writeScratch) }}

// grow makes every slice of w n long.
func (w *writeScratch) grow(n int) {
	w.days, w.buckets, w.arrivalHW = resize(w.days, n), resize(w.buckets, n), resize(w.arrivalHW, n)
	w.tenants, w.sources, w.topics = resize(w.tenants, n), resize(w.sources, n), resize(w.topics, n)
	w.clocks, w.events, w.lateness = resize(w.clocks, n), resize(w.events, n), resize(w.lateness, n)
	w.parts, w.offsets = resize(w.parts, n), resize(w.offsets, n)
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// compareCounts orders counts as the counts table's key does: (tenant,
// source, clock, bucket).
func compareCounts(x, y storage.Count) int {
	return cmp.Or(strings.Compare(x.Tenant, y.Tenant), strings.Compare(x.Source, y.Source),
		cmp.Compare(x.Clock, y.Clock), cmp.Compare(x.Bucket, y.Bucket))
}

// trimZeros drops a histogram's trailing zeros (most counts have their events
// in the first classes): less to send, store and sum; sumForEach adds arrays of
// different lengths on every supported server.
func trimZeros(h []uint64) []uint64 {
	n := len(h)
	for n > 0 && h[n-1] == 0 {
		n--
	}
	if n == 0 {
		return []uint64{}
	}
	return h[:n:n]
}

// Offsets returns the stored progress of every partition of topic.
func (s *Store) Offsets(ctx context.Context, topic string) (map[int32]storage.Offset, error) {
	rows, err := s.conn.Query(ctx, s.q(qOffsets))
	if err != nil {
		return nil, fmt.Errorf("reading stored offsets: %w", err)
	}
	defer rows.Close()
	out := map[int32]storage.Offset{}
	for rows.Next() {
		var o storage.Offset
		if err := rows.Scan(&o.Topic, &o.Partition, &o.Next, &o.ArrivalHW); err != nil {
			return nil, fmt.Errorf("reading stored offsets: %w", err)
		}
		if o.Topic == topic {
			o.ArrivalHW = o.ArrivalHW.UTC()
			if o.ArrivalHW.Unix() <= 0 { // stored as toDateTime(0): none yet, as the zero time in memory
				o.ArrivalHW = time.Time{}
			}
			out[o.Partition] = o
		}
	}
	return out, rows.Err()
}

// Rates answers q from raw counts, or, when the step is whole hours, from the
// hourly rollup for the write days rolled up and raw counts for the others.
func (s *Store) Rates(ctx context.Context, q storage.RateQuery) ([]storage.Point, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	start, n := q.Steps()
	step := int64(q.Step / time.Second)
	end := start + int64(n)*step
	args := []any{start, step, q.Tenant, q.Source, uint8(q.Clock), start, end}
	sums := map[int64]uint64{}
	if step%3600 != 0 {
		if err := s.sumRates(ctx, sums, s.q(qRatesRaw), args); err != nil {
			return nil, err
		}
		return storage.FillPoints(q, sums), nil
	}
	// The markers are read once, so that each day is read from one table even
	// if it is rolled up meanwhile.
	marks, err := s.rollupMarkers(ctx)
	if err != nil {
		return nil, err
	}
	var legacy, marked, pairs []any
	for _, m := range marks {
		marked = append(marked, m.day)
		if m.token == 0 {
			legacy = append(legacy, m.day)
		} else {
			pairs = append(pairs, m.day, m.token)
		}
	}
	raw := s.q(qRatesRaw)
	if len(marked) > 0 {
		raw = strings.Replace(s.q(qRatesUnrolled), "{days}", placeholders(len(marked), "toDate(?)"), 1)
	}
	if err := s.sumRates(ctx, sums, raw, append(args, marked...)); err != nil {
		return nil, err
	}
	if len(pairs) > 0 {
		sql := strings.Replace(s.q(qRatesRolled), "{pairs}", placeholders(len(pairs)/2, "(toDate(?), toUInt64(?))"), 1)
		if err := s.sumRates(ctx, sums, sql, append(args[:len(args):len(args)], pairs...)); err != nil {
			return nil, err
		}
	}
	if len(legacy) > 0 {
		sql := strings.Replace(s.q(qRatesHourly), "{days}", placeholders(len(legacy), "toDate(?)"), 1)
		if err := s.sumRates(ctx, sums, sql, append(args[:len(args):len(args)], legacy...)); err != nil {
			return nil, err
		}
	}
	return storage.FillPoints(q, sums), nil
}

// sumRates adds the (step, events) rows of one rates query to sums.
func (s *Store) sumRates(ctx context.Context, sums map[int64]uint64, sql string, args []any) error {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("querying rates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int64
		var events uint64
		if err := rows.Scan(&i, &events); err != nil {
			return fmt.Errorf("reading rates: %w", err)
		}
		sums[i] += events
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading rates: %w", err)
	}
	return nil
}

// placeholders returns n copies of one, comma separated.
func placeholders(n int, one string) string {
	return strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
}

// BucketCounts returns every stream's events per bucket of clock in [from, to),
// in no particular order; buckets without events are absent.
func (s *Store) BucketCounts(ctx context.Context, clock storage.Clock, from, to time.Time) ([]storage.StreamCount, error) {
	rows, err := s.conn.Query(ctx, s.q(qBucketCounts), uint8(clock), from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("querying bucket counts: %w", err)
	}
	defer rows.Close()
	var out []storage.StreamCount
	for rows.Next() {
		var c storage.StreamCount
		var late []uint64
		if err := rows.Scan(&c.Tenant, &c.Source, &c.Bucket, &c.Events, &late, &c.First); err != nil {
			return nil, fmt.Errorf("reading bucket counts: %w", err)
		}
		copy(c.Lateness[:], late)
		out = append(out, c)
	}
	return out, rows.Err()
}

// StreamBucketCounts is BucketCounts of one stream, by bucket: what live
// detection read of it (gapwatch explain replays it).
func (s *Store) StreamBucketCounts(ctx context.Context, clock storage.Clock, tenant, source string, from, to time.Time) ([]storage.StreamCount, error) {
	rows, err := s.conn.Query(ctx, s.q(qStreamBucketCounts), tenant, source, uint8(clock), from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("querying a stream's bucket counts: %w", err)
	}
	defer rows.Close()
	var out []storage.StreamCount
	for rows.Next() {
		c := storage.StreamCount{Tenant: tenant, Source: source}
		var late []uint64
		if err := rows.Scan(&c.Bucket, &c.Events, &late, &c.First); err != nil {
			return nil, fmt.Errorf("reading a stream's bucket counts: %w", err)
		}
		copy(c.Lateness[:], late)
		out = append(out, c)
	}
	return out, rows.Err()
}

// rollupGrace is how long after its end a write day of counts is closed: no
// write started before midnight can still land in it (writes time out after
// seconds; a retried batch is stamped with the day of its retry).
const rollupGrace = time.Hour

// rollupSliceRows bounds the raw rows one INSERT ... SELECT of Rollup groups.
const rollupSliceRows = 4_000_000

// Exec runs one statement; for operators' tools and tests.
func (s *Store) Exec(ctx context.Context, sql string, args ...any) error {
	return s.conn.Exec(ctx, sql, args...)
}

// Arrived answers q: the event-clock rows of q's spans that arrived in
// [q.ArrivedFrom, q.ArrivedTo), summed per stream, bucket and arrival second,
// in no particular order. Each span is one parameterised condition.
func (s *Store) Arrived(ctx context.Context, q storage.ArrivedQuery) ([]storage.Arrived, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if len(q.Spans) == 0 || q.ArrivedFrom == q.ArrivedTo {
		return nil, nil
	}
	sql, args := s.arrivedSQL(q)
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("querying late arrivals: %w", err)
	}
	defer rows.Close()
	var out []storage.Arrived
	for rows.Next() {
		var a storage.Arrived
		if err := rows.Scan(&a.Tenant, &a.Source, &a.Bucket, &a.Arrival, &a.Events); err != nil {
			return nil, fmt.Errorf("reading late arrivals: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// arrivedSQL returns Arrived's statement for q and its arguments.
func (s *Store) arrivedSQL(q storage.ArrivedQuery) (string, []any) {
	var sql strings.Builder
	sql.WriteString(s.q(qArrived))
	args := make([]any, 0, 2+4*len(q.Spans))
	args = append(args, max(q.ArrivedFrom, 0), max(q.ArrivedTo, 0))
	for i, sp := range q.Spans {
		if i > 0 {
			sql.WriteString(" OR ")
		}
		sql.WriteString("(tenant = ? AND source = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?))")
		args = append(args, sp.Tenant, sp.Source, max(sp.From, 0), max(sp.To, 0))
	}
	sql.WriteString(")\nGROUP BY tenant, source, bucket, arrival_hw")
	return sql.String(), args
}

// StreamNames returns the streams with counts stored (raw counts, within
// their retention), sorted by tenant then source, at most q.Max() of them,
// and whether there were more.
func (s *Store) StreamNames(ctx context.Context, q storage.StreamQuery) ([]storage.StreamName, bool, error) {
	if err := q.Validate(); err != nil {
		return nil, false, err
	}
	rows, err := s.conn.Query(ctx, s.q(qStreamNames), q.Tenant, q.Tenant, uint64(q.Max()+1))
	if err != nil {
		return nil, false, fmt.Errorf("listing streams: %w", err)
	}
	defer rows.Close()
	out := []storage.StreamName{}
	for rows.Next() {
		var n storage.StreamName
		if err := rows.Scan(&n.Tenant, &n.Source); err != nil {
			return nil, false, fmt.Errorf("listing streams: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("listing streams: %w", err)
	}
	if len(out) > q.Max() {
		return out[:q.Max()], true, nil
	}
	return out, false, nil
}
