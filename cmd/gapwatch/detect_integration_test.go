package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// livePipeline is an input topic, a database and an alert topic for `gapwatch
// run` children with every role, at default settings.
type livePipeline struct {
	brokers []string
	topic   string
	alerts  string
	env     []string
	writer  *kafka.Writer
	ch      chstore.Config // the database the children use
}

func newLivePipeline(t *testing.T) *livePipeline {
	brokers := servers.Kafka(t)
	_, cfg := servers.ClickHouse(t)
	p := &livePipeline{brokers: brokers, topic: servers.Unique("live_logs"), alerts: servers.Unique("live_alerts"), ch: cfg}
	servers.CreateTopic(t, brokers, p.topic, 3)
	servers.CreateTopic(t, brokers, p.alerts, 3) // as an operator would; the detector creates it otherwise
	p.env = append(os.Environ(), "GAPWATCH_TEST_AS_MAIN=1", "GAPWATCH_LOG_LEVEL="+logLevel(),
		"GAPWATCH_INPUT_TOPICS="+p.topic, "GAPWATCH_GROUP="+servers.Unique("live_group"),
		"GAPWATCH_ALERTS_TOPIC="+p.alerts,
		"GAPWATCH_CLICKHOUSE_DATABASE="+cfg.Database, "GAPWATCH_KAFKA_BROKERS="+brokers[0])
	p.writer = &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: p.topic, Balancer: &kafka.RoundRobin{}, // every partition moves the watermark
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond}
	t.Cleanup(func() { p.writer.Close() })
	return p
}

// produce sends, for each stream, perSec events a second over [from, to) with
// those record timestamps, one Azure envelope per stream and second.
func (p *livePipeline) produce(t *testing.T, streams []string, perSec int, from, to time.Time) {
	var batch []kafka.Message
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, p.writer.WriteMessages(ctx, batch...))
		batch = batch[:0]
	}
	for at := from; at.Before(to); at = at.Add(time.Second) {
		for _, s := range streams {
			batch = append(batch, p.message(s, perSec, at))
		}
		if len(batch) >= 500 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

func (p *livePipeline) message(stream string, n int, at time.Time) kafka.Message {
	recs := make([]string, n)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"tenantId":"live","category":%q,"time":%q}`, stream, at.Format(time.RFC3339Nano))
	}
	return kafka.Message{Key: []byte(stream), Value: []byte(`{"records":[` + strings.Join(recs, ",") + `]}`), Time: at}
}

func (p *livePipeline) start(t *testing.T, env ...string) *child {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &child{addr: ln.Addr().String()}
	ln.Close()
	c.cmd = exec.Command(os.Args[0], "run") // every role, default settings
	c.cmd.Env = append(append(p.env, "GAPWATCH_HTTP_ADDR="+c.addr), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("child %v output:\n%s", env, c.out.String())
		}
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Signal(syscall.SIGKILL)
			_ = c.cmd.Wait()
		}
	})
	return c
}

// alert is one message of the alert topic, as a consumer sees it.
type alert struct {
	key      string
	received time.Time
	ID       string `json:"id"`
	Type     string `json:"type"`
	Subject  string `json:"subject"`
	Data     struct {
		GapID      string `json:"gap_id"`
		Source     string `json:"source"`
		Kind       string `json:"kind"`
		StartedAt  string `json:"started_at"`
		DetectedAt string `json:"detected_at"`
		EndedAt    string `json:"ended_at"`
		Expected   uint64 `json:"expected_events"`
		Missing    uint64 `json:"missing_events"`
	} `json:"data"`
}

// alertLog follows the alert topic from its start.
type alertLog struct {
	mu  sync.Mutex
	all []alert
}

func (p *livePipeline) follow(t *testing.T) *alertLog {
	l := &alertLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: p.brokers, Topic: p.alerts, GroupID: servers.Unique("alert_reader"),
			StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
		defer r.Close()
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				return
			}
			var a alert
			if json.Unmarshal(m.Value, &a) != nil {
				continue
			}
			a.key, a.received = string(m.Key), time.Now()
			l.mu.Lock()
			l.all = append(l.all, a)
			l.mu.Unlock()
		}
	}()
	return l
}

// gapEvents returns the gap lifecycle alerts received so far.
func (l *alertLog) gapEvents() []alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []alert
	for _, a := range l.all {
		if strings.HasPrefix(a.Type, "io.gapwatch.gap.") {
			out = append(out, a)
		}
	}
	return out
}

func (l *alertLog) waitFor(t *testing.T, timeout time.Duration, what string, match func(alert) bool) alert {
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		for _, a := range l.all {
			if match(a) {
				l.mu.Unlock()
				return a
			}
		}
		l.mu.Unlock()
		require.True(t, time.Now().Before(deadline), "no %s within %s", what, timeout)
		time.Sleep(200 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// TestLiveGapLifecycle: steady streams, one stops — gap.opened for it within
// 120 s of its last event and nothing for the others; it resumes — gap.resolved.
// The stop is live (wall clock); the 15 minutes of healthy data that resolving
// takes at default settings are produced ahead of time with record timestamps
// up to 20 minutes in the future, which the arrival watermark follows.
func TestLiveGapLifecycle(t *testing.T) {
	p := newLivePipeline(t)
	streams := []string{"SignInLogs", "AuditLogs", "firewall", "dns"}
	now := time.Now().UTC().Truncate(time.Second)
	p.produce(t, streams, 5, now.Add(-20*time.Minute), now) // history to learn from
	alerts := p.follow(t)
	c := p.start(t)
	c.waitReady(t)

	// Live: every stream at 5 events a second until the first one stops.
	var stopped sync.Mutex
	var lastEvent time.Time
	active := map[string]bool{}
	for _, s := range streams {
		active[s] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	var live sync.WaitGroup
	live.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case at := <-tick.C:
				stopped.Lock()
				var msgs []kafka.Message
				for _, s := range streams {
					if active[s] {
						msgs = append(msgs, p.message(s, 5, at.UTC()))
					}
				}
				stopped.Unlock()
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				err := p.writer.WriteMessages(wctx, msgs...)
				wcancel()
				if err == nil {
					stopped.Lock()
					if !active[streams[0]] && lastEvent.IsZero() {
						lastEvent = at // the last message with the stopped stream was the one before
					}
					stopped.Unlock()
				}
			}
		}
	})
	time.Sleep(75 * time.Second)
	stopped.Lock()
	active[streams[0]] = false
	stopped.Unlock()
	opened := alerts.waitFor(t, 150*time.Second, "gap.opened for the stopped stream", func(a alert) bool {
		return a.Type == "io.gapwatch.gap.opened" && a.Data.Source == streams[0]
	})
	// Issue 16: once the gap is on the topic, the API shows the stream in it.
	var sts []struct{ Source, Status string }
	getJSON(t, "http://"+c.addr+"/api/v1/streams?tenant=live&source="+streams[0], &sts)
	require.Len(t, sts, 1)
	require.Equal(t, "gap", sts[0].Status, "the status right after gap.opened")
	stopped.Lock()
	last := lastEvent.Add(-time.Second)
	stopped.Unlock()
	latency := opened.received.Sub(last)
	t.Logf("gap.opened %s after the stream's last event (kind %s, started %s, detected %s)", latency.Round(100*time.Millisecond),
		opened.Data.Kind, opened.Data.StartedAt, opened.Data.DetectedAt)
	require.LessOrEqual(t, latency, 120*time.Second, "gap.opened within 120 s of the last event")
	require.Equal(t, "silence", opened.Data.Kind)
	require.Equal(t, "live/"+streams[0], opened.key, "keyed by stream id")
	cancel()
	live.Wait()

	// Resume: the stream sends again, with the others; 20 minutes of arrivals
	// ahead of the wall clock let the watermark pass the resolve hold.
	resume := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	p.produce(t, streams, 5, resume, resume.Add(20*time.Minute))
	resolved := alerts.waitFor(t, 90*time.Second, "gap.resolved", func(a alert) bool {
		return a.Type == "io.gapwatch.gap.resolved" && a.Data.GapID == opened.Data.GapID
	})
	require.NotEmpty(t, resolved.Data.EndedAt)
	for _, a := range alerts.gapEvents() {
		require.Equal(t, streams[0], a.Data.Source, "no gap for a healthy stream: %+v", a)
	}

	var gaps []struct {
		ID, Kind, Tenant, Source string
		EndedAt                  *string `json:"ended_at"`
		Missing                  uint64  `json:"missing_events"`
	}
	getJSON(t, "http://"+c.addr+"/api/v1/gaps?state=resolved&tenant=live", &gaps)
	require.Len(t, gaps, 1)
	require.Equal(t, opened.Data.GapID, gaps[0].ID)
	require.NotNil(t, gaps[0].EndedAt)
	require.Positive(t, gaps[0].Missing)
	getJSON(t, "http://"+c.addr+"/api/v1/streams?tenant=live", &sts)
	require.Len(t, sts, len(streams))
	c.stop(t)
	t.Logf("gap %s: opened after %s, resolved with ended_at %s, %d events missing", opened.Data.GapID,
		latency.Round(100*time.Millisecond), resolved.Data.EndedAt, gaps[0].Missing)

	// gapwatch explain replays the stream's stored counts and opens the same
	// silence, started and detected when live detection said.
	t.Setenv("GAPWATCH_STORE", "clickhouse")
	t.Setenv("GAPWATCH_CLICKHOUSE_ADDR", p.ch.Addr)
	t.Setenv("GAPWATCH_CLICKHOUSE_DATABASE", p.ch.Database)
	t.Setenv("GAPWATCH_INPUT_TOPICS", p.topic) // its ingest watermark bounds the period
	started, err := time.Parse(time.RFC3339, opened.Data.StartedAt)
	require.NoError(t, err)
	detected, err := time.Parse(time.RFC3339, opened.Data.DetectedAt)
	require.NoError(t, err)
	why := filepath.Join(t.TempDir(), "why.csv")
	code, out, stderr := runCmd("explain", "--tenant", "live", "--source", streams[0], "--history", "2h", "--out", why,
		"--from", started.Truncate(time.Minute).Add(-5*time.Minute).Format(time.RFC3339),
		"--to", detected.Truncate(time.Minute).Add(2*time.Minute).Format(time.RFC3339))
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, fmt.Sprintf("explain: silence opened: started %s, detected %s,", opened.Data.StartedAt, opened.Data.DetectedAt))
}

// TestDetectPublishesOnceThroughSIGKILL kills the detector right after it
// stored a step with alerts (nothing published), then in the middle of
// publishing that step on recovery; after a clean restart every gap event is
// on the alert topic exactly once.
func TestDetectPublishesOnceThroughSIGKILL(t *testing.T) {
	p := newLivePipeline(t)
	streams := []string{"a", "b", "c", "d", "e", "f", "g"} // 3 of 7 stop: not yet "the whole input went quiet"
	now := time.Now().UTC().Truncate(time.Second)
	p.produce(t, streams, 3, now.Add(-20*time.Minute), now)
	alerts := p.follow(t)
	c := p.start(t, "GAPWATCH_FAILPOINT=detect-after-store:1")
	c.waitReady(t)
	// Ahead of the clock: three streams stop at once, the others go on.
	p.produce(t, streams, 3, now, now.Add(2*time.Minute))
	p.produce(t, streams[3:], 3, now.Add(2*time.Minute), now.Add(20*time.Minute))
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	select {
	case err := <-exited:
		require.ErrorContains(t, err, "killed", c.out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("the detector did not reach its failpoint: %s", c.out.String())
	}

	c = p.start(t, "GAPWATCH_FAILPOINT=detect-mid-publish:1")
	go func() { exited <- c.cmd.Wait() }()
	select {
	case err := <-exited:
		require.ErrorContains(t, err, "killed", c.out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("the detector did not reach its failpoint: %s", c.out.String())
	}

	c = p.start(t)
	c.waitReady(t)
	for _, s := range streams[:3] {
		alerts.waitFor(t, 60*time.Second, "gap.opened for "+s, func(a alert) bool {
			return a.Type == "io.gapwatch.gap.opened" && a.Data.Source == s
		})
	}
	time.Sleep(10 * time.Second) // anything duplicated would be published by now
	c.stop(t)
	seen := map[string]int{}
	opened := 0
	for _, a := range alerts.gapEvents() {
		seen[a.ID]++
		require.Equal(t, 1, seen[a.ID], "alert %s (%s of %s) published twice", a.ID, a.Type, a.Data.Source)
		require.Contains(t, streams[:3], a.Data.Source)
		if a.Type == "io.gapwatch.gap.opened" {
			opened++
		}
	}
	require.Equal(t, 3, opened)
	t.Logf("%d gap events, each once, through a kill after storing and a kill mid-publish", len(seen))
}
