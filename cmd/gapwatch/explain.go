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
	if *history == 0 {
		*history = cfg.Live().History
	}
	if err := detect.CheckExplain(cfg.Bucket, f, t, *history); err != nil {
		return usageError{err}
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
	start := storage.BucketStart(f.Add(-*history), cfg.Bucket)
	sc, err := st.StreamBucketCounts(ctx, storage.Arrival, *tenant, *source, time.Unix(start, 0), t)
	if err != nil {
		return err
	}
	if len(sc) == 0 {
		return usagef("no counts of tenant %q and source %q from %s to %s", *tenant, *source,
			time.Unix(start, 0).UTC().Format(time.RFC3339), t.Format(time.RFC3339))
	}

	counts := make([]storage.Count, len(sc))
	for i := range sc {
		counts[i] = sc[i].Count(storage.Arrival) // as the detect role reads them (live.Detector.counts)
	}
	xs, opened, err := detect.ExplainStream(cfg.Live().Engine, *tenant, *source, counts, f, t)
	if err != nil {
		return usageError{err}
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
	for _, x := range xs {
		if err := ex.write(x); err != nil {
			closeOut()
			return err
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
