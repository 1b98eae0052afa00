// Command gapwatch watches log streams in Kafka for coverage gaps.
//
//	gapwatch run [--role ingest,detect,api]   the pipeline (default: every role)
//	gapwatch migrate                  create or upgrade the ClickHouse schema
//	gapwatch demo                     all-in-one: embedded Kafka, in-memory store, simulated tenants
//	gapwatch simulate                 realistic multi-tenant log traffic into Kafka
//	gapwatch backtest                 offline detection over historical counts
//	gapwatch report                   coverage report of a tenant over a period
//	gapwatch explain                  why a stream did or did not page over a period
//	gapwatch check-config             print the effective configuration
//	gapwatch version
//
// Exit status: 0 on success, 1 on a runtime failure, 2 on bad usage or configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = ""

// usageError is a bad command line or configuration: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"run", "run the pipeline roles (ingest, detect, api; default all)", cmdRun},
	{"migrate", "create or upgrade the ClickHouse database and schema", cmdMigrate},
	{"demo", "all-in-one: embedded Kafka, in-memory store, simulated tenants, API", cmdDemo},
	{"simulate", "produce realistic multi-tenant log traffic into Kafka", cmdSimulate},
	{"check-config", "validate and print the effective configuration", cmdCheckConfig},
	{"version", "print the version", cmdVersion},
	{"backtest", "offline detection over historical counts (CSV time,tenant,source,count)", cmdBacktest},
	{"report", "coverage report of a tenant over a period (CSV, JSON or HTML)", cmdReport},
	{"explain", "why a stream did or did not page: its stored counts replayed, each bucket's evidence beside the thresholds (CSV)", cmdExplain},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "gapwatch: no command given (see gapwatch help)")
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout)
		switch {
		case err == nil || errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "gapwatch %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "gapwatch %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "gapwatch: unknown command %q (see gapwatch help)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gapwatch <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nConfiguration: --config FILE (default gapwatch.yaml if present), then GAPWATCH_* environment, then flags.")
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			return "dev-" + rev[:12] + dirty
		}
	}
	return "dev"
}

func cmdVersion(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("config", "", "accepted like every command's; the version does not depend on it")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	fmt.Fprintln(stdout, "gapwatch", versionString())
	return nil
}

// newLogger returns a text logger on stderr at GAPWATCH_LOG_LEVEL (debug, info, warn, error; default info).
func newLogger() *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("GAPWATCH_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
