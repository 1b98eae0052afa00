package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/simulate"
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

// cmdDemo runs everything in one process: an embedded Kafka-protocol broker
// (kfake), the simulator producing into it, ingest into the in-memory store, and
// the API.
func cmdDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var sc simulate.Config
	simulateFlags(fs, &sc)
	duration := fs.Duration("duration", 0, "stop after this long (default: until interrupted)")
	httpAddr := fs.String("http-addr", "", "API listen address (default GAPWATCH_HTTP_ADDR or 127.0.0.1:8080)")
	cfgPath := fs.String("config", "", "YAML configuration file: its http section (tokens, TLS) applies")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	t := time.Now()
	// The demo is self-contained: only the listen address is taken from the
	// environment, so GAPWATCH_* settings for a real deployment don't leak in.
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

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "logs"), kfake.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	cfg.Kafka, cfg.Ingest.Brokers = config.Kafka{Brokers: brokers}, brokers // plaintext, whatever the configuration says
	sc.Brokers, sc.Topic = brokers, "logs"

	st := memstore.New(cfg.Memory.Retention)
	reg := newRegistry()
	w := simulate.NewWriter(sc)
	defer w.Close()
	if err := w.WriteMessages(ctx, badMessages()...); err != nil {
		return fmt.Errorf("producing to the embedded broker: %w", err)
	}

	gen := simulate.NewGenerator(sc, t)
	streams := gen.Streams()
	if len(sc.Incidents) == 0 {
		// Something to find: one stream goes silent once its baseline is learned.
		in, err := simulate.ParseIncident(streams[1].Tenant + "/" + streams[1].Source + ":6m:10m")
		if err != nil {
			return err
		}
		sc.Incidents = []simulate.Incident{in}
	}
	fmt.Fprintf(stdout, `gapwatch demo (%s)
  embedded Kafka     %s  topic logs, 6 partitions
  simulated traffic  %d tenants, %d streams, %.0f events/s
  store              in memory, %s retention

  incidents  %s
  gaps       http://%s/api/v1/gaps
  streams    http://%s/api/v1/streams
  rates      http://%s/api/v1/rates?tenant=%s&source=%s&step=1m
  event time http://%s/api/v1/rates?tenant=%s&source=%s&clock=event
  metrics    http://%s/metrics
  ready      http://%s/readyz

Ctrl-C stops.
`, versionString(), brokers[0], sc.WithDefaults().Tenants, len(streams), sc.WithDefaults().Rate, cfg.Memory.Retention,
		sc.Incidents, cfg.HTTP.Addr, cfg.HTTP.Addr, cfg.HTTP.Addr, streams[0].Tenant, streams[0].Source, cfg.HTTP.Addr, streams[3].Tenant, streams[3].Source,
		cfg.HTTP.Addr, cfg.HTTP.Addr)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return runRoles(gctx, cfg, map[string]bool{"ingest": true, "detect": true, "api": true}, st, reg, log)
	})
	g.Go(func() error {
		_, err := simulate.Run(gctx, sc, w)
		return err
	})
	g.Go(func() error { return progress(gctx, stdout, reg, cfg.HTTP.Addr) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	fmt.Fprintln(stdout, "demo stopped")
	return err
}

func badMessages() []kafka.Message {
	out := make([]kafka.Message, len(badSamples))
	for i, b := range badSamples {
		out[i] = kafka.Message{Value: b, Time: time.Now()}
	}
	return out
}

// progress prints a line every 10 seconds with what ingest stored and rejected.
func progress(ctx context.Context, w io.Writer, reg prometheus.Gatherer, addr string) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fams, err := reg.Gather()
		if err != nil {
			return err
		}
		sum := func(name string) float64 {
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
		ready := "not ready"
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			if resp.StatusCode == http.StatusOK {
				ready = "ready"
			}
			resp.Body.Close()
		}
		fmt.Fprintf(w, "%s  events stored %.0f  rejected %.0f  streams %.0f  alerts %.0f  (%s)\n", time.Now().Format("15:04:05"),
			sum("gapwatch_ingest_events_stored_total"), sum("gapwatch_ingest_rejected_total"), sum("gapwatch_ingest_streams"),
			sum("gapwatch_alerts_published_total"), ready)
	}
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
