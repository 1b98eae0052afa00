// Package config loads gapwatch's configuration: one YAML file, then GAPWATCH_*
// environment variables, then command-line flags, each overriding the last.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gapwatch/gapwatch/config/tlsclient"
	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/detect/live"
	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// DefaultFile is read when --config is not given and the file exists.
const DefaultFile = "gapwatch.yaml"

// Config is the whole configuration. Fields document their defaults.
type Config struct {
	Store       string         `yaml:"store"`        // clickhouse (default) or memory
	Bucket      time.Duration  `yaml:"bucket"`       // rate bucket width; default 1m
	AlertsTopic string         `yaml:"alerts_topic"` // default gapwatch.alerts
	Kafka       Kafka          `yaml:"kafka"`
	Ingest      ingest.Config  `yaml:"ingest"` // brokers and bucket come from kafka.brokers and bucket
	ClickHouse  chstore.Config `yaml:"clickhouse"`
	HTTP        api.Config     `yaml:"http"`
	Detect      Detect         `yaml:"detect"`
	Memory      Memory         `yaml:"memory"`
	// MemoryLimitMB is the Go runtime's soft memory limit: the garbage collector
	// works harder near it instead of letting the heap double. Default 256; -1 for
	// none; the GOMEMLIMIT environment variable, when set, wins.
	MemoryLimitMB int `yaml:"memory_limit_mb"`
}

// Kafka says where the Kafka cluster is and how to talk to it. Every Kafka
// connection (ingest, dead letters, alerts, admin, simulate) uses it: see Clients.
type Kafka struct {
	Brokers []string         `yaml:"brokers"` // default 127.0.0.1:9092
	TLS     tlsclient.Config `yaml:"tls"`     // default plaintext
	SASL    SASL             `yaml:"sasl"`    // default none
}

// SASL is Kafka's SASL authentication.
type SASL struct {
	Mechanism string `yaml:"mechanism"` // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; default empty: no SASL
	Username  string `yaml:"username"`
	Password  string `yaml:"password"` // never logged or printed
}

// Detect configures the detect role. Zero values mean the defaults given.
type Detect struct {
	Workers int `yaml:"workers"` // goroutines judging streams; default GOMAXPROCS
	// Shard and Shards split streams over instances (this one keeps hash % shards
	// == shard); two instances with the same shard are hot-hot replicas.
	Shard  int `yaml:"shard"`
	Shards int `yaml:"shards"` // default 1
	// FalseAlarmsPerWeek is the false-gap budget per stream-week all thresholds derive from; default 0.03.
	FalseAlarmsPerWeek float64       `yaml:"false_alarms_per_week"`
	ResolveAfter       time.Duration `yaml:"resolve_after"` // healthy time before a gap resolves; default 15m
	RetireAfter        time.Duration `yaml:"retire_after"`  // silence after which a stream is forgotten; default 168h
	// WeekendFloor is the share of a weekday's rate a stream's weekend may
	// carry before its daily profile is learned (two weeks): 1 judges weekends
	// as weekdays; default 0.25.
	WeekendFloor    float64       `yaml:"weekend_floor"`
	Interval        time.Duration `yaml:"interval"`         // watermark poll; default 1s
	Delay           time.Duration `yaml:"delay"`            // judge this far behind the watermark; default 1s
	History         time.Duration `yaml:"history"`          // history replayed at start-up; default 360h
	MaxLag          time.Duration `yaml:"max_lag"`          // watermark lag that degrades the pipeline; default 5m
	Heartbeat       time.Duration `yaml:"heartbeat"`        // pipeline.heartbeat period; default 1m
	AlertPartitions int           `yaml:"alert_partitions"` // partitions of a created alert topic; default 3
	FillWindow      time.Duration `yaml:"fill_window"`      // late data of a resolved gap's period updates it this long; default 24h, negative: never
	// Coverage lists the sources tenants must send (coverage.missing when absent).
	Coverage []live.CoverageRule `yaml:"coverage"`
	// TenantLabels labels tenants for coverage rules that select by label.
	TenantLabels map[string][]string `yaml:"tenant_labels"`
}

// Live returns the detect role's configuration.
func (c Config) Live() live.Config {
	d := c.Detect
	return live.Config{
		Engine: detect.Config{
			Bucket: c.Bucket, Workers: d.Workers, Shard: d.Shard, Shards: d.Shards,
			FalseAlarmsPerWeek: d.FalseAlarmsPerWeek, ResolveAfter: d.ResolveAfter,
			RetireAfter: d.RetireAfter, WeekendFloor: d.WeekendFloor,
		},
		Topics:   c.Ingest.Topics,
		Interval: d.Interval, Delay: d.Delay, History: d.History, MaxLag: d.MaxLag, Heartbeat: d.Heartbeat,
		Coverage: d.Coverage, TenantLabels: d.TenantLabels, FillWindow: d.FillWindow,
	}
}

// Memory configures the in-memory store.
type Memory struct {
	Retention time.Duration `yaml:"retention"` // buckets kept behind the newest; default 24h
}

// Load reads path (if path is empty, DefaultFile when present), then applies
// the environment given by getenv. The result has defaults filled and is validated.
func Load(path string, getenv func(string) string) (Config, error) {
	var c Config
	explicit := path != ""
	if !explicit {
		path = DefaultFile
	}
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config %s: %s", path, oneLine(err))
		}
	case explicit || !errors.Is(err, os.ErrNotExist):
		return c, fmt.Errorf("config: %w", err)
	}
	if err := c.applyEnv(getenv); err != nil {
		return c, err
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

func (c *Config) applyEnv(getenv func(string) string) error {
	flag := func(name string, dst *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: want true or false, got %q", name, v)
			}
			*dst = b
			return nil
		}
	}
	list := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	set := map[string]func(string) error{
		"GAPWATCH_KAFKA_BROKERS":        func(v string) error { c.Kafka.Brokers = list(v); return nil },
		"GAPWATCH_INPUT_TOPICS":         func(v string) error { c.Ingest.Topics = list(v); return nil },
		"GAPWATCH_GROUP":                func(v string) error { c.Ingest.Group = v; return nil },
		"GAPWATCH_ALERTS_TOPIC":         func(v string) error { c.AlertsTopic = v; return nil },
		"GAPWATCH_STORE":                func(v string) error { c.Store = v; return nil },
		"GAPWATCH_CLICKHOUSE_ADDR":      func(v string) error { c.ClickHouse.Addr = v; return nil },
		"GAPWATCH_CLICKHOUSE_DATABASE":  func(v string) error { c.ClickHouse.Database = v; return nil },
		"GAPWATCH_CLICKHOUSE_USER":      func(v string) error { c.ClickHouse.User = v; return nil },
		"GAPWATCH_CLICKHOUSE_PASSWORD":  func(v string) error { c.ClickHouse.Password = v; return nil },
		"GAPWATCH_HTTP_ADDR":            func(v string) error { c.HTTP.Addr = v; return nil },
		"GAPWATCH_KAFKA_TLS":            flag("GAPWATCH_KAFKA_TLS", &c.Kafka.TLS.Enabled),
		"GAPWATCH_KAFKA_TLS_CA":         func(v string) error { c.Kafka.TLS.CAFile = v; return nil },
		"GAPWATCH_KAFKA_SASL_MECHANISM": func(v string) error { c.Kafka.SASL.Mechanism = v; return nil },
		"GAPWATCH_KAFKA_SASL_USERNAME":  func(v string) error { c.Kafka.SASL.Username = v; return nil },
		"GAPWATCH_KAFKA_SASL_PASSWORD":  func(v string) error { c.Kafka.SASL.Password = v; return nil },
		"GAPWATCH_CLICKHOUSE_TLS":       flag("GAPWATCH_CLICKHOUSE_TLS", &c.ClickHouse.TLS.Enabled),
		"GAPWATCH_CLICKHOUSE_TLS_CA":    func(v string) error { c.ClickHouse.TLS.CAFile = v; return nil },
		"GAPWATCH_BUCKET": func(v string) (err error) {
			c.Bucket, err = time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("GAPWATCH_BUCKET: %w", err)
			}
			return nil
		},
	}
	for name, f := range set {
		if v := getenv(name); v != "" {
			if err := f(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// WithDefaults fills every unset field and copies the shared settings into the
// per-role configs.
func (c Config) WithDefaults() Config {
	if c.Store == "" {
		c.Store = "clickhouse"
	}
	if c.Bucket == 0 {
		c.Bucket = time.Minute
	}
	if c.AlertsTopic == "" {
		c.AlertsTopic = "gapwatch.alerts"
	}
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = []string{"127.0.0.1:9092"}
	}
	if c.MemoryLimitMB == 0 {
		c.MemoryLimitMB = 256
	}
	if c.Memory.Retention == 0 {
		c.Memory.Retention = 24 * time.Hour
	}
	c.Ingest.Brokers = c.Kafka.Brokers
	c.Ingest.Bucket = c.Bucket
	if len(c.Ingest.Limits.PriorityTenants) == 0 {
		c.Ingest.Limits.PriorityTenants = c.policyTenants()
	}
	c.Ingest = c.Ingest.WithDefaults()
	c.ClickHouse = c.ClickHouse.WithDefaults()
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = "127.0.0.1:8080"
	}
	c.HTTP.Bucket = c.Bucket
	c.Kafka.SASL.Mechanism = strings.ToUpper(c.Kafka.SASL.Mechanism)
	if c.Detect.AlertPartitions == 0 {
		c.Detect.AlertPartitions = 3
	}
	// The detect role's defaults live with it; copy them here so that
	// check-config shows what runs.
	l := c.Live().WithDefaults()
	d := &c.Detect
	d.Workers, d.Shards, d.FalseAlarmsPerWeek = l.Engine.Workers, l.Engine.Shards, l.Engine.FalseAlarmsPerWeek
	d.ResolveAfter, d.RetireAfter, d.WeekendFloor = l.Engine.ResolveAfter, l.Engine.RetireAfter, l.Engine.WeekendFloor
	d.Interval, d.Delay, d.History, d.MaxLag, d.Heartbeat, d.FillWindow = l.Interval, l.Delay, l.History, l.MaxLag, l.Heartbeat, l.FillWindow
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	if c.MemoryLimitMB < -1 {
		return fmt.Errorf("memory_limit_mb %d: want a size in MiB, or -1 for none", c.MemoryLimitMB)
	}
	if c.Store != "clickhouse" && c.Store != "memory" {
		return fmt.Errorf("store %q: want clickhouse or memory", c.Store)
	}
	if err := c.Ingest.Validate(); err != nil {
		return err
	}
	if err := c.Live().Validate(); err != nil {
		return err
	}
	if c.Detect.AlertPartitions < 0 {
		return fmt.Errorf("detect: alert_partitions must be positive, got %d", c.Detect.AlertPartitions)
	}
	if c.Store == "clickhouse" {
		if err := c.ClickHouse.Validate(); err != nil {
			return err
		}
	}
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	return c.HTTP.Access.Validate()
}

// oneLine folds yaml.v3's multi-line "unmarshal errors" into one line.
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// Redacted returns c as YAML with secrets blanked, for check-config.
func (c Config) Redacted() string {
	const blank = "********"
	if c.ClickHouse.Password != "" {
		c.ClickHouse.Password = blank
	}
	if c.Kafka.SASL.Password != "" {
		c.Kafka.SASL.Password = blank
	}
	// The hash of a weak token can be searched for: not shown either.
	c.HTTP.Tokens = slices.Clone(c.HTTP.Tokens)
	for i := range c.HTTP.Tokens {
		c.HTTP.Tokens[i].SHA256 = blank
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return err.Error()
	}
	return string(out)
}

// policyTenants are the tenants the coverage policy names (detect.coverage
// rules' tenants other than "*", and the tenants of detect.tenant_labels),
// sorted: ingest admits their streams first (ingest.Limits.PriorityTenants).
func (c Config) policyTenants() []string {
	var out []string
	for _, r := range c.Detect.Coverage {
		for _, t := range r.Tenants {
			if t != "*" {
				out = append(out, t)
			}
		}
	}
	for t := range c.Detect.TenantLabels {
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
