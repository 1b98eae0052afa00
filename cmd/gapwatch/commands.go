package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/dashboards/web"
	"github.com/gapwatch/gapwatch/detect/live"
	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/chstore"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// loadConfig parses the common flags of fs and loads the configuration.
func loadConfig(fs *flag.FlagSet, args []string) (config.Config, error) {
	path := fs.String("config", "", "YAML configuration file (default gapwatch.yaml if present)")
	httpAddr := fs.String("http-addr", "", "API listen address (overrides GAPWATCH_HTTP_ADDR)")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return config.Config{}, err
		}
		return config.Config{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return config.Config{}, usagef("unexpected arguments %q", fs.Args())
	}
	if *httpAddr != "" {
		os.Setenv("GAPWATCH_HTTP_ADDR", *httpAddr)
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		return cfg, usageError{err}
	}
	if os.Getenv("GOMEMLIMIT") == "" && cfg.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	return cfg, nil
}

// store is what the roles need of a store.
type store interface {
	ingest.Sink
	api.RateReader
	api.GapReader
	api.SilenceStore
	api.ExpectationReader
	api.TenantLister
	api.StreamCounter
	live.Store
	Ping(ctx context.Context) error
	Close() error
}

var (
	_ store = (*chstore.Store)(nil)
	_ store = (*memstore.Store)(nil)
)

func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store, error) {
	if cfg.Store == "memory" {
		return memstore.New(cfg.Memory.Retention), nil
	}
	s, err := chstore.Open(ctx, cfg.ClickHouse, log)
	if err != nil {
		return nil, err
	}
	if err := s.CheckSchema(ctx); err != nil {
		s.Close()
		return nil, err
	}
	log.Info("connected to ClickHouse", "addr", cfg.ClickHouse.Addr, "version", s.Version(), "database", cfg.ClickHouse.Database)
	return s, nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

var knownRoles = []string{"ingest", "detect", "api"}

func cmdRun(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	roleFlag := fs.String("role", "ingest,detect,api", "comma list of roles: ingest, detect, api")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	roles := map[string]bool{}
	for _, r := range strings.Split(*roleFlag, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(knownRoles, r) {
			return usagef("unknown role %q (want ingest, detect, api)", r)
		}
		roles[r] = true
	}
	if err := cfg.HTTP.CheckExposure(cfg.HTTP.Addr); roles["api"] && err != nil {
		return usageError{err}
	}
	log := newLogger()
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := newRegistry()
	return runRoles(ctx, cfg, roles, st, reg, log)
}

// runRoles runs the selected roles on st until ctx ends or one fails.
func runRoles(ctx context.Context, cfg config.Config, roles map[string]bool, st store, reg *prometheus.Registry, log *slog.Logger) error {
	g, ctx := errgroup.WithContext(ctx)
	checks := []api.Check{{Name: "store", Fn: func(ctx context.Context) error {
		err := st.Ping(ctx)
		if err != nil && cfg.Store == "clickhouse" { // e.g. a password changed under a running process
			err = fmt.Errorf("ClickHouse at %s as %q: %w", cfg.ClickHouse.Addr, cfg.ClickHouse.User, err)
		}
		return err
	}}}
	// Every Kafka connection (consumer group, fetches, dead letters, alerts,
	// admin) speaks the configured TLS and SASL.
	dialer, transport, err := cfg.Kafka.Clients()
	if err != nil {
		return usageError{err}
	}
	if roles["ingest"] || roles["detect"] {
		probe := newKafkaProbe(cfg.Kafka.Brokers, transport, log)
		checks = append(checks, api.Check{Name: "kafka", Fn: probe.Check})
		g.Go(func() error { return probe.Run(ctx) })
	}
	if roles["ingest"] {
		// Stream cap alerts go to the alert topic like the detector's.
		capAlerts := live.NewKafka(live.KafkaConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.AlertsTopic, Partitions: cfg.Detect.AlertPartitions,
			Dialer: dialer, Transport: transport})
		defer capAlerts.Close()
		in, err := ingest.New(cfg.Ingest, ingest.Deps{Sink: st, Registry: reg, Log: log, Dialer: dialer, Transport: transport,
			Alerts: capAlerts, AlertsTopic: cfg.AlertsTopic})
		if err != nil {
			return usageError{err}
		}
		checks = append(checks, api.Check{Name: "ingest", Fn: func(context.Context) error { return in.Readiness() }})
		g.Go(func() error { return in.Run(ctx) })
		if ch, ok := st.(*chstore.Store); ok {
			g.Go(func() error { return ch.RunRetention(ctx, time.Hour, reg) })
		}
	}
	var streams api.StreamLister
	if roles["detect"] {
		alerts := live.NewKafka(live.KafkaConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.AlertsTopic, Partitions: cfg.Detect.AlertPartitions,
			Dialer: dialer, Transport: transport})
		defer alerts.Close()
		d, err := live.New(cfg.Live(), live.Deps{Store: st, Sink: alerts, Input: alerts, Registry: reg, Log: log})
		if err != nil {
			return usageError{err}
		}
		checks = append(checks, api.Check{Name: "detect", Fn: func(context.Context) error {
			if !d.Ready() {
				return errors.New("rebuilding baselines from history")
			}
			return nil
		}})
		streams = detectStreams{d}
		g.Go(func() error { return d.Run(ctx) })
	}
	if roles["api"] {
		input := live.NewKafka(live.KafkaConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.AlertsTopic})
		defer input.Close()
		httpCfg := cfg.HTTP
		httpCfg.Version = versionString()
		httpCfg.Explain = api.ExplainConfig{Engine: cfg.Live().Engine, History: cfg.Live().History}
		for _, r := range knownRoles {
			if roles[r] {
				httpCfg.Roles = append(httpCfg.Roles, r)
			}
		}
		srv := api.New(httpCfg, api.Deps{Rates: st, Gaps: st, Streams: streams, Silences: st, Expectations: st,
			Tenants: st, Counts: st, Watermark: ingestWatermark{input: input, store: st, topics: cfg.Ingest.Topics},
			Gatherer: reg, Ready: checks, Log: log, Page: web.Handler()})
		g.Go(func() error { return srv.Run(ctx) })
	}
	return g.Wait()
}

// ingestWatermark reads the ingest watermark as detection does: over the
// input topics' partitions that Kafka has, from their progress in storage.
type ingestWatermark struct {
	input  live.Input
	store  storage.OffsetReader
	topics []string
}

func (w ingestWatermark) Watermark(ctx context.Context) (time.Time, string, error) {
	parts, err := w.input.Partitions(ctx, w.topics)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("listing input partitions: %w", err)
	}
	return storage.IngestWatermark(ctx, w.store, w.topics, parts)
}

// detectStreams lists the detector's streams for the API.
type detectStreams struct{ d *live.Detector }

func (s detectStreams) Streams(tenant, source string) []api.Stream {
	var out []api.Stream
	for _, st := range s.d.Streams(tenant, source) {
		out = append(out, api.Stream{Tenant: st.Tenant, Source: st.Source, Status: st.Status, LastSeen: st.LastSeen,
			EventsPerMin: st.EventsPerMin, HistoryHours: st.HistoryHours, Profile: st.Profile, Weekend: st.Weekend})
	}
	return out
}

func cmdMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	printSQL := fs.Bool("print-sql", false, "print the statements for this server instead of running them")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	s, err := chstore.Open(ctx, cfg.ClickHouse, newLogger())
	if err != nil {
		return err
	}
	defer s.Close()
	if *printSQL {
		migs, err := chstore.Migrations(cfg.ClickHouse.Database, s.Features())
		if err != nil {
			return err
		}
		for _, m := range migs {
			fmt.Fprintf(stdout, "-- %s\n", m.Name)
			for _, st := range m.Statements {
				fmt.Fprintf(stdout, "%s;\n\n", st)
			}
		}
		return nil
	}
	applied, err := s.Migrate(ctx)
	if err != nil {
		return err
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m.Name)
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s on ClickHouse %s at %s is at schema version %d (modern DDL: %v)\n",
		cfg.ClickHouse.Database, s.Version(), cfg.ClickHouse.Addr, v, s.Features().Modern)
	return nil
}

// cmdCheckConfig prints the effective configuration, every default filled and
// secrets blanked, or refuses (exit 2) a configuration that does not load or
// that is unsafe in production (config.Insecure).
func cmdCheckConfig(_ context.Context, args []string, stdout io.Writer) error {
	cfg, err := loadConfig(flag.NewFlagSet("check-config", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	warnings, err := cfg.Insecure()
	if err != nil {
		return usageError{err}
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "gapwatch check-config: warning:", w)
	}
	fmt.Fprint(stdout, cfg.Redacted())
	return nil
}

type incidents []simulate.Incident

func (i *incidents) String() string { return fmt.Sprint(*i) }
func (i *incidents) Set(s string) error {
	in, err := simulate.ParseIncident(s)
	if err != nil {
		return err
	}
	*i = append(*i, in)
	return nil
}

func simulateFlags(fs *flag.FlagSet, sc *simulate.Config) {
	fs.IntVar(&sc.Tenants, "tenants", 5, "number of simulated tenants (6 streams each)")
	fs.Float64Var(&sc.Rate, "rate", 200, "mean events per second over all streams")
	fs.Uint64Var(&sc.Seed, "seed", 1, "random seed: the same seed gives the same traffic")
	fs.Var((*incidents)(&sc.Incidents), "incident", "tenant/source:after:for[:loss], e.g. acme/firewall:2m:10m (repeatable)")
}

func cmdSimulate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	var sc simulate.Config
	simulateFlags(fs, &sc)
	fs.StringVar(&sc.Topic, "topic", "", "topic to produce to (default: the first input topic)")
	fs.DurationVar(&sc.Duration, "duration", 0, "stop after this long (default: until interrupted)")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	sc.Brokers = cfg.Kafka.Brokers
	if sc.Topic == "" {
		sc.Topic = cfg.Ingest.Topics[0]
	}
	if err := sc.WithDefaults().Validate(); err != nil {
		return usageError{err}
	}
	_, transport, err := cfg.Kafka.Clients()
	if err != nil {
		return usageError{err}
	}
	w := simulate.NewWriter(sc)
	w.Transport = transport // TLS and SASL as configured
	defer w.Close()
	fmt.Fprintf(stdout, "simulating %d tenants at %.0f events/s into %s on %s\n", sc.Tenants, sc.Rate, sc.Topic, strings.Join(sc.Brokers, ","))
	n, err := simulate.Run(ctx, sc, w)
	fmt.Fprintf(stdout, "produced %d messages\n", n)
	return err
}
