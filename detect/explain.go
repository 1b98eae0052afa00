package detect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// Explanation is one judged bucket of the stream an Engine explains
// (Engine.Explain): what its tests saw, to tell why a gap was opened or
// not (gapwatch backtest --explain). The tests' evidence is as the bucket's
// decisions saw it (a gap's opening bucket shows what crossed the
// threshold); State is after them.
type Explanation struct {
	Bucket   time.Time // bucket start
	Observed uint64
	// Expected is the profile's expectation (0 while learning); Judged what
	// the silence and drop tests judge against: lower in a young stream's
	// possible weekend, 0 where a learned idle period may begin early.
	Expected, Judged float64
	// Dispersion is the bucket's negative binomial dispersion a (variance
	// mu + a·mu²).
	Dispersion float64
	// State is as Expectation.State.
	State string
	// SilenceRun is the run of empty (or near-empty) buckets up to this
	// one (a silence opened at one of the bucket's early slots counts it
	// whole), SilenceLogP the log probability the silence test gives it (0
	// without a run, and while a gap is open); a silence opens below
	// SilenceThreshold.
	SilenceRun                    int
	SilenceLogP, SilenceThreshold float64
	// Drop50 and Drop75 are the evidence (nats) of the CUSUMs of "half
	// lost" and "three quarters lost", corrected for serially correlated
	// buckets (Drop50Raw and Drop75Raw before the correction); Rank that of
	// the burst-robust rank test; a drop opens above DropThreshold.
	// LowQuantile is the rank test's low quantile of count/expectation.
	Drop50, Drop75, Rank, DropThreshold float64
	Drop50Raw, Drop75Raw                float64
	LowQuantile                         float64
	// Late is the evidence (nats) of the lateness CUSUM (lateState) at the
	// bucket, before an opening resets it; a late gap opens above
	// LateThreshold.
	Late, LateThreshold float64
}

// Explain makes the next Advance calls return the Explanation of every
// judged bucket of the stream (tenant, source) in Result.Explanations.
// Not safe to call during Advance.
func (e *Engine) Explain(tenant, source string) {
	e.explain = &streamKey{tenant, source}
}

// explained reports whether st is the stream the engine explains.
func (s *shard) explained(st *stream) bool {
	k := s.e.explain
	return k != nil && st.tenant == k.tenant && st.source == k.source
}

// explain records bucket b of st as judged (shard.judge): its count x,
// expectation mu and dispersion a, its state after the decisions, and the
// silence run, drop and lateness tests' evidence at them (raw: the CUSUMs
// before the run correction).
func (s *shard) explain(st *stream, b int64, x, mu, a float64, state string, run int32, logP float64, drop, raw [2]float64, rank, late float64) {
	th := &s.e.th
	ex := Explanation{Bucket: time.Unix(b, 0).UTC(), Observed: uint64(x), State: state, Dispersion: a,
		SilenceRun: int(run), SilenceLogP: logP, SilenceThreshold: th.lnAlpha, Drop50: drop[0], Drop75: drop[1], Rank: rank,
		DropThreshold: th.hDrop, Drop50Raw: raw[0], Drop75Raw: raw[1], LowQuantile: float64(st.rank.q),
		Late: late, LateThreshold: th.h}
	if state != "learning" {
		ex.Expected, ex.Judged = mu, s.judged(st, b, mu)
	}
	s.expl = append(s.expl, ex)
}

// Bounds of one explanation (CheckExplain): the period it covers, and the
// buckets its replay reads and judges, history included (memory: a count
// and an Explanation each at most).
const (
	ExplainMaxPeriod  = 31 * 24 * time.Hour
	ExplainMaxBuckets = 2_000_000
)

// CheckExplain checks an explanation of [from, to) replayed from history
// before from, for buckets of width w: from before to, both multiples of w
// between 1970 and 2200, within ExplainMaxPeriod and ExplainMaxBuckets.
func CheckExplain(w time.Duration, from, to time.Time, history time.Duration) error {
	if err := storage.CheckTime("from", from); err != nil {
		return err
	}
	if err := storage.CheckTime("to", to); err != nil {
		return err
	}
	ws := int64(w / time.Second)
	switch {
	case ws <= 0:
		return fmt.Errorf("bucket width %s: want whole seconds", w)
	case !from.Before(to):
		return errors.New("from must be before to")
	case to.Sub(from) > ExplainMaxPeriod:
		return fmt.Errorf("from to to is %s, more than %s", to.Sub(from), ExplainMaxPeriod)
	case from.Unix()%ws != 0 || to.Unix()%ws != 0:
		return fmt.Errorf("from and to must be multiples of the bucket width (%s)", w)
	case history < 0:
		return errors.New("history must not be negative")
	case (to.Sub(from)+history)/w > ExplainMaxBuckets:
		return fmt.Errorf("history %s and the period make %d buckets to replay, more than %d", history, (to.Sub(from)+history)/w, ExplainMaxBuckets)
	}
	return nil
}

// CheckExplainTo checks that a period ending at to has every count stored:
// the ingest watermark wm (every record that arrived before it is counted)
// has passed to's bucket, for buckets of width w. Past it, counts not stored
// yet would read as empty, and the replay would judge a silence that is not.
func CheckExplainTo(w time.Duration, to, wm time.Time) error {
	end := time.Unix(storage.BucketStart(wm, w), 0).UTC()
	if to.After(end) {
		return fmt.Errorf("to %s is after the ingest watermark %s: counts not stored yet would read as empty; end the period at %s or before",
			to.UTC().Format(time.RFC3339), wm.UTC().Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return nil
}

// StreamCounter reads one stream's stored bucket counts, in bucket order
// (both stores implement it).
type StreamCounter interface {
	StreamBucketCounts(ctx context.Context, clock storage.Clock, tenant, source string, from, to time.Time) ([]storage.StreamCount, error)
}

// ErrNoCounts is StoredCounts finding none of the stream.
var ErrNoCounts = errors.New("no counts")

// StoredCounts reads the arrival counts of a stream that an explanation of a
// period ending at to replays, from history before from on (on the bucket
// grid of width w), as the detect role reads them (StreamCount.Count). An
// error wrapping ErrNoCounts says there are none.
func StoredCounts(ctx context.Context, r StreamCounter, w time.Duration, tenant, source string, from, to time.Time, history time.Duration) ([]storage.Count, error) {
	start := time.Unix(storage.BucketStart(from.Add(-history), w), 0).UTC()
	sc, err := r.StreamBucketCounts(ctx, storage.Arrival, tenant, source, start, to)
	if err != nil {
		return nil, err
	}
	if len(sc) == 0 {
		return nil, fmt.Errorf("%w of tenant %q and source %q from %s to %s", ErrNoCounts, tenant, source,
			start.Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	counts := make([]storage.Count, len(sc))
	for i := range sc {
		counts[i] = sc[i].Count(storage.Arrival)
	}
	return counts, nil
}

// ExplainStream replays one stream's counts (in bucket order, none at or
// after to) through a fresh engine of cfg, judging every bucket from the
// first count up to to, and returns the Explanation of each judged bucket in
// [from, to) and the gaps it opened that were detected in that period
// (gapwatch explain, GET /api/v1/explain). Streams are judged independently,
// so the replay decides as an engine holding every stream did from the same
// first count. cfg's workers and shards are ignored: the stream is judged
// whichever instance judges it live. The replay advances a day at a time,
// as a live catch-up does.
func ExplainStream(cfg Config, tenant, source string, counts []storage.Count, from, to time.Time) ([]Explanation, []Event, error) {
	cfg.Workers, cfg.Shard, cfg.Shards = 1, 0, 1
	e, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	e.SetExpectations(ExpectNone)
	e.Explain(tenant, source)
	if len(counts) == 0 {
		return nil, nil, nil
	}
	day := 86400 / e.width * e.width
	var xs []Explanation
	var opened []Event
	i := 0
	for at := e.bucketOf(counts[0].Bucket); at < to.Unix(); {
		next := min(at+day, to.Unix())
		j := i
		for j < len(counts) && counts[j].Bucket < next {
			j++
		}
		res := e.Advance(time.Unix(next, 0), counts[i:j])
		i, at = j, next
		for _, x := range res.Explanations {
			if !x.Bucket.Before(from) {
				xs = append(xs, x)
			}
		}
		for _, ev := range res.Events {
			if ev.Type == TypeGapOpened && !ev.DetectedAt.Before(from) {
				opened = append(opened, ev)
			}
		}
	}
	return xs, opened, nil
}
