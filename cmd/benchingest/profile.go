package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/ingest"
)

// profileInProcess runs the ingest role inside this process, configured exactly
// as the binary would be by the same environment, under the CPU profiler.
func profileInProcess(ctx context.Context, o options, ch driver.Conn, tmp, topic, group string, ends map[int32]int64, w *workload) (result, error) {
	s, db, drop, err := freshStore(ctx, o)
	if err != nil {
		return result{}, err
	}
	defer drop()
	env := map[string]string{}
	for _, kv := range childEnv(o, topic, group, db) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	empty := filepath.Join(tmp, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return result{}, err
	}
	cfg, err := config.Load(empty, func(k string) string { return env[k] })
	if err != nil {
		return result{}, err
	}
	f, err := os.Create(o.cpuprofile)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	// Warnings while measuring; once measured, the store is dropped under the
	// shutting-down ingester, whose complaints are then noise.
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	defer level.Set(slog.LevelError + 100)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	in, err := ingest.New(cfg.Ingest, ingest.Deps{Sink: s, Log: log})
	if err != nil {
		return result{}, err
	}
	if o.mutexprof != "" {
		runtime.SetMutexProfileFraction(5)
		defer runtime.SetMutexProfileFraction(0)
	}
	stopHeap := func() error { return nil }
	if o.memprofile != "" {
		stopHeap = peakHeapProfile(o.memprofile)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return result{}, err
	}
	if o.traceOut != "" {
		tf, err := os.Create(o.traceOut)
		if err != nil {
			return result{}, err
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			return result{}, err
		}
		defer trace.Stop()
	}
	s0 := snapCPU()
	began := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var runErr error
	go func() { runErr = in.Run(rctx); close(done) }()
	_, err = waitStored(ctx, o, s, topic, ends, began, done)
	secs := time.Since(began).Seconds()
	s1 := snapCPU()
	pprof.StopCPUProfile()
	if herr := stopHeap(); herr != nil && err == nil {
		err = herr
	}
	if o.mutexprof != "" && err == nil {
		err = writeProfile("mutex", o.mutexprof)
	}
	cancel()
	<-done
	if err != nil {
		return result{}, fmt.Errorf("%w (run: %v)", err, runErr)
	}
	rows, err := verify(ctx, ch, db, w)
	if err != nil {
		return result{}, err
	}
	cpu := s1.self - s0.self // the harness's polling included
	return result{seconds: secs, cpuSeconds: cpu, load: since(s0, s1, cpu), rows: rows}, nil
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// peakHeapProfile keeps, every 200 ms, the heap profile taken when the live heap
// (as of the last GC) was largest; the returned func writes it to path.
func peakHeapProfile(path string) func() error {
	stop, done := make(chan struct{}), make(chan struct{})
	var best []byte
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		var top uint64
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > top && ms.NumGC > 0 {
				top = ms.HeapAlloc
				var buf bytes.Buffer
				if pprof.Lookup("heap").WriteTo(&buf, 0) == nil {
					best = buf.Bytes()
				}
			}
		}
	}()
	return func() error {
		close(stop)
		<-done
		return os.WriteFile(path, best, 0o644)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
