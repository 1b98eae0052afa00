package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// cmdExplain answers "why did this stream (not) page?" for a period of live
// detection: it replays the stream's stored arrival counts from --history
// before --from through a fresh engine with the configured detector
// settings, as the detect role's warm start does (detect.ExplainStream), and
// writes the judged buckets of [--from, --to) as backtest --explain does
// (explainWriter), with the gaps the replay opened in the period on stderr.
// With --api the replay runs in a gapwatch API (GET /api/v1/explain), with
// that process's settings and store (the demo's memory store too).
//
// The replay is the stream's alone: streams are judged independently, so it
// decides as the live engine did when that engine's history began where the
// replay's does (a restart warms up from the same history). A live engine
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
	apiURL := fs.String("api", "", "replay in this gapwatch API (e.g. http://127.0.0.1:8080) instead of reading ClickHouse; a token in GAPWATCH_API_TOKEN is sent")
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
	var x explained
	if *apiURL != "" {
		if *history != 0 {
			return usagef("--history: the API replays with its own detect.history")
		}
		x, err = fetchExplain(ctx, *apiURL, os.Getenv("GAPWATCH_API_TOKEN"), *tenant, *source, f, t)
	} else {
		x, err = storeExplain(ctx, cfg, *history, *tenant, *source, f, t)
	}
	if err != nil {
		return err
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
	for _, b := range x.buckets {
		if err := ex.write(b); err != nil {
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
	fmt.Fprintf(msg, "explain: %d judged buckets of %q/%q from %s to %s (replayed from its first count, at %s)\n",
		ex.rows, *tenant, *source, f.Format(time.RFC3339), t.Format(time.RFC3339), x.replayedFrom.Format(time.RFC3339))
	for _, o := range x.opened {
		fmt.Fprintf(msg, "explain: %s opened: started %s, detected %s, %.0f of %.0f expected events missing\n",
			o.Kind, o.StartedAt, o.DetectedAt, o.Missing, o.Expected)
	}
	return nil
}

// explained is one explanation, from either path.
type explained struct {
	replayedFrom time.Time
	buckets      []detect.Explanation
	opened       []api.ExplainOpening
}

// storeExplain replays the stream's counts read from ClickHouse.
func storeExplain(ctx context.Context, cfg config.Config, history time.Duration, tenant, source string, f, t time.Time) (explained, error) {
	if history == 0 {
		history = cfg.Live().History
	}
	if err := detect.CheckExplain(cfg.Bucket, f, t, history); err != nil {
		return explained{}, usageError{err}
	}
	if cfg.Store == "memory" {
		return explained{}, usagef("the memory store lives inside its process: use --api with that process's address (e.g. the demo's)")
	}
	st, err := chstore.Open(ctx, cfg.ClickHouse, newLogger())
	if err != nil {
		return explained{}, err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return explained{}, err
	}
	// The ingest watermark over the input partitions with progress stored
	// (the detect role lists them from Kafka; this reads ClickHouse only).
	offsets, parts := readOffsets{}, map[string][]int32{}
	for _, topic := range cfg.Ingest.Topics {
		stored, err := st.Offsets(ctx, topic)
		if err != nil {
			return explained{}, err
		}
		offsets[topic] = stored
		for p := range stored {
			parts[topic] = append(parts[topic], p)
		}
	}
	if wm, unknown, err := storage.IngestWatermark(ctx, offsets, cfg.Ingest.Topics, parts); err != nil {
		return explained{}, err
	} else if unknown == "" {
		if err := detect.CheckExplainTo(cfg.Bucket, t, wm); err != nil {
			return explained{}, usageError{err}
		}
	}
	counts, err := detect.StoredCounts(ctx, st, cfg.Bucket, tenant, source, f, t, history)
	if errors.Is(err, detect.ErrNoCounts) {
		return explained{}, usageError{err}
	}
	if err != nil {
		return explained{}, err
	}
	xs, opened, err := detect.ExplainStream(cfg.Live().Engine, tenant, source, counts, f, t)
	if err != nil {
		return explained{}, usageError{err}
	}
	x := explained{replayedFrom: time.Unix(counts[0].Bucket, 0).UTC(), buckets: xs}
	for _, ev := range opened {
		x.opened = append(x.opened, api.ExplainOpening{Kind: string(ev.Kind), StartedAt: ev.StartedAt.UTC().Format(time.RFC3339),
			DetectedAt: ev.DetectedAt.UTC().Format(time.RFC3339), Expected: ev.Expected, Missing: ev.Missing})
	}
	return x, nil
}

// readOffsets are topics' stored offsets already read, as a
// storage.OffsetReader.
type readOffsets map[string]map[int32]storage.Offset

func (o readOffsets) Offsets(_ context.Context, topic string) (map[int32]storage.Offset, error) {
	return o[topic], nil
}

// fetchExplain reads the explanation from a gapwatch API's /api/v1/explain.
func fetchExplain(ctx context.Context, base, token, tenant, source string, f, t time.Time) (explained, error) {
	var r api.ExplainResponse
	v := url.Values{"tenant": {tenant}, "source": {source}, "from": {f.Format(time.RFC3339)}, "to": {t.Format(time.RFC3339)}}
	if err := apiGet(ctx, base, "/api/v1/explain", v, token, 10*time.Minute, "the explanation", &r); err != nil {
		return explained{}, err
	}
	if r.Tenant != tenant || r.Source != source {
		return explained{}, fmt.Errorf("the API answered for another stream (%q/%q)", r.Tenant, r.Source)
	}
	from, err := time.Parse(time.RFC3339, r.ReplayedFrom)
	if err != nil {
		return explained{}, fmt.Errorf("reading the explanation from %s: replayed_from: %w", base, err)
	}
	x := explained{replayedFrom: from.UTC(), opened: r.Opened, buckets: make([]detect.Explanation, len(r.Buckets))}
	for i, b := range r.Buckets {
		if x.buckets[i], err = b.Explanation(); err != nil {
			return explained{}, fmt.Errorf("reading the explanation from %s: %w", base, err)
		}
	}
	return x, nil
}
