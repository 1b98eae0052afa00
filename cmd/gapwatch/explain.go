package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// maxExplainRange bounds the period one explanation covers (its rows; the
// replay before it is bounded by --history).
const maxExplainRange = 31 * 24 * time.Hour

// maxExplainBuckets bounds the buckets one replay reads and judges (memory:
// a stored count each).
const maxExplainBuckets = 2_000_000

// cmdExplain answers "why did this stream (not) page?" for a period of live
// detection: it replays the stream's stored arrival counts from --history
// before --from through a fresh engine with the configured detector
// settings, as the detect role's warm start does, and writes the judged
// buckets of [--from, --to) as backtest --explain does (explainWriter), with
// the gaps the replay opened in the period on stderr.
//
// The replay is the stream's alone: streams are judged independently, so it
// decides as the live engine did when that engine's history began where the
// replay's does (a restart warms up from the same --history). A live engine
// that has run for longer may hold state the replay has not rebuilt (the
// hour-of-week correction learns for weeks).
func cmdExplain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "the stream's tenant (required)")
	source := fs.String("source", "", "the stream's source (required)")
	from := fs.String("from", "", "start of the period explained, inclusive: RFC 3339 or YYYY-MM-DD (UTC) (required)")
	to := fs.String("to", "", "end of the period, exclusive: RFC 3339 or YYYY-MM-DD (UTC) (required)")
	history := fs.Duration("history", 0, "counts replayed before --from (default: the detect role's history, detect.history)")
	out := fs.String("out", "-", "file for the CSV (- for stdout)")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if *tenant == "" || *source == "" {
		return usagef("--tenant and --source are required")
	}
	f, err := parseReportTime("from", *from)
	if err != nil {
		return err
	}
	t, err := parseReportTime("to", *to)
	if err != nil {
		return err
	}
	bucket := cfg.Bucket
	switch {
	case !f.Before(t):
		return usagef("--from must be before --to")
	case t.Sub(f) > maxExplainRange:
		return usagef("--from to --to is %s, more than %s", t.Sub(f), maxExplainRange)
	case f.Unix()%int64(bucket/time.Second) != 0 || t.Unix()%int64(bucket/time.Second) != 0:
		return usagef("--from and --to must be multiples of the bucket width (%s)", bucket)
	case *history < 0:
		return usagef("--history must not be negative")
	}
	if *history == 0 {
		*history = cfg.Live().History
	}
	if n := (t.Sub(f) + *history) / bucket; n > maxExplainBuckets {
		return usagef("--history %s and the period make %d buckets to replay, more than %d", *history, n, maxExplainBuckets)
	}
	if cfg.Store == "memory" {
		return usagef("the memory store lives inside its process: explain reads ClickHouse (set GAPWATCH_STORE=clickhouse)")
	}
	st, err := chstore.Open(ctx, cfg.ClickHouse, newLogger())
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	start := storage.BucketStart(f.Add(-*history), bucket)
	sc, err := st.StreamBucketCounts(ctx, storage.Arrival, *tenant, *source, time.Unix(start, 0), t)
	if err != nil {
		return err
	}
	if len(sc) == 0 {
		return usagef("no counts of tenant %q and source %q from %s to %s", *tenant, *source,
			time.Unix(start, 0).UTC().Format(time.RFC3339), t.Format(time.RFC3339))
	}

	ecfg := cfg.Live().Engine
	ecfg.Workers, ecfg.Shard, ecfg.Shards = 1, 0, 1 // the one stream, whichever instance judges it live
	e, err := detect.New(ecfg)
	if err != nil {
		return usageError{err}
	}
	e.SetExpectations(detect.ExpectNone)
	e.Explain(*tenant, *source)
	counts := make([]storage.Count, len(sc))
	for i := range sc {
		c := &sc[i]
		counts[i] = storage.Count{Tenant: c.Tenant, Source: c.Source, Clock: storage.Arrival, Bucket: c.Bucket, Events: c.Events,
			Lateness: c.Lateness[:], Arrival: c.First} // as the detect role reads them (live.Detector.counts)
	}

	w, closeOut := io.Writer(stdout), func() error { return nil }
	if *out != "-" {
		file, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("creating the explanation: %w", err)
		}
		w, closeOut = file, file.Close
	}
	ex := newExplainTo(w)
	var opened []detect.Event
	// In steps of a day, as the warm start replays in bounded steps: the
	// engine judges every bucket up to each step's end, the empty ones
	// after the stream's last count too.
	day := int64(86400 / int64(bucket/time.Second) * int64(bucket/time.Second))
	i := 0
	for at := start; at < t.Unix(); {
		next := min(at+day, t.Unix())
		j := i
		for j < len(counts) && counts[j].Bucket < next {
			j++
		}
		res := e.Advance(time.Unix(next, 0), counts[i:j])
		i, at = j, next
		for _, x := range res.Explanations {
			if !x.Bucket.Before(f) {
				if err := ex.write(x); err != nil {
					closeOut()
					return err
				}
			}
		}
		for _, ev := range res.Events {
			if ev.Type == detect.TypeGapOpened && !ev.DetectedAt.Before(f) {
				opened = append(opened, ev)
			}
		}
	}
	err = ex.close()
	if cerr := closeOut(); err == nil && cerr != nil {
		err = fmt.Errorf("closing the explanation: %w", cerr)
	}
	if err != nil {
		return err
	}
	msg := io.Writer(os.Stderr)
	if *out != "-" {
		msg = stdout
	}
	fmt.Fprintf(msg, "explain: %d judged buckets of %q/%q from %s to %s (replayed from its first count since %s, at %s; %d buckets with counts)\n",
		ex.rows, *tenant, *source, f.Format(time.RFC3339), t.Format(time.RFC3339), time.Unix(start, 0).UTC().Format(time.RFC3339),
		time.Unix(counts[0].Bucket, 0).UTC().Format(time.RFC3339), len(counts))
	for _, ev := range opened {
		fmt.Fprintf(msg, "explain: %s opened: started %s, detected %s, %.0f of %.0f expected events missing\n",
			ev.Kind, ev.StartedAt.Format(time.RFC3339), ev.DetectedAt.Format(time.RFC3339), ev.Missing, ev.Expected)
	}
	return nil
}
