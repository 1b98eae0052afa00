package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/gapwatch/gapwatch/storage/chstore"
)

func openClickHouse(ctx context.Context, addr string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: "default", Username: envOr("GAPWATCH_CLICKHOUSE_USER", "default"), Password: os.Getenv("GAPWATCH_CLICKHOUSE_PASSWORD")},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 5 * time.Minute,
	})
	if err == nil {
		err = conn.Ping(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("ClickHouse at %s is not answering (make services): %w", addr, err)
	}
	return conn, nil
}

// freshStore creates and migrates a new database; drop drops it.
func freshStore(ctx context.Context, o options) (s *chstore.Store, db string, drop func(), err error) {
	db = unique("gapwatch_bench_")
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := chstore.Config{Addr: o.chAddr, Database: db, User: os.Getenv("GAPWATCH_CLICKHOUSE_USER"), Password: os.Getenv("GAPWATCH_CLICKHOUSE_PASSWORD")}
	s, err = chstore.Open(ctx, cfg, quiet)
	if err != nil {
		return nil, "", nil, err
	}
	drop = func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Exec(dctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			fmt.Fprintf(os.Stderr, "benchingest: dropping database %s: %v\n", db, err)
		}
		s.Close()
	}
	if _, err := s.Migrate(ctx); err != nil {
		drop()
		return nil, "", nil, fmt.Errorf("migrating %s: %w", db, err)
	}
	return s, db, drop, nil
}

// childEnv is the environment of the gapwatch child: ours without GAPWATCH_*
// settings (credentials aside), plus the benchmark's.
func childEnv(o options, topic, group, db string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GAPWATCH_") && name != "GAPWATCH_CLICKHOUSE_USER" && name != "GAPWATCH_CLICKHOUSE_PASSWORD" {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env,
		"GAPWATCH_KAFKA_BROKERS="+strings.Join(o.brokers, ","),
		"GAPWATCH_INPUT_TOPICS="+topic,
		"GAPWATCH_GROUP="+group,
		"GAPWATCH_STORE=clickhouse",
		"GAPWATCH_CLICKHOUSE_ADDR="+o.chAddr,
		"GAPWATCH_CLICKHOUSE_DATABASE="+db,
		"GAPWATCH_HTTP_ADDR=127.0.0.1:0",
		"GAPWATCH_LOG_LEVEL="+o.logLevel,
	), o.childEnv...)
}

// waitStored polls the stored offsets every 100 ms until they reach ends on
// every partition, and returns when the first progress was stored. exited
// reports a child that ended early.
func waitStored(ctx context.Context, o options, s *chstore.Store, topic string, ends map[int32]int64, began time.Time, exited <-chan struct{}) (firstWrite float64, err error) {
	firstWrite = -1
	var total, lastShown int64
	for _, e := range ends {
		total += e
	}
	// Every 100 ms, and every 10 ms once 90 % is stored: the run's end is
	// seen within 10 ms (kcat's is its exit), for a query per poll.
	poll := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return firstWrite, fmt.Errorf("stored offsets did not reach the end of %s in time: %w", topic, ctx.Err())
		case <-exited:
			return firstWrite, errors.New("gapwatch exited before storing everything")
		case <-time.After(poll):
		}
		stored, err := s.Offsets(ctx, topic)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return firstWrite, err
		}
		if firstWrite < 0 && len(stored) > 0 {
			firstWrite = time.Since(began).Seconds()
		}
		var sum int64
		for _, st := range stored {
			sum += st.Next
		}
		if o.verbose && sum != lastShown {
			progress(o, "  %6.2f s: %d of %d messages stored", time.Since(began).Seconds(), sum, total)
			lastShown = sum
		}
		if 10*sum >= 9*total {
			poll = 10 * time.Millisecond
		}
		done := true
		for p, end := range ends {
			next := stored[p].Next
			if next > end {
				return firstWrite, fmt.Errorf("partition %d: stored offset %d beyond the end %d", p, next, end)
			}
			done = done && next == end
		}
		if done {
			return firstWrite, nil
		}
	}
}

func timeGapwatch(ctx context.Context, o options, ch driver.Conn, bin, tmp, topic, group string, ends map[int32]int64, w *workload, run string) (result, error) {
	s, db, drop, err := freshStore(ctx, o)
	if err != nil {
		return result{}, err
	}
	defer drop()
	logPath := filepath.Join(cmp.Or(o.logDir, tmp), "gapwatch-"+run+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return result{}, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--role", "ingest")
	cmd.Env = childEnv(o, topic, group, db)
	cmd.Dir = tmp // no stray gapwatch.yaml
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	s0 := snapCPU()
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stopChild := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		return lastLines(string(b), 15)
	}

	// RSS sampler.
	var mu sync.Mutex
	var peak float64
	sampleDone := make(chan struct{})
	sampleStop := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := procStatus(pid); err == nil {
				mu.Lock()
				peak = max(peak, rss)
				mu.Unlock()
			}
			select {
			case <-sampleStop:
				return
			case <-t.C:
			}
		}
	}()

	firstWrite, err := waitStored(ctx, o, s, topic, ends, began, exited)
	secs := time.Since(began).Seconds()
	close(sampleStop)
	<-sampleDone
	if err != nil {
		stopChild()
		return result{}, fmt.Errorf("%w (exit: %v); log tail:\n%s", err, waitErr, tail())
	}
	_, hwm, _ := procStatus(pid)
	cpu, _ := procCPU(pid)
	s1 := snapCPU()
	stopChild()
	if waitErr != nil {
		return result{}, fmt.Errorf("gapwatch did not stop cleanly on SIGTERM: %v; log tail:\n%s", waitErr, tail())
	}
	rows, err := verify(ctx, ch, db, w)
	if err != nil {
		return result{}, fmt.Errorf("%w; log tail:\n%s", err, tail())
	}
	rc, err := timeRollup(ctx, s)
	if err != nil {
		return result{}, err
	}
	return result{seconds: secs, cpuSeconds: cpu, rssPeakMB: max(peak, hwm), firstWrite: firstWrite, load: since(s0, s1, cpu), rows: rows, rollup: rc}, nil
}

// timeRollup rolls up the stored counts as the ingest role does once their
// write day is over, and times it.
func timeRollup(ctx context.Context, s *chstore.Store) (rollupCost, error) {
	c0 := snapCPU()
	began := time.Now()
	if _, err := s.Rollup(ctx, time.Now().Add(48*time.Hour)); err != nil {
		return rollupCost{}, fmt.Errorf("rolling up the run's counts: %w", err)
	}
	return rollupCost{seconds: time.Since(began).Seconds(), chCPU: snapCPU().ch - c0.ch}, nil
}

// verify checks that db holds exactly the produced events on both clocks, for every stream.
func verify(ctx context.Context, ch driver.Conn, db string, w *workload) (rows uint64, err error) {
	var arrival, event, streams uint64
	q := "SELECT toUInt64(sumIf(events, clock = 0)), toUInt64(sumIf(events, clock = 1)), toUInt64(uniqExact(tenant, source)), toUInt64(count()) FROM `" + db + "`.counts WHERE tenant != ''"
	if err := ch.QueryRow(ctx, q).Scan(&arrival, &event, &streams, &rows); err != nil {
		return 0, fmt.Errorf("reading the stored counts: %w", err)
	}
	if arrival != uint64(w.events) || event != uint64(w.events) || streams != uint64(w.streams) {
		return rows, fmt.Errorf("NOT EXACT: stored %d events on the arrival clock, %d on the event clock, %d streams; produced %d events of %d streams",
			arrival, event, streams, w.events, w.streams)
	}
	return rows, nil
}
