package detect

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// ErrBadInput marks backtest input that cannot be read as counts.
var ErrBadInput = errors.New("bad backtest input")

// ReadCountsCSV reads bucketed counts in the backtest format: a header naming
// the four columns time, tenant, source and count in any order (names trimmed
// and compared case-insensitively; a UTF-8 BOM before it is skipped), then one
// row per stream and bucket. time is the bucket start: RFC 3339, or with no
// zone, read as UTC, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`
// (fractional seconds allowed and truncated). count is a non-negative integer,
// or a decimal of a whole value up to 2^53 (68.0, 6.8e1), as data sets and
// pandas write them. Spaces around time and count are ignored; tenant and
// source are kept byte-exact. The counts are of the arrival clock.
func ReadCountsCSV(r io.Reader) ([]storage.Count, error) {
	cr, err := newCSVRows(r)
	if err != nil {
		return nil, err
	}
	var out []storage.Count
	for {
		c, _, err := cr.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// csvRows reads the rows of the backtest CSV one at a time; col holds the
// record index of time, tenant, source and count.
type csvRows struct {
	cr  *csv.Reader
	col [4]int
}

func newCSVRows(r io.Reader) (csvRows, error) {
	br := bufio.NewReader(r) // r itself if a large enough bufio.Reader
	if b, _ := br.Peek(3); string(b) == "\ufeff" {
		br.Discard(3) // Excel's UTF-8 byte order mark
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true // FieldsPerRecord 0: every row has as many fields as the header
	head, err := cr.Read()
	if err != nil {
		return csvRows{}, fmt.Errorf("%w: reading the header: %w", ErrBadInput, err)
	}
	names := [4]string{"time", "tenant", "source", "count"}
	rows := csvRows{cr: cr, col: [4]int{-1, -1, -1, -1}}
	var bad []string
	for i, h := range head {
		h = strings.TrimSpace(h)
		j := slices.IndexFunc(names[:], func(n string) bool { return strings.EqualFold(n, h) })
		switch {
		case j < 0:
			bad = append(bad, fmt.Sprintf("unknown column %q", h))
		case rows.col[j] >= 0:
			bad = append(bad, fmt.Sprintf("column %q repeated", h))
		default:
			rows.col[j] = i
		}
	}
	for j, i := range rows.col {
		if i < 0 {
			bad = append(bad, fmt.Sprintf("no column %q", names[j]))
		}
	}
	if len(bad) > 0 {
		return csvRows{}, fmt.Errorf("%w: header %q: %s; want the four columns time,tenant,source,count, in any order",
			ErrBadInput, strings.Join(head, ","), strings.Join(bad, ", "))
	}
	return rows, nil
}

// next returns the next row as a count and its line number, or io.EOF.
func (r csvRows) next() (storage.Count, int, error) {
	rec, err := r.cr.Read()
	if err == io.EOF {
		return storage.Count{}, 0, err
	}
	if err != nil {
		return storage.Count{}, 0, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	line, _ := r.cr.FieldPos(0)
	ts := strings.TrimSpace(rec[r.col[0]])
	t, ok := parseBucketTime(ts)
	if !ok {
		return storage.Count{}, line, fmt.Errorf("%w: line %d: time %q is not RFC 3339 or \"YYYY-MM-DD HH:MM:SS\" (UTC)", ErrBadInput, line, ts)
	}
	cs := strings.TrimSpace(rec[r.col[3]])
	n, ok := parseCount(cs)
	if !ok {
		return storage.Count{}, line, fmt.Errorf("%w: line %d: count %q is not a whole non-negative number", ErrBadInput, line, cs)
	}
	tenant, source := rec[r.col[1]], rec[r.col[2]]
	if tenant == "" || source == "" {
		return storage.Count{}, line, fmt.Errorf("%w: line %d: tenant and source are required", ErrBadInput, line)
	}
	return storage.Count{
		Tenant: strings.Clone(tenant), Source: strings.Clone(source),
		Clock: storage.Arrival, Bucket: t.Unix(), Events: n,
	}, line, nil
}

// parseBucketTime reads a bucket start: RFC 3339, or UTC `YYYY-MM-DD
// HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`, each with optional fractional seconds.
// The form is told by its shape (a zone ends RFC 3339 in Z or ±hh:mm), so
// that no parse fails, and allocates its error, on a valid row.
func parseBucketTime(s string) (time.Time, bool) {
	layout := time.RFC3339
	if n := len(s); n >= 19 && s[13] == ':' && s[16] == ':' && s[n-1] != 'Z' && s[n-6] != '+' && s[n-6] != '-' {
		switch s[10] {
		case ' ':
			layout = "2006-01-02 15:04:05"
		case 'T':
			layout = "2006-01-02T15:04:05"
		}
	}
	t, err := time.Parse(layout, s)
	return t, err == nil
}

// parseCount reads a count: a non-negative integer, or a decimal (digits,
// point, exponent: 68.0, 68., 6.8e1) whose value is a whole number up to
// 2^53, which a float64 holds exactly.
func parseCount(s string) (uint64, bool) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == len(s) {
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil
	}
	if i == 0 && s[0] != '.' || i == 1 && s[1]|0x20 == 'x' {
		return 0, false // a sign, NaN, Inf or hex: not a decimal
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f > 1<<53 || f != math.Trunc(f) {
		return 0, false
	}
	return uint64(f), true
}

// InferStep returns the bucket width of counts — the smallest positive
// distance between two bucket starts of one stream — and the phase of the
// bucket starts. Every start must lie on that grid.
func InferStep(counts []storage.Count) (step, phase time.Duration, err error) {
	if len(counts) == 0 {
		return 0, 0, fmt.Errorf("%w: no counts", ErrBadInput)
	}
	byStream := map[streamKey][]int64{}
	for _, c := range counts {
		k := streamKey{c.Tenant, c.Source}
		byStream[k] = append(byStream[k], c.Bucket)
	}
	var w int64
	for _, ts := range byStream {
		slices.Sort(ts)
		for i := 1; i < len(ts); i++ {
			if d := ts[i] - ts[i-1]; d > 0 && (w == 0 || d < w) {
				w = d
			}
		}
	}
	if w == 0 {
		return 0, 0, fmt.Errorf("%w: cannot infer the bucket width from a single bucket per stream; give --step", ErrBadInput)
	}
	step = time.Duration(w) * time.Second
	phase, err = checkGrid(counts, step)
	return step, phase, err
}

// checkGrid returns the phase of the bucket starts on a grid of width step, or
// an error if they are not all on one grid.
func checkGrid(counts []storage.Count, step time.Duration) (time.Duration, error) {
	w := int64(step / time.Second)
	p := ((counts[0].Bucket % w) + w) % w
	for _, c := range counts {
		if ((c.Bucket%w)+w)%w != p {
			return 0, fmt.Errorf("%w: bucket start %s is not on the %s grid of %s",
				ErrBadInput, time.Unix(c.Bucket, 0).UTC().Format(time.RFC3339), step, time.Unix(counts[0].Bucket, 0).UTC().Format(time.RFC3339))
		}
	}
	return time.Duration(p) * time.Second, nil
}

// Backtest replays counts through an engine as live detection would see them:
// bucket by bucket, each bucket's counts delivered with the watermark at its
// end, and calls emit for every event in order. cfg.Bucket 0 means inferred
// from the counts (InferStep); cfg.Phase is always taken from the counts.
// Gaps still open at the end stay open (no resolution is invented).
// It holds all counts in memory; CSVCounts and EventCounts with
// BacktestBuckets do the same in bounded memory.
func Backtest(counts []storage.Count, cfg Config, emit func(Event) error) error {
	if len(counts) == 0 {
		return nil
	}
	var err error
	if cfg.Bucket == 0 {
		cfg.Bucket, cfg.Phase, err = InferStep(counts)
	} else {
		cfg.Phase, err = checkGrid(counts, cfg.Bucket)
	}
	if err != nil {
		return err
	}
	sorted := slices.Clone(counts)
	slices.SortStableFunc(sorted, func(a, b storage.Count) int { return cmp.Compare(a.Bucket, b.Bucket) })
	return BacktestBuckets(cfg, func() ([]storage.Count, error) {
		if len(sorted) == 0 {
			return nil, io.EOF
		}
		j := 1
		for j < len(sorted) && sorted[j].Bucket == sorted[0].Bucket {
			j++
		}
		out := sorted[:j]
		sorted = sorted[j:]
		return out, nil
	}, emit)
}

// BacktestBuckets replays counts through an engine for cfg as live detection
// would see them: next returns one bucket's counts per call (all of the same
// bucket, on cfg's grid, later than the previous call's; io.EOF at the end),
// each delivered with the watermark at the bucket's end; emit gets every event
// in order. Gaps still open at the end stay open.
func BacktestBuckets(cfg Config, next func() ([]storage.Count, error), emit func(Event) error) error {
	return backtest(cfg, next, emit, nil)
}

// Explainer names the stream a backtest explains (Engine.Explain) and takes
// the Explanation of each of its judged buckets, in order.
type Explainer struct {
	Tenant, Source string
	Explain        func(Explanation) error
}

// BacktestExplained is BacktestBuckets that also explains one stream's
// judged buckets to ex (gapwatch backtest --explain).
func BacktestExplained(cfg Config, next func() ([]storage.Count, error), emit func(Event) error, ex Explainer) error {
	return backtest(cfg, next, emit, &ex)
}

func backtest(cfg Config, next func() ([]storage.Count, error), emit func(Event) error, ex *Explainer) error {
	e, err := New(cfg)
	if err != nil {
		return err
	}
	if ex != nil {
		e.Explain(ex.Tenant, ex.Source)
	}
	prev := int64(math.MinInt64)
	for {
		cs, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			continue
		}
		b := cs[0].Bucket
		if b <= prev || e.bucketOf(b) != b {
			return fmt.Errorf("%w: bucket %s out of order or off the %s grid", ErrBadInput, time.Unix(b, 0).UTC().Format(time.RFC3339), cfg.Bucket)
		}
		prev = b
		res := e.Advance(time.Unix(b+e.width, 0), cs)
		for _, ev := range res.Events {
			if err := emit(ev); err != nil {
				return err
			}
		}
		for _, x := range res.Explanations {
			if err := ex.Explain(x); err != nil {
				return err
			}
		}
	}
}
