package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage/chstore"
	"github.com/segmentio/kafka-go"
)

// The -latency mode's moving parts: the gapwatch processes it runs, the live
// producer, and the logs of alerts and of the ingest watermark it follows.

// freePort returns a loopback address nobody listens on (now).
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// latChild is a running gapwatch child.
type latChild struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error
	logPath string
}

func startChild(bin, dir, logPath string, env []string, args ...string) (*latChild, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := &latChild{cmd: exec.Command(bin, args...), exited: make(chan struct{}), logPath: logPath}
	c.cmd.Env, c.cmd.Dir = env, dir
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { c.err = c.cmd.Wait(); logf.Close(); close(c.exited) }()
	return c, nil
}

func (c *latChild) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

func (c *latChild) tail() string {
	b, _ := os.ReadFile(c.logPath)
	return lastLines(string(b), 15)
}

func (c *latChild) cpu() float64 {
	v, _ := procCPU(c.cmd.Process.Pid)
	return v
}

// liveProducer produces every stream live, a Poisson number of events a
// second, until its planned stop (the stopped streams), and keeps each
// stream's last event time.
type liveProducer struct {
	w       *kafka.Writer
	streams []latStream
	stopIdx map[int]int
	rate    float64
	rng     *rand.Rand

	mu    sync.Mutex
	stops []time.Time // by stop index; zero: not planned yet
	last  map[string]time.Time
	err   error
}

func newLiveProducer(o options, topic string, streams []latStream, stops []latStop, stopIdx map[int]int, rate float64, rng *rand.Rand) *liveProducer {
	return &liveProducer{
		w: &kafka.Writer{Addr: kafka.TCP(o.brokers...), Topic: topic, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, BatchSize: 1000, WriteTimeout: 10 * time.Second},
		streams: streams, stopIdx: stopIdx, rate: rate, rng: rng,
		stops: make([]time.Time, len(stops)), last: map[string]time.Time{},
	}
}

func (p *liveProducer) setStops(stops []latStop) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range stops {
		p.stops[i] = s.at
	}
}

func (p *liveProducer) lastEvents() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *liveProducer) close() { p.w.Close() }

// run sends, every second from `from` on, each stream's events of that
// second (none for a stream past its stop) with that second's timestamp.
func (p *liveProducer) run(ctx context.Context, from time.Time) {
	for at := from; ctx.Err() == nil; at = at.Add(time.Second) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		now := time.Now() // the record timestamp: when it was produced
		var msgs []kafka.Message
		var keys []string
		p.mu.Lock()
		for i, s := range p.streams {
			if j, ok := p.stopIdx[i]; ok && !p.stops[j].IsZero() && !now.Before(p.stops[j]) {
				continue
			}
			k := simulate.Poisson(p.rng, p.rate)
			if k == 0 {
				continue
			}
			msgs = append(msgs, azureMessage(s, int(k), now))
			keys = append(keys, s.key())
		}
		p.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.w.WriteMessages(wctx, msgs...)
		cancel()
		p.mu.Lock()
		if err == nil {
			for _, k := range keys {
				p.last[k] = now.Truncate(time.Millisecond) // Kafka keeps milliseconds
			}
		} else if ctx.Err() == nil {
			p.err = err
			fmt.Fprintf(os.Stderr, "benchingest: producing live traffic: %v\n", err)
		}
		p.mu.Unlock()
	}
}

func azureMessage(s latStream, n int, at time.Time) kafka.Message {
	rec := fmt.Sprintf(`{"tenantId":%q,"category":%q,"time":%q,"operationName":"Sign-in activity"}`, s.tenant, s.source, at.UTC().Format(time.RFC3339Nano))
	recs := make([]string, n)
	for i := range recs {
		recs[i] = rec
	}
	return kafka.Message{Key: []byte(s.key()), Value: []byte(`{"records":[` + strings.Join(recs, ",") + `]}`), Time: at}
}

type latAlert struct {
	key      string
	received time.Time
	Type     string `json:"type"`
	Data     struct {
		Kind       string `json:"kind"`
		StartedAt  string `json:"started_at"`
		DetectedAt string `json:"detected_at"`
	} `json:"data"`
}

type alertLog struct {
	mu   sync.Mutex
	list []latAlert
}

// follow reads one partition of the alert topic from its start until ctx ends.
func (l *alertLog) follow(ctx context.Context, brokers []string, topic string, partition int) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	_ = r.SetOffset(kafka.FirstOffset)
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		a := latAlert{key: string(m.Key), received: time.Now()}
		if json.Unmarshal(m.Value, &a) != nil {
			continue
		}
		l.mu.Lock()
		l.list = append(l.list, a)
		l.mu.Unlock()
	}
}

func (l *alertLog) all() []latAlert {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

// opened returns the first gap.opened of the stream key, or nil.
func (l *alertLog) opened(key string) *latAlert {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.list {
		if a := &l.list[i]; a.Type == "io.gapwatch.gap.opened" && a.key == key {
			c := *a
			return &c
		}
	}
	return nil
}

// watermarkLog records when the ingest watermark (the lowest stored arrival
// watermark over the input's partitions) moved.
type watermarkLog struct {
	mu      sync.Mutex
	samples []wmSample
}

type wmSample struct{ at, wm time.Time }

func (w *watermarkLog) follow(ctx context.Context, s *chstore.Store, topic string, partitions int) {
	var last time.Time
	for ctx.Err() == nil {
		if offs, err := s.Offsets(ctx, topic); err == nil && len(offs) == partitions {
			var low time.Time
			for _, o := range offs {
				if low.IsZero() || o.ArrivalHW.Before(low) {
					low = o.ArrivalHW
				}
			}
			if low.After(last) {
				last = low
				w.mu.Lock()
				w.samples = append(w.samples, wmSample{time.Now(), low})
				w.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// passed returns when the watermark first reached t (zero: never).
func (w *watermarkLog) passed(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.samples {
		if !s.wm.Before(t) {
			return s.at
		}
	}
	return time.Time{}
}
