package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// lineCounter counts the bytes and newlines kcat writes (one value and a
// newline per message; simulated values hold no newline).
type lineCounter struct{ bytes, lines int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.bytes += int64(len(p))
	c.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

func kcatCommand(ctx context.Context, o options, topic string) (*exec.Cmd, error) {
	path, err := exec.LookPath(o.kcat)
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, path, "-C", "-b", strings.Join(o.brokers, ","), "-t", topic, "-o", "beginning", "-e", "-q"), nil
}

// checkKcat runs kcat once through a pipe into a counter, untimed for the
// ratio, and checks that it delivers every message and byte: the timed runs
// write to /dev/null and are only checked for a clean exit at the end of
// every partition (-e). It returns the seconds this pass took.
func checkKcat(ctx context.Context, o options, topic string, msgs, valueBytes int64) (float64, error) {
	cmd, err := kcatCommand(ctx, o, topic)
	if err != nil {
		return 0, err
	}
	var count lineCounter
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &count, &stderr // os/exec copies the pipe into count
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v: %s", cmd, err, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	secs := time.Since(began).Seconds()
	if count.lines != msgs || count.bytes-count.lines != valueBytes {
		return 0, fmt.Errorf("kcat delivered %d messages (%d bytes), want %d (%d bytes): %s",
			count.lines, count.bytes-count.lines, msgs, valueBytes, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	return secs, nil
}

// timeKcat times kcat reading the whole topic from the beginning to the end of
// every partition, its output (each value and a newline) going to /dev/null.
func timeKcat(ctx context.Context, o options, topic string) (result, error) {
	cmd, err := kcatCommand(ctx, o, topic)
	if err != nil {
		return result{}, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return result{}, err
	}
	defer null.Close()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = null, &stderr
	s0 := snapCPU()
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s: %v: %s", cmd, err, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	secs := time.Since(began).Seconds()
	ps := cmd.ProcessState
	cpu := (ps.UserTime() + ps.SystemTime()).Seconds()
	return result{seconds: secs, cpuSeconds: cpu, load: since(s0, snapCPU(), cpu)}, nil
}

// timeKafkaGo is the fallback reference when kcat cannot run: one kafka-go
// partition reader per partition, reading to the end, nothing else.
func timeKafkaGo(ctx context.Context, o options, topic string, ends map[int32]int64) (result, error) {
	s0 := snapCPU()
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(ends))
	for p, end := range ends {
		if end == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: o.brokers, Topic: topic, Partition: int(p), MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond, ReadLagInterval: -1})
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					errs <- err
					return
				}
				if m.Offset+1 >= end {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	secs := time.Since(began).Seconds()
	s1 := snapCPU()
	cpu := s1.self - s0.self
	return result{seconds: secs, cpuSeconds: cpu, load: since(s0, s1, cpu)}, nil
}

// ---------------------------------------------------------------------------
// gapwatch
