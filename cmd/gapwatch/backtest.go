package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/storage"
)

// cmdBacktest runs detection offline over historical counts or raw events:
//
//	gapwatch backtest --input counts.csv --out alerts.jsonl [--step 5m]
//	gapwatch backtest --input events.jsonl --out alerts.jsonl [--step 1m] [--allowed-lateness 10m]
//	gapwatch backtest --input counts.csv --out alerts.jsonl --explain why.csv --explain-tenant T --explain-source S
//
// The input ("-" reads stdin; gzip-compressed or not) is either a CSV with
// the columns time,tenant,source,count in any order (names in any case; a
// UTF-8 BOM is skipped; time = bucket start, RFC 3339 or, read as UTC,
// `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`, fractional seconds
// truncated; count a whole number, 68 or 68.0 (as NAB's CSVs and pandas write
// them); rows in time order; the bucket width is inferred from the first
// buckets unless --step gives it) or JSON lines, each
// a Kafka message value as a shipper sends it (any format ingest reads: a
// JSON event or envelope, or, with --format jsonl, a syslog or CEF line),
// decoded as live ingest decodes it. The format is detected from the first
// character ('{' for JSON lines) unless --format names it. A file has no arrival times:
// events are counted by event time, which stands in for the arrival time live
// detection judges. The output ("-" for stdout) holds the alert CloudEvents,
// one JSON object per line, exactly as live detection publishes them for the
// same counts. Memory is bounded: the CSV is streamed bucket by bucket, and
// events are held only until --allowed-lateness past their bucket. --explain
// also writes one stream's judged buckets as CSV (explainWriter): what each
// test saw, to tell why a gap was or was not opened.
func cmdBacktest(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	input := fs.String("input", "", "counts CSV (columns time,tenant,source,count in any order; time RFC 3339 or UTC 'YYYY-MM-DD HH:MM:SS'; count whole, 68 or 68.0; rows in time order) or JSON lines of raw events (- for stdin)")
	out := fs.String("out", "", "file for the alert events, one JSON line each (- for stdout)")
	step := fs.Duration("step", 0, "bucket width (default: inferred from a CSV, 1m for JSON lines)")
	format := fs.String("format", "", "input format, csv or jsonl (default: detected, '{' starts JSON lines)")
	lateness := fs.Duration("allowed-lateness", 10*time.Minute,
		"JSON lines: how far an event's time may trail the newest seen before it is dropped (files have no arrival time: event time is used)")
	cfgPath := fs.String("config", "", "YAML configuration: its detect thresholds (false_alarms_per_week, resolve_after, retire_after, weekend_floor) apply")
	explainPath := fs.String("explain", "", "file for a CSV of one stream's judged buckets, what each test saw (- for stderr; with --explain-tenant and --explain-source)")
	explainTenant := fs.String("explain-tenant", "", "the tenant of the stream --explain explains")
	explainSource := fs.String("explain-source", "", "the source of the stream --explain explains")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return err
		}
		return usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected arguments %q", fs.Args())
	case *input == "" || *out == "":
		return usagef("--input and --out are required")
	case *step < 0 || *step%time.Second != 0:
		return usagef("--step must be a positive whole number of seconds, got %s", *step)
	case *format != "" && *format != "csv" && *format != "jsonl":
		return usagef("--format must be csv or jsonl, got %q", *format)
	case *lateness < 0:
		return usagef("--allowed-lateness must not be negative, got %s", *lateness)
	case (*explainPath != "" || *explainTenant != "" || *explainSource != "") && (*explainPath == "" || *explainTenant == "" || *explainSource == ""):
		return usagef("--explain, --explain-tenant and --explain-source go together")
	case *explainPath != "" && *explainPath == *out && *out != "-":
		return usagef("--explain and --out must be different files")
	}

	var loaded *config.Config
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath, os.Getenv)
		if err != nil {
			return usageError{err}
		}
		loaded = &c
	}

	var in io.Reader = os.Stdin
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return usageError{fmt.Errorf("opening the input: %w", err)}
		}
		defer f.Close()
		in = f
	}
	br, err := gunzipped(bufio.NewReaderSize(in, 1<<16))
	if err != nil {
		return usageError{fmt.Errorf("reading the gzip input: %w", err)}
	}
	if *format == "" {
		*format = sniffFormat(br)
	}

	var (
		cfg     detect.Config
		next    func() ([]storage.Count, error)
		summary func(alerts int) string
		jl      *jsonLines
	)
	if *format == "csv" {
		src, err := detect.NewCSVCounts(br, *step)
		if err != nil {
			return usageError{err}
		}
		cfg = detect.Config{Bucket: src.Step(), Phase: src.Phase()}
		next = src.Next
		summary = func(alerts int) string {
			return fmt.Sprintf("backtest: %d counts, %d alert events written to %s", src.Rows(), alerts, *out)
		}
	} else {
		if *step == 0 {
			*step = time.Minute
		}
		var err error
		if jl, err = newJSONLines(br, *step, *lateness); err != nil {
			return usageError{err}
		}
		cfg = detect.Config{Bucket: *step}
		next = jl.next
		summary = func(alerts int) string { return jl.summary(alerts, *out, *lateness) }
	}
	if cfg.Bucket == 0 {
		cfg.Bucket = time.Minute // no rows: nothing to judge
	}
	if loaded != nil {
		d := loaded.Detect
		cfg.FalseAlarmsPerWeek, cfg.ResolveAfter, cfg.RetireAfter, cfg.WeekendFloor = d.FalseAlarmsPerWeek, d.ResolveAfter, d.RetireAfter, d.WeekendFloor
	}

	w, closeOut := stdout, func() error { return nil }
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("creating the output: %w", err)
		}
		w, closeOut = f, f.Close
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var line []byte
	n := 0
	emit := func(ev detect.Event) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		line = ev.AppendLine(line[:0])
		n++
		_, err := bw.Write(line)
		return err
	}
	var ex *explainWriter
	if *explainPath == "" {
		err = detect.BacktestBuckets(cfg, next, emit)
	} else {
		if ex, err = newExplainWriter(*explainPath); err != nil {
			closeOut()
			return err
		}
		err = detect.BacktestExplained(cfg, next, emit, detect.Explainer{Tenant: *explainTenant, Source: *explainSource, Explain: ex.write})
		if cerr := ex.close(); err == nil {
			err = cerr
		}
		if err == nil && ex.rows == 0 {
			err = fmt.Errorf("%w: --explain: no stream with tenant %q and source %q in the input", detect.ErrBadInput, *explainTenant, *explainSource)
		}
	}
	if err == nil && jl != nil && jl.counter.Events == 0 {
		err = fmt.Errorf("%w: no usable event in %d lines (%s)", detect.ErrBadInput, jl.lines, jl.rejectedText())
	}
	if errors.Is(err, detect.ErrBadInput) {
		closeOut()
		return usageError{err}
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := closeOut(); err == nil && cerr != nil {
		err = fmt.Errorf("closing the output: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("backtest: %w", err)
	}
	msg := stdout
	if *out == "-" {
		msg = os.Stderr // stdout holds the alerts
	}
	if *out != "-" || jl != nil {
		fmt.Fprintln(msg, summary(n))
	}
	if ex != nil && *explainPath != "-" {
		fmt.Fprintf(msg, "backtest: %d judged buckets of %q/%q explained in %s\n", ex.rows, *explainTenant, *explainSource, *explainPath)
	}
	return nil
}

// explainWriter writes the CSV of backtest --explain: one row per judged
// bucket of the stream (detect.Explanation).
type explainWriter struct {
	w     *bufio.Writer
	close func() error
	rows  int
	line  []byte
}

// explainHeader names explainWriter's columns.
const explainHeader = "bucket,observed,expected,judged,dispersion,state,silence_run,silence_logp,silence_threshold,drop50,drop75,rank,drop_threshold,drop50_raw,drop75_raw,low_quantile,late,late_threshold\n"

func newExplainWriter(path string) (*explainWriter, error) {
	if path == "-" {
		return newExplainTo(os.Stderr), nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the explanation: %w", err)
	}
	ex := newExplainTo(f)
	flush := ex.close
	ex.close = func() error {
		err := flush()
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing the explanation: %w", cerr)
		}
		return err
	}
	return ex, nil
}

// newExplainTo returns an explainWriter to w, its header buffered; close
// flushes it.
func newExplainTo(w io.Writer) *explainWriter {
	ex := &explainWriter{w: bufio.NewWriterSize(w, 1<<16)}
	ex.close = func() error {
		if err := ex.w.Flush(); err != nil {
			return fmt.Errorf("writing the explanation: %w", err)
		}
		return nil
	}
	ex.w.WriteString(explainHeader) // into the buffer: its error is Flush's
	return ex
}

func (ex *explainWriter) write(x detect.Explanation) error {
	b := x.Bucket.AppendFormat(ex.line[:0], time.RFC3339)
	b = append(b, ',')
	b = strconv.AppendUint(b, x.Observed, 10)
	for _, v := range []float64{x.Expected, x.Judged, x.Dispersion} {
		b = append(b, ',')
		b = strconv.AppendFloat(b, v, 'g', 6, 64)
	}
	b = append(b, ',')
	b = append(b, x.State...)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(x.SilenceRun), 10)
	for _, v := range []float64{x.SilenceLogP, x.SilenceThreshold, x.Drop50, x.Drop75, x.Rank, x.DropThreshold, x.Drop50Raw, x.Drop75Raw, x.LowQuantile, x.Late, x.LateThreshold} {
		b = append(b, ',')
		b = strconv.AppendFloat(b, v, 'g', 6, 64)
	}
	b = append(b, '\n')
	ex.line = b
	ex.rows++
	_, err := ex.w.Write(b)
	return err
}

// gunzipped returns a reader of br's decompressed bytes if br starts with
// gzip's magic number, else br.
func gunzipped(br *bufio.Reader) (*bufio.Reader, error) {
	if b, _ := br.Peek(2); len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return br, nil
	}
	z, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	return bufio.NewReaderSize(z, 1<<16), nil
}

// sniffFormat returns "jsonl" if the input's first non-blank byte is '{',
// else "csv".
func sniffFormat(br *bufio.Reader) string {
	for size := 512; ; size *= 2 {
		b, err := br.Peek(size)
		if i := bytes.IndexFunc(b, func(r rune) bool { return !strings.ContainsRune(" \t\r\n\ufeff", r) }); i >= 0 {
			if b[i] == '{' {
				return "jsonl"
			}
			return "csv"
		}
		if err != nil || size >= br.Size() {
			return "csv"
		}
	}
}

// jsonLines reads JSON lines of raw events, decodes each line as live ingest
// decodes a Kafka message value, and counts the events into buckets.
type jsonLines struct {
	br       *bufio.Reader
	dec      *decode.Decoder
	limit    int
	buf      []byte
	eof      bool
	counter  *detect.EventCounts
	lines    int
	lateLine int
	rejected map[decode.Reason]int
	// last is the latest event time read: a syslog RFC 3164 line, whose time
	// has no year, is placed in the year nearest it (the input is history,
	// not now).
	last time.Time
}

func newJSONLines(br *bufio.Reader, step, lateness time.Duration) (*jsonLines, error) {
	fc := decode.FieldConfig{}.WithDefaults()
	dec, err := decode.New(fc)
	if err != nil {
		return nil, err
	}
	counter, err := detect.NewEventCounts(step, lateness)
	if err != nil {
		return nil, err
	}
	return &jsonLines{br: br, dec: dec, limit: fc.MaxMessageBytes, counter: counter, rejected: map[decode.Reason]int{}}, nil
}

// next returns the next closed bucket's counts, reading lines as needed.
func (j *jsonLines) next() ([]storage.Count, error) {
	for {
		if cs, ok := j.counter.Next(j.eof); ok || j.eof {
			if !ok {
				return nil, io.EOF
			}
			return cs, nil
		}
		if err := j.readLine(); err != nil {
			return nil, err
		}
	}
}

// readLine decodes one line (a longer one than the decoder's limit is passed
// on cut, and rejected as oversized), or sets j.eof.
func (j *jsonLines) readLine() error {
	j.buf = j.buf[:0]
	for {
		frag, err := j.br.ReadSlice('\n')
		if room := j.limit + 1 - len(j.buf); room > 0 {
			j.buf = append(j.buf, frag[:min(len(frag), room)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			j.eof = true
		} else if err != nil {
			return fmt.Errorf("reading the input: %w", err)
		}
		break
	}
	v := bytes.TrimSpace(j.buf)
	if len(v) == 0 {
		return nil
	}
	j.lines++
	late := false
	j.dec.DecodeAt(v, j.last, func(ev decode.Event) {
		if ev.Time.After(j.last) {
			j.last = ev.Time
		}
		if !j.counter.Add(ev.Tenant, ev.Source, ev.Time) {
			late = true
		}
	}, func(r decode.Reason, _ string) { j.rejected[r]++ })
	if late {
		j.lateLine++
	}
	return nil
}

func (j *jsonLines) rejectedText() string {
	if len(j.rejected) == 0 {
		return "none rejected"
	}
	var parts []string
	total := 0
	for r, n := range j.rejected {
		parts = append(parts, fmt.Sprintf("%s=%d", r, n))
		total += n
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d rejected: %s", total, strings.Join(parts, " "))
}

func (j *jsonLines) summary(alerts int, out string, lateness time.Duration) string {
	return fmt.Sprintf("backtest: %d lines, %d events counted, %s, %d events in %d lines older than --allowed-lateness %s dropped; %d alert events written to %s",
		j.lines, j.counter.Events, j.rejectedText(), j.counter.Late, j.lateLine, lateness, alerts, out)
}
