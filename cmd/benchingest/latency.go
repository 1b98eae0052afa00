package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// The -latency mode measures the live path end to end: how soon after a
// stream stops its io.gapwatch.gap.opened is on the alert topic, with the
// real gapwatch binary on the real servers (issue 19, item 5).
//
// Per run: a fresh input topic, alert topic and database. -lat-streams
// streams (Azure envelopes, tenant latNN, source srcNN) have -lat-history of
// history, written straight into the counts table as ingest would have
// stored it (Poisson counts at -lat-rate, arrival clock; producing weeks of
// events through Kafka would take hours), up to the second the live traffic
// starts. The history reaches past two complete calendar weeks, so every
// stream is judged on its hourly and daily profiles whatever the weekday
// (with less, a Saturday is judged against a quarter of its rate: the
// cold-start weekend floor). Then, in two processes so that each one's CPU is
// its own, `gapwatch run --role ingest` and `gapwatch run --role detect,api`
// (bucket -lat-bucket, detect.history = -lat-history, other settings at
// their defaults) start, and this process produces every stream live, a
// Poisson number of events with that second's timestamp every second. Once
// the detector is ready (its start-up replay of the history done), the
// -lat-stop stopped streams stop one by one, their stops spread evenly over
// one bucket (every phase within a bucket is sampled), the others going on.
// The alert topic is read from its start the whole time.
//
// Printed per stopped stream: the time from its last produced event (its
// record timestamp) to its gap.opened being received, and beside it the
// pipeline's floor, measured in the same run: the time from the last event
// until the ingest watermark (the lowest stored arrival watermark of the
// input's partitions, polled every 100 ms) passed the end of the bucket
// holding the last event — the earliest a detector that judges whole buckets
// could know the next bucket is empty — and the latency of static "no events
// for 15 / 60 minutes" rules by construction (the end of the 15th / 60th
// empty bucket). Then median, p90 and max over the stopped streams, per run
// and (medians) over the runs, and the detector's and ingest's CPU per
// bucket while live. Any gap alert of a stream that did not stop, or of a
// stopped one before its stop, is a false gap: printed, and the run fails.

// latencyOptions are the -latency mode's own settings.
type latencyOptions struct {
	streams, stop int
	rate          float64 // events per second per stream
	bucket        time.Duration
	history       time.Duration
	partitions    int
}

func (l *latencyOptions) flags() {
	flag.IntVar(&l.streams, "lat-streams", 200, "with -latency: live streams")
	flag.IntVar(&l.stop, "lat-stop", 10, "with -latency: streams stopped per run, their stops spread over one bucket")
	flag.Float64Var(&l.rate, "lat-rate", 2, "with -latency: events per second per stream (Poisson)")
	flag.DurationVar(&l.bucket, "lat-bucket", time.Minute, "with -latency: gapwatch's bucket width")
	flag.DurationVar(&l.history, "lat-history", 22*24*time.Hour, "with -latency: history stored ahead (detect.history); ≥ 21 days holds two complete calendar weeks")
	flag.IntVar(&l.partitions, "lat-partitions", 3, "with -latency: partitions of the input topic")
}

func (l latencyOptions) check() error {
	switch {
	case l.streams < 2 || l.streams > 100_000:
		return errors.New("-lat-streams: want 2 to 100000")
	case l.stop < 1 || 2*l.stop > l.streams:
		return errors.New("-lat-stop: want at least 1 and at most half of -lat-streams (more is an input-quiet rollup, not per-stream gaps)")
	case l.rate <= 0:
		return errors.New("-lat-rate must be positive")
	case l.bucket < time.Second || l.bucket%time.Second != 0 || (24*time.Hour)%l.bucket != 0:
		return errors.New("-lat-bucket: whole seconds dividing a day")
	case l.history < 2*24*time.Hour:
		return errors.New("-lat-history: at least 48h (the hourly profile needs two days)")
	case l.partitions < 1:
		return errors.New("-lat-partitions must be positive")
	}
	return nil
}

// latStream is one live stream.
type latStream struct{ tenant, source string }

func (s latStream) key() string { return s.tenant + "/" + s.source }

// latStop is one stopped stream and what was measured of it.
type latStop struct {
	stream latStream
	at     time.Time // planned stop: no event from then on
	last   time.Time // record timestamp of its last event (zero: none produced)
	opened time.Time // when its gap.opened was received (zero: none)
	kind   string
	detect time.Time // the gap.opened's detected_at: the bucket end or slot it was judged at
	floor  time.Time // when the ingest watermark passed the end of last's bucket (zero: not seen)
}

func (s latStop) latency() time.Duration { return s.opened.Sub(s.last) }

// delivery is the time from the judged instant (detected_at) to the alert
// being received: watermark delay, step, store, publish, consume.
func (s latStop) delivery() time.Duration { return s.opened.Sub(s.detect) }
func (s latStop) floorAfter() time.Duration {
	return s.floor.Sub(s.last)
}

// static is the latency of a "no events for d" rule on whole buckets: it
// fires at the end of the n-th empty bucket after the last event's.
func (s latStop) static(d, width time.Duration) time.Duration {
	n := (d + width - 1) / width
	return s.last.Truncate(width).Add(width + n*width).Sub(s.last)
}

// latResult is one run.
type latResult struct {
	stops                []latStop
	falseGaps            []string
	others               map[string]int // other alerts received, by type
	seededRows           int
	seedSecs             float64
	readySecs, warmCPU   float64 // detect process: start → ready, CPU until then
	detectCPU, ingestCPU float64 // core-s per bucket while live (from the first stop on)
	liveBuckets          float64
	load                 load
	loadAvg              string
	secs                 float64
	chVersion            string
	detectRSS, detectHWM float64 // MB, at the end
}

func runLatency(ctx context.Context, o options) error {
	tmp, bin, ch, client, err := setUp(ctx, o, "benchingest-latency-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ch.Close()
	l := o.lat
	fmt.Printf("live latency: %d streams at %g events/s each (Poisson, one Azure envelope per stream and second), %d of them stopped per run, their stops spread over one bucket; %s buckets; %s of history stored ahead (%d count rows); gapwatch run --role ingest and --role detect,api, other settings at their defaults\n",
		l.streams, l.rate, l.stop, l.bucket, l.history, l.streams*int(l.history/l.bucket))
	var rs []latResult
	failed := false
	for i := range o.runs {
		r, err := latencyRun(ctx, o, client, bin, tmp, i+1)
		if err != nil {
			return fmt.Errorf("latency run %d: %w", i+1, err)
		}
		printLatencyRun(i+1, o, r)
		rs = append(rs, r)
		failed = failed || len(r.falseGaps) > 0 || slices.ContainsFunc(r.stops, func(s latStop) bool { return s.opened.IsZero() })
	}
	printLatencySummary(o, rs)
	if failed {
		return errors.New("a run had false gaps or a stopped stream without gap.opened (see above)")
	}
	return nil
}

// latencyRun is one run of the -latency mode (see the top of this file).
func latencyRun(ctx context.Context, o options, client *kafka.Client, bin, tmp string, run int) (r latResult, err error) {
	l := o.lat
	began := time.Now()
	rng := rand.New(rand.NewPCG(o.seed, uint64(run)))
	width := l.bucket

	topic, alerts, group := unique("bench_latency_"), unique("bench_latency_alerts_"), unique("gapwatch-bench-latency-")
	var cleanups []func(context.Context)
	defer cleanUp(&cleanups)
	if err := createTopic(ctx, client, topic, l.partitions); err != nil {
		return r, err
	}
	cleanups = append(cleanups, func(ctx context.Context) {
		topics := []string{topic, topic + ingest.DLQSuffix, alerts}
		if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics}); err != nil {
			fmt.Fprintf(os.Stderr, "benchingest: deleting topics %v: %v\n", topics, err)
		}
	})
	if err := createTopic(ctx, client, alerts, 3); err != nil {
		return r, err
	}
	s, db, drop, err := freshStore(ctx, o)
	if err != nil {
		return r, err
	}
	cleanups = append(cleanups, func(context.Context) { drop() })
	r.chVersion = s.Version()
	cleanups = append(cleanups, func(ctx context.Context) {
		// The ingest member left on SIGTERM; a killed one stays until its session times out.
		for range 15 {
			resp, err := client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
			if err == nil {
				err = resp.Errors[group]
			}
			if !errors.Is(err, kafka.NonEmptyGroup) {
				return
			}
			time.Sleep(time.Second)
		}
	})

	streams := make([]latStream, l.streams)
	for i := range streams {
		streams[i] = latStream{fmt.Sprintf("lat%03d", i/10), fmt.Sprintf("src%d", i%10)}
	}
	// Stopped: spread over the tenants and sources.
	stops := make([]latStop, l.stop)
	stopIdx := map[int]int{} // stream index → its stop
	for i := range stops {
		idx := (i*l.streams/l.stop + i) % l.streams
		for _, taken := stopIdx[idx]; taken; _, taken = stopIdx[idx] {
			idx = (idx + 1) % l.streams
		}
		stopIdx[idx] = i
		stops[i].stream = streams[idx]
	}

	// The children, configured by a file (bucket, history) and the environment.
	cfgPath := filepath.Join(tmp, fmt.Sprintf("latency-%d.yaml", run))
	cfgText := fmt.Sprintf("bucket: %s\ndetect:\n  history: %s\n", width, l.history)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		return r, err
	}
	addr, err := freePort()
	if err != nil {
		return r, err
	}
	env := append(childEnv(o, topic, group, db), "GAPWATCH_ALERTS_TOPIC="+alerts, "GAPWATCH_LOG_LEVEL="+cmp.Or(o.logLevel, "warn"))
	logDir := cmp.Or(o.logDir, tmp)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return r, err
	}
	ing, err := startChild(bin, tmp, filepath.Join(logDir, fmt.Sprintf("latency-%d-ingest.log", run)), env, "run", "--config", cfgPath, "--role", "ingest")
	if err != nil {
		return r, err
	}
	defer ing.stop()
	detectStart := time.Now()
	det, err := startChild(bin, tmp, filepath.Join(logDir, fmt.Sprintf("latency-%d-detect.log", run)),
		append(env, "GAPWATCH_HTTP_ADDR="+addr), "run", "--config", cfgPath, "--role", "detect,api")
	if err != nil {
		return r, err
	}
	defer det.stop()
	fail := func(err error) (latResult, error) {
		return r, fmt.Errorf("%w\ningest log tail:\n%s\ndetect log tail:\n%s", err, ing.tail(), det.tail())
	}

	// History up to the live start, the last bucket's share pro rata.
	seedBegan := time.Now()
	to := time.Now().Truncate(width)
	n, err := seedHistory(ctx, s, streams, to.Add(-l.history), to, width, l.rate, rng)
	if err != nil {
		return fail(err)
	}
	liveFrom := time.Now().Add(2 * time.Second).Truncate(time.Second)
	m, err := seedHistory(ctx, s, streams, to, liveFrom.Truncate(width), width, l.rate, rng) // buckets that ended meanwhile
	if err != nil {
		return fail(err)
	}
	k, err := seedPartial(ctx, s, streams, liveFrom, width, l.rate, rng)
	if err != nil {
		return fail(err)
	}
	if time.Now().After(liveFrom) {
		return fail(errors.New("storing the history's last buckets took too long (the live traffic would start with a hole)"))
	}
	r.seededRows, r.seedSecs = n+m+k, time.Since(seedBegan).Seconds()
	progress(o, "run %d: seeded %d count rows in %.1f s", run, r.seededRows, r.seedSecs)

	lctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopAll()

	// Alerts, from the topic's start.
	al := &alertLog{}
	for p := range 3 {
		wg.Go(func() { al.follow(lctx, o.brokers, alerts, p) })
	}
	// The ingest watermark.
	wm := &watermarkLog{}
	wg.Go(func() { wm.follow(lctx, s, topic, l.partitions) })

	// Live traffic from liveFrom on.
	prod := newLiveProducer(o, topic, streams, stops, stopIdx, l.rate, rng)
	defer prod.close()
	time.Sleep(time.Until(liveFrom))
	wg.Go(func() { prod.run(lctx, liveFrom) })

	// The detector is ready once its replay is done.
	if err := waitReady(ctx, "http://"+addr+"/readyz", 5*time.Minute, det.exited); err != nil {
		return fail(fmt.Errorf("detector not ready: %w", err))
	}
	r.readySecs, r.warmCPU = time.Since(detectStart).Seconds(), det.cpu()
	progress(o, "run %d: detector ready after %.1f s (%.1f core-s)", run, r.readySecs, r.warmCPU)

	// Stops spread over one bucket, from a few seconds on.
	first := time.Now().Add(5 * time.Second)
	for i := range stops {
		stops[i].at = first.Add(time.Duration(i) * width / time.Duration(len(stops)))
	}
	prod.setStops(stops)
	time.Sleep(time.Until(first))
	s0, d0, i0 := snapCPU(), det.cpu(), ing.cpu()
	ig0 := d0 + i0
	liveBegan := time.Now()
	deadline := stops[len(stops)-1].at.Add(3*width + 30*time.Second)
	for {
		all := true
		for _, st := range stops {
			all = all && al.opened(st.stream.key()) != nil
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			progress(o, "run %d: not every stopped stream has its gap.opened by %s", run, deadline.Format("15:04:05"))
			break
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-det.exited:
			return fail(errors.New("the detector exited"))
		case <-ing.exited:
			return fail(errors.New("ingest exited"))
		case <-time.After(100 * time.Millisecond):
		}
	}
	// A little more, for false gaps that the last stops may have set off.
	time.Sleep(2 * time.Second)
	liveSecs := time.Since(liveBegan).Seconds()
	d1, i1, s1 := det.cpu(), ing.cpu(), snapCPU()
	r.liveBuckets = liveSecs / width.Seconds()
	r.detectCPU, r.ingestCPU = (d1-d0)/r.liveBuckets, (i1-i0)/r.liveBuckets
	r.load = since(s0, s1, d1+i1-ig0)
	r.detectRSS, r.detectHWM, _ = procStatus(det.cmd.Process.Pid)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.loadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	stopAll()
	wg.Wait()

	lasts := prod.lastEvents()
	for i := range stops {
		st := &stops[i]
		st.last = lasts[st.stream.key()]
		if a := al.opened(st.stream.key()); a != nil {
			st.opened, st.kind = a.received, a.Data.Kind
			st.detect, _ = time.Parse(time.RFC3339Nano, a.Data.DetectedAt)
		}
		if !st.last.IsZero() {
			st.floor = wm.passed(st.last.Truncate(width).Add(width))
		}
	}
	r.stops = stops
	r.others = map[string]int{}
	stopped := map[string]latStop{}
	for _, st := range stops {
		stopped[st.stream.key()] = st
	}
	for _, a := range al.all() {
		if !strings.HasPrefix(a.Type, "io.gapwatch.gap.") {
			r.others[strings.TrimPrefix(a.Type, "io.gapwatch.")]++
			continue
		}
		st, ok := stopped[a.key]
		switch {
		case !ok:
			r.falseGaps = append(r.falseGaps, fmt.Sprintf("%s %s of a healthy stream (kind %s, started %s, received %s)",
				a.Type, a.key, a.Data.Kind, a.Data.StartedAt, a.received.Format("15:04:05.0")))
		case a.received.Before(st.at) || (!st.last.IsZero() && a.Data.StartedAt != "" && startedBefore(a.Data.StartedAt, st.last.Truncate(width))):
			r.falseGaps = append(r.falseGaps, fmt.Sprintf("%s %s before the stream stopped at %s (kind %s, started %s)",
				a.Type, a.key, st.at.Format("15:04:05.0"), a.Data.Kind, a.Data.StartedAt))
		}
	}
	r.secs = time.Since(began).Seconds()
	return r, nil
}

func startedBefore(rfc string, t time.Time) bool {
	at, err := time.Parse(time.RFC3339Nano, rfc)
	return err == nil && at.Before(t)
}

// seedHistory stores every stream's arrival-clock counts of the buckets in
// [from, to) as ingest would have (Poisson at rate, lateness under a second,
// first arrival at the bucket's start) and returns the rows written.
func seedHistory(ctx context.Context, s *chstore.Store, streams []latStream, from, to time.Time, width time.Duration, rate float64, rng *rand.Rand) (int, error) {
	var batch []storage.Count
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		slices.SortFunc(batch, func(x, y storage.Count) int {
			return cmp.Or(strings.Compare(x.Tenant, y.Tenant), strings.Compare(x.Source, y.Source), cmp.Compare(x.Bucket, y.Bucket))
		})
		err := s.Write(ctx, storage.Batch{Counts: batch})
		n += len(batch)
		batch = batch[:0]
		return err
	}
	mean := rate * width.Seconds()
	for _, st := range streams {
		for b := from; b.Before(to); b = b.Add(width) {
			if k := simulate.Poisson(rng, mean); k > 0 {
				batch = append(batch, storage.Count{Tenant: st.tenant, Source: st.source, Clock: storage.Arrival,
					Bucket: b.Unix(), Events: k, Lateness: []uint64{k}, Arrival: b.Unix()})
			}
		}
		if len(batch) >= 400_000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// seedPartial stores the part of liveFrom's bucket before liveFrom.
func seedPartial(ctx context.Context, s *chstore.Store, streams []latStream, liveFrom time.Time, width time.Duration, rate float64, rng *rand.Rand) (int, error) {
	b := liveFrom.Truncate(width)
	mean := rate * liveFrom.Sub(b).Seconds()
	var batch []storage.Count
	for _, st := range streams {
		if k := simulate.Poisson(rng, mean); k > 0 {
			batch = append(batch, storage.Count{Tenant: st.tenant, Source: st.source, Clock: storage.Arrival,
				Bucket: b.Unix(), Events: k, Lateness: []uint64{k}, Arrival: b.Unix()})
		}
	}
	if len(batch) == 0 {
		return 0, nil
	}
	return len(batch), s.Write(ctx, storage.Batch{Counts: batch})
}

func waitReady(ctx context.Context, url string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not 200 within %s", url, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("the process exited")
		case <-time.After(200 * time.Millisecond):
		}
	}
}
