package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/detect/live"
	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// badSamples are produced once at the start of the demo to show that bad input
// is counted by reason rather than dropped in silence.
var badSamples = [][]byte{
	[]byte(`{"source":"firewall","@timestamp":"2026-01-01T00:00:00Z"}`), // no tenant
	[]byte(`{"tenant":"acme","source":"firewall","time":"yesterday"}`),  // unparseable time
	[]byte(`not json at all`),
	{0xff, 0xfe, '{', '}'},
}

// demoPartitions is the number of partitions of the demo's input topic.
const demoPartitions = 6

// cmdDemo runs everything in one process: an embedded Kafka-protocol broker
// (kfake), the simulator producing into it, ingest into the in-memory store,
// detection and the API. It tells the September 2024 story
// (simulate.Story): the store is pre-loaded with the streams' history, so
// detection judges with warm baselines from the first minute, then a
// monitoring-agent bug silently stops several products of many tenants.
func cmdDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	sc := simulate.Config{Story: true}
	fs.IntVar(&sc.Tenants, "tenants", 30, fmt.Sprintf("number of simulated tenants (at least %d)", simulate.StoryMinTenants))
	fs.Float64Var(&sc.Rate, "rate", 300, "mean events per second over all streams")
	fs.Uint64Var(&sc.Seed, "seed", 1, "random seed: the same seed gives the same traffic")
	fs.Var((*incidents)(&sc.Incidents), "incident", "tenant/source:after:for[:loss], e.g. contoso/edr:2m:10m, added to the story's (repeatable)")
	history := fs.Duration("history", 72*time.Hour, "history pre-loaded into the store before detection starts")
	duration := fs.Duration("duration", 0, "stop after this long (default: until interrupted)")
	every := fs.Duration("progress", 5*time.Second, "how often the progress line is printed")
	httpAddr := fs.String("http-addr", "", "API listen address (default GAPWATCH_HTTP_ADDR or 127.0.0.1:8080)")
	cfgPath := fs.String("config", "", "YAML configuration file: its http section (tokens, TLS) applies")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if err := sc.WithDefaults().Validate(); err != nil {
		return usageError{err}
	}
	if *history < 0 || *history > 30*24*time.Hour || *every < time.Second {
		return usagef("--history must be in [0, 720h] and --progress at least 1s")
	}
	// The demo is self-contained: only the listen address and, with --config,
	// the http section (tokens, TLS) are taken from outside, so GAPWATCH_*
	// settings for a real deployment don't leak in.
	var cfgArgs []string
	if *cfgPath != "" {
		cfgArgs = []string{"--config", *cfgPath}
	}
	cfg, err := loadConfig(flag.NewFlagSet("demo", flag.ContinueOnError), cfgArgs)
	if err != nil {
		return err
	}
	if *httpAddr != "" {
		cfg.HTTP.Addr = *httpAddr
	}
	if err := cfg.HTTP.CheckExposure(cfg.HTTP.Addr); err != nil {
		return usageError{err}
	}
	cfg.Store = "memory"
	cfg.Ingest.Topics = []string{"logs"}
	cfg.Ingest.Group = "gapwatch-demo"
	cfg.Memory.Retention = *history + 24*time.Hour
	if *history > 0 { // the start-up replay reads what there is, not the default 15 days
		cfg.Detect.History = *history
	}
	// The story's traffic has no weekly rhythm, and its few days of history
	// hold no daily profile: judge its weekends as weekdays rather than as
	// possibly a quarter of them, as a fresh install must (detect.weekend_floor).
	cfg.Detect.WeekendFloor = 1
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	log := newLogger()

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("the demo serves its API on %s: %w (set --http-addr or GAPWATCH_HTTP_ADDR)", cfg.HTTP.Addr, err)
	}
	ln.Close()

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(demoPartitions, "logs"), kfake.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	cfg.Kafka, cfg.Ingest.Brokers = config.Kafka{Brokers: brokers}, brokers // plaintext, whatever the configuration says
	sc.Brokers, sc.Topic = brokers, "logs"

	w := simulate.NewWriter(sc)
	defer w.Close()
	if err := w.WriteMessages(ctx, badMessages()...); err != nil {
		return fmt.Errorf("producing to the embedded broker: %w", err)
	}

	t0 := time.Now()
	gen := simulate.NewGenerator(sc, t0)
	story := gen.Story()
	cfg.Detect.Coverage = append(cfg.Detect.Coverage, live.CoverageRule{Labels: []string{simulate.PremiumLabel}, Sources: []string{simulate.SourcePremium}})
	cfg.Detect.TenantLabels = story.Labels
	if err := cfg.Live().Validate(); err != nil {
		return usageError{err}
	}
	st := memstore.New(cfg.Memory.Retention)
	took, err := preload(ctx, st, gen, t0, *history, cfg.Bucket)
	if err != nil {
		return err
	}
	m := story.Maintenance
	if err := st.PutSilence(ctx, storage.Silence{ID: "demo-maintenance", Tenant: m.Tenant, Source: m.Source,
		StartsAt: t0.Add(m.From).UTC(), EndsAt: t0.Add(m.To).UTC(), Comment: "planned firewall maintenance (demo story)", Created: t0.UTC()}); err != nil {
		return err
	}

	streams := gen.Streams()
	bugStream := streams[0]
	for _, s := range streams {
		if story.Roles[[2]string{s.Tenant, s.Source}] == simulate.RoleAgentBug && s.Source == simulate.SourceSignIn {
			bugStream = s
			break
		}
	}
	api := "http://" + cfg.HTTP.Addr
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	fmt.Fprintf(stdout, `gapwatch demo (%s): September 2024, replayed
  A monitoring-agent bug made a large cloud provider silently lose customers' security logs for
  %d days; nobody noticed for weeks. Here the %d days are %d minutes, and gapwatch is watching.

  embedded Kafka  %s  topic logs, %d partitions
  traffic         %d tenants, %d streams, %.0f events/s (Entra ID exports, Purview-like audit, firewall, EDR)
  history         %s of counts pre-loaded in %s: baselines are warm, nothing is learning
  store           in memory, %s retention

  page            %s/
  gaps            %s/api/v1/gaps
  streams         %s/api/v1/streams
  rates           %s/api/v1/rates?%s
  coverage        %s/api/v1/coverage?%s
  silences        %s/api/v1/silences
  metrics         %s/metrics

Ctrl-C stops.
`, versionString(), simulate.BugDays, simulate.BugDays, simulate.BugDays, brokers[0], demoPartitions,
		sc.Tenants, len(streams), sc.Rate, *history, took.Round(time.Millisecond), cfg.Memory.Retention,
		api, api, api, api, q("tenant", bugStream.Tenant, "source", bugStream.Source, "step", "1m"),
		api, q("tenant", bugStream.Tenant, "step", "1m"), api, api)
	for _, in := range sc.Incidents {
		fmt.Fprintf(stdout, "  your incident   %s\n", in)
	}

	reg := newRegistry()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return runRoles(gctx, cfg, map[string]bool{"ingest": true, "detect": true, "api": true}, st, reg, log)
	})
	g.Go(func() error {
		_, err := gen.Run(gctx, w)
		return err
	})
	nr := &narrator{w: stdout, st: st, reg: reg, story: story, t0: t0, told: map[string]string{}, page: api + "/"}
	g.Go(func() error { return nr.run(gctx, *every) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	fmt.Fprintln(stdout, "demo stopped")
	return err
}

// preload writes the streams' history up to t0 into st as ingest would have
// stored it, then the input partitions' progress: every record before offset
// 0 counted (there is none) and the arrival watermark at t0. Detection then
// starts at once at t0 and its warm start replays the history (detect.history)
// into full baselines; ingest consumes the topic from its first record.
func preload(ctx context.Context, st *memstore.Store, gen *simulate.Generator, t0 time.Time, history, bucket time.Duration) (time.Duration, error) {
	start := time.Now()
	if history > 0 {
		if err := gen.History(t0.Add(-history), t0, bucket, func(cs []storage.Count) error {
			return st.Write(ctx, storage.Batch{Counts: cs})
		}); err != nil {
			return 0, fmt.Errorf("pre-loading history: %w", err)
		}
	}
	var b storage.Batch
	for p := range int32(demoPartitions) {
		b.Offsets = append(b.Offsets, storage.Offset{Topic: "logs", Partition: p, Next: 0, ArrivalHW: t0})
	}
	if err := st.Write(ctx, b); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func badMessages() []kafka.Message {
	out := make([]kafka.Message, len(badSamples))
	for i, b := range badSamples {
		out[i] = kafka.Message{Value: b, Time: time.Now()}
	}
	return out
}

// demoStore is what the narrator reads.
type demoStore interface {
	Gaps(ctx context.Context, q storage.GapQuery) ([]storage.Gap, error)
	DetectProgress(ctx context.Context, shard, shards int) (storage.DetectProgress, bool, error)
	BatchAlerts(ctx context.Context, shard, shards int, seq uint64) ([]storage.Alert, error)
}

// narrator tells the story on the terminal: each beat once when it happens,
// each gap when it opens and resolves, each coverage and pipeline alert, and
// a progress line with the story's phase and what was detected.
type narrator struct {
	w     io.Writer
	st    demoStore
	reg   prometheus.Gatherer
	story simulate.Story
	t0    time.Time
	beats int
	seq   uint64            // detection steps read
	told  map[string]string // gap id → "opened" or "resolved"
	cov   int               // coverage.missing alerts
	page  string            // the built-in page's URL
}

func (n *narrator) run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n.beat(time.Since(n.t0))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := n.tell(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (n *narrator) stamp() string {
	d := time.Since(n.t0).Round(time.Second)
	return fmt.Sprintf("T+%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// beat tells the story's beats due by elapsed.
func (n *narrator) beat(elapsed time.Duration) {
	beats := n.story.Beats // in time order
	for ; n.beats < len(beats) && beats[n.beats].At <= elapsed; n.beats++ {
		fmt.Fprintf(n.w, "%s  ▶ %s\n", n.stamp(), beats[n.beats].Text)
	}
}

func (n *narrator) tell(ctx context.Context) error {
	if err := n.alerts(ctx); err != nil {
		return err
	}
	gaps, err := n.st.Gaps(ctx, storage.GapQuery{State: storage.GapsAll})
	if err != nil {
		return err
	}
	var opened, resolved []storage.Gap
	var open, closed, planned, falseAlarms int
	kinds := map[string]int{}
	for _, g := range gaps {
		role := n.story.Roles[[2]string{g.Tenant, g.Source}]
		switch {
		case g.Planned:
			planned++
		case g.Open():
			open++
			kinds[g.Kind]++
		default:
			closed++
		}
		if role == "" {
			falseAlarms++
		}
		if n.told[g.ID] == "" {
			opened = append(opened, g)
			n.told[g.ID] = "opened"
		}
		if !g.Open() && n.told[g.ID] != "resolved" {
			resolved = append(resolved, g)
			n.told[g.ID] = "resolved"
		}
	}
	n.gapLines("gap opened", opened)
	n.gapLines("gap resolved", resolved)
	var ks []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	byKind := ""
	if len(ks) > 0 {
		byKind = " (" + strings.Join(ks, ", ") + ")"
	}
	fams, err := n.reg.Gather()
	if err != nil {
		return err
	}
	fmt.Fprintf(n.w, "%s  [%s]  gaps open %d%s, resolved %d, planned %d; coverage.missing %d; unexplained %d | events %.0f, rejected %.0f | %s\n",
		n.stamp(), n.story.Phase(time.Since(n.t0)), open, byKind, closed, planned, n.cov, falseAlarms,
		sum(fams, "gapwatch_ingest_events_stored_total"), sum(fams, "gapwatch_ingest_rejected_total"), n.page)
	return nil
}

// alerts tells the coverage and pipeline alerts of the steps stored since
// the last call.
func (n *narrator) alerts(ctx context.Context) error {
	p, ok, err := n.st.DetectProgress(ctx, 0, 1)
	if err != nil || !ok {
		return err
	}
	for ; n.seq < p.Seq; n.seq++ {
		as, err := n.st.BatchAlerts(ctx, 0, 1, n.seq+1)
		if err != nil {
			return err
		}
		for _, a := range as {
			switch a.Type {
			case live.TypeCoverageMissing:
				n.cov++
				why := n.story.Roles[[2]string{a.Tenant, a.Source}]
				if why == "" {
					why = "unexplained"
				}
				fmt.Fprintf(n.w, "%s  ! coverage.missing  %s %s (tenant %s): required, not arriving — %s\n", n.stamp(), n.story.Org(a.Tenant), a.Source, a.Tenant, why)
			case live.TypePipelineDegraded:
				fmt.Fprintf(n.w, "%s  ! pipeline.degraded  %s\n", n.stamp(), a.Payload)
			}
		}
	}
	return nil
}

// gapLines tells gaps, one line each, or one line per kind and role when
// many change at once.
func (n *narrator) gapLines(what string, gaps []storage.Gap) {
	type group struct{ kind, role string }
	groups := map[group][]storage.Gap{}
	var order []group
	for _, g := range gaps {
		role := n.story.Roles[[2]string{g.Tenant, g.Source}]
		switch {
		case role == "":
			role = "unexplained: no incident scripted"
		case g.Planned:
			role += ": planned, not alerted"
		}
		k := group{g.Kind, role}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], g)
	}
	for _, k := range order {
		gs := groups[k]
		if len(gs) <= 3 {
			for _, g := range gs {
				fmt.Fprintf(n.w, "%s  %s  %-7s %s %s, started %s — %s\n", n.stamp(), what, g.Kind, n.story.Org(g.Tenant), g.Source,
					g.StartedAt.Local().Format("15:04:05"), k.role)
			}
			continue
		}
		var names []string
		for _, g := range gs {
			names = append(names, n.story.Org(g.Tenant)+" "+g.Source)
		}
		fmt.Fprintf(n.w, "%s  %s  %-7s ×%d — %s: %s\n", n.stamp(), what, k.kind, len(gs), k.role, strings.Join(names, ", "))
	}
}

// sum adds up every series of the metric name.
func sum(fams []*dto.MetricFamily, name string) float64 {
	var v float64
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				v += value(m)
			}
		}
	}
	return v
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}
