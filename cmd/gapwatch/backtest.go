package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gapwatch/gapwatch/detect"
)

// cmdBacktest runs detection offline over historical counts:
//
//	gapwatch backtest --input counts.csv --out alerts.jsonl [--step 5m]
//
// The input is the CSV `time,tenant,source,count` (time = bucket start, RFC
// 3339; "-" reads stdin); the bucket width is inferred from the data unless
// --step gives it. The output ("-" for stdout) holds the alert CloudEvents,
// one JSON object per line, exactly as live detection publishes them.
func cmdBacktest(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	input := fs.String("input", "", "CSV of counts: time,tenant,source,count (- for stdin)")
	out := fs.String("out", "", "file for the alert events, one JSON line each (- for stdout)")
	step := fs.Duration("step", 0, "bucket width (default: inferred from the data)")
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
	counts, err := detect.ReadCountsCSV(bufio.NewReaderSize(in, 1<<16))
	if err != nil {
		return usageError{err}
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
	err = detect.Backtest(counts, detect.Config{Bucket: *step}, func(ev detect.Event) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		line = ev.AppendLine(line[:0])
		n++
		_, err := bw.Write(line)
		return err
	})
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
	if *out != "-" {
		fmt.Fprintf(stdout, "backtest: %d counts, %d alert events written to %s\n", len(counts), n, *out)
	}
	return nil
}
