// Package simulate produces realistic multi-tenant security-log traffic into
// Kafka: Azure Monitor diagnostic exports, CloudTrail batches, Purview-like
// audit rows and plain JSON events from firewalls, EDR and DNS resolvers,
// with a daily rhythm, Poisson noise and scripted incidents (a source going
// silent, one of its collectors failing, its delivery falling behind).
// `gapwatch simulate` uses the classic layout; `gapwatch demo` tells the
// September 2024 story (story.go) and pre-loads its history (history.go).
package simulate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Incident makes one stream lose a share of its events, or deliver them
// later and later, for a while.
type Incident struct {
	Tenant, Source string
	After, For     time.Duration // from the simulation's start
	Loss           float64       // 1 = silence, 0.7 = 70 % of events lost
	// Collector, when not 0, limits the loss to the events of that collector
	// (1-based) of the stream's collectors: of three, collector 2 carries
	// half the stream, the others a quarter each.
	Collector int
	// DelayPerMinute makes delivery fall behind: every minute of the incident
	// adds this much to the events' lateness (arrival − event time); none is
	// lost. Arrivals keep their pace: the shipper sends older and older events.
	DelayPerMinute time.Duration
}

// ParseIncident reads "tenant/source:after:for[:loss]", e.g. "acme/firewall:2m:10m" or "acme/edr:0s:1h:0.7".
func ParseIncident(s string) (Incident, error) {
	parts := strings.Split(s, ":")
	stream := strings.SplitN(parts[0], "/", 2)
	if len(parts) < 3 || len(parts) > 4 || len(stream) != 2 {
		return Incident{}, fmt.Errorf("incident %q: want tenant/source:after:for[:loss]", s)
	}
	in := Incident{Tenant: stream[0], Source: stream[1], Loss: 1}
	var err error
	if in.After, err = time.ParseDuration(parts[1]); err != nil {
		return in, fmt.Errorf("incident %q: after: %w", s, err)
	}
	if in.For, err = time.ParseDuration(parts[2]); err != nil {
		return in, fmt.Errorf("incident %q: for: %w", s, err)
	}
	if len(parts) == 4 {
		if in.Loss, err = strconv.ParseFloat(parts[3], 64); err != nil || in.Loss < 0 || in.Loss > 1 {
			return in, fmt.Errorf("incident %q: loss must be in [0, 1]", s)
		}
	}
	return in, nil
}

// Config shapes the simulated traffic.
type Config struct {
	Brokers   []string      // default 127.0.0.1:9092
	Topic     string        // default logs
	Tenants   int           // default 5
	Rate      float64       // mean events per second over all streams; default 200
	Duration  time.Duration // 0 runs until the context ends
	Seed      uint64        // same seed, same traffic
	Incidents []Incident
	// Story lays the tenants out as the demo's story (Story): products in
	// their real formats, tenants of different sizes; Tenants must be at
	// least StoryMinTenants. Its incidents come from Generator.Story, not
	// from Incidents (which are added to them).
	Story bool
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if c.Topic == "" {
		c.Topic = "logs"
	}
	if c.Tenants == 0 {
		c.Tenants = 5
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	if c.Tenants < 1 || c.Tenants > 100_000 {
		return errors.New("simulate: tenants must be in [1, 100000]")
	}
	if c.Rate <= 0 || c.Rate > 1e6 {
		return errors.New("simulate: rate must be in (0, 1e6] events/s")
	}
	if c.Story && c.Tenants < StoryMinTenants {
		return fmt.Errorf("simulate: the story needs at least %d tenants", StoryMinTenants)
	}
	return nil
}

type format int

const (
	plainFirewall format = iota // {"tenant":...,"source":"firewall","@timestamp":RFC3339 ms}
	plainEDR                    // {"tenant_id":...,"log_type":"edr","timestamp":epoch ms}
	plainDNS                    // {"tenantId":...,"category":"dns","time":epoch s}
	azure                       // {"records":[...]} with category
	cloudTrail                  // {"Records":[...]}
	purview                     // a Log Analytics row of audit records: {"TenantId":...,"Type":...,"TimeGenerated":...}
)

// Stream is one simulated (tenant, source) stream as gapwatch will see it.
type Stream struct {
	Tenant, Source string
	Rate           float64 // mean events per second (the daily mean)
	Org            string  // the organisation behind the tenant id
	format         format
	collectors     int     // collectors the stream's events come through (0: none named)
	daily          float64 // amplitude of the daily rhythm
}

var tenantNames = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"}

// Generator makes the traffic; it is pure and deterministic for a seed.
type Generator struct {
	cfg     Config
	rng     *rand.Rand
	streams []Stream
	start   time.Time
	seq     uint64
	story   Story
}

// NewGenerator lays out the streams of cfg; start is the simulation's time zero.
func NewGenerator(cfg Config, start time.Time) *Generator {
	cfg = cfg.WithDefaults()
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x9a9)), start: start}
	if cfg.Story {
		g.layOutStory()
		return g
	}
	var weights []float64
	for i := range cfg.Tenants {
		org := fmt.Sprintf("tenant-%03d", i)
		if i < len(tenantNames) {
			org = tenantNames[i]
		}
		size := 0.5 + 1.5*g.rng.Float64() // tenants differ in size
		add := func(tenant, source string, f format, w float64) {
			g.streams = append(g.streams, Stream{Tenant: tenant, Source: source, format: f, Org: org, daily: 0.5})
			weights = append(weights, size*w)
		}
		add(org, "firewall", plainFirewall, 4)
		add(org, "edr", plainEDR, 2)
		add(org, "dns", plainDNS, 3)
		add(azureTenant(org), "SignInLogs", azure, 1)
		add(azureTenant(org), "AuditLogs", azure, 0.3)
		add(awsAccount(org), "aws.cloudtrail", cloudTrail, 1.5)
	}
	g.spread(weights)
	return g
}

// spread shares the configured rate out over the streams by weight.
func (g *Generator) spread(weights []float64) {
	var total float64
	for _, w := range weights {
		total += w
	}
	for i := range g.streams {
		g.streams[i].Rate = g.cfg.Rate * weights[i] / total
	}
}

// Streams lists the simulated streams.
func (g *Generator) Streams() []Stream { return g.streams }

func azureTenant(org string) string {
	h := fnv.New128a()
	h.Write([]byte(org))
	b := h.Sum(nil)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func awsAccount(org string) string {
	h := fnv.New64a()
	h.Write([]byte(org))
	return fmt.Sprintf("%012d", h.Sum64()%1_000_000_000_000)
}

// RateAt is the stream's mean events per second at t: its daily rhythm is
// busiest mid-afternoon UTC and quietest at night (with the classic
// amplitude of 0.5, a third of the peak).
func (s *Stream) RateAt(t time.Time) float64 {
	t = t.UTC()
	h := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	return s.Rate * (1 + s.daily*math.Sin(2*math.Pi*(h-9)/24))
}

// Message is one Kafka record to produce.
type Message struct {
	Key   []byte
	Value []byte
	Time  time.Time // arrival: the record timestamp
}

// Tick returns the messages of the interval [at, at+d): Poisson counts per
// stream around its rate times the daily rhythm, minus any incident's loss.
// It also returns how many events they carry per stream, for tests.
func (g *Generator) Tick(at time.Time, d time.Duration) ([]Message, map[[2]string]int) {
	var out []Message
	sent := map[[2]string]int{}
	for i := range g.streams {
		s := &g.streams[i]
		n := int(Poisson(g.rng, s.RateAt(at)*d.Seconds()))
		per := 1
		if s.format == azure || s.format == cloudTrail {
			per = 10 // exports batch records
		}
		for n > 0 {
			k := min(per, n)
			n -= k
			// Incidents act at each message's arrival, so that a stream
			// stopped at a bucket boundary sends nothing after it.
			arrival := at.Add(time.Duration(g.rng.Int64N(int64(d))))
			var kept [maxCollectors + 1]int // events per collector (index 0: none named)
			for range k {
				c := g.collector(s)
				if g.rng.Float64() >= g.loss(s, arrival, c) {
					kept[c]++
				}
			}
			var delay time.Duration
			if in := g.active(s, arrival, func(in Incident) bool { return in.DelayPerMinute > 0 }); in != nil {
				delay = time.Duration(float64(in.DelayPerMinute) * arrival.Sub(g.start.Add(in.After)).Minutes())
			}
			for c, m := range kept {
				if m > 0 {
					sent[[2]string{s.Tenant, s.Source}] += m
					out = append(out, Message{Key: []byte(s.Tenant + "/" + s.Source), Value: g.render(s, arrival, m, c, delay), Time: arrival})
				}
			}
		}
	}
	return out, sent
}

// maxCollectors bounds Stream.collectors.
const maxCollectors = 3

// collector picks the collector (1-based; 0: none named) an event of s comes
// through. Of three, the middle one carries half the traffic: it serves the
// busiest sites.
func (g *Generator) collector(s *Stream) int {
	switch s.collectors {
	case 0:
		return 0
	case 3:
		switch r := g.rng.Float64(); {
		case r < 0.25:
			return 1
		case r < 0.75:
			return 2
		}
		return 3
	}
	return 1 + g.rng.IntN(s.collectors)
}

// active returns the first incident of s under way at t that match accepts.
func (g *Generator) active(s *Stream, t time.Time, match func(Incident) bool) *Incident {
	off := t.Sub(g.start)
	for i := range g.cfg.Incidents {
		in := &g.cfg.Incidents[i]
		if (in.Tenant == s.Tenant || in.Tenant == s.Org) && in.Source == s.Source && off >= in.After && off < in.After+in.For && match(*in) {
			return in
		}
	}
	return nil
}

// loss is the share of the events of s through collector c (0: none named)
// that an incident loses at t.
func (g *Generator) loss(s *Stream, t time.Time, c int) float64 {
	in := g.active(s, t, func(in Incident) bool { return in.Loss > 0 && (in.Collector == 0 || in.Collector == c) })
	if in == nil {
		return 0
	}
	return in.Loss
}

// lag is how long an event waited before it arrived: shippers buffer for
// seconds, sometimes minutes.
func lag(r *rand.Rand) time.Duration {
	lag := time.Duration(r.ExpFloat64() * float64(2*time.Second))
	if r.IntN(100) == 0 {
		lag += time.Duration(r.IntN(300)) * time.Second
	}
	return lag
}

// eventTime is a little before arrival, and delay more while delivery is behind.
func (g *Generator) eventTime(arrival time.Time, delay time.Duration) time.Time {
	return arrival.Add(-lag(g.rng) - delay)
}

var actions = []string{"allow", "deny", "drop"}

// render writes n events of s that arrive at arrival, through collector c
// (0: none named), delay behind their usual lateness.
func (g *Generator) render(s *Stream, arrival time.Time, n, c int, delay time.Duration) []byte {
	g.seq++
	ip := fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	collector := fmt.Sprintf("%s-collector-%d", s.Source, max(c, 1))
	switch s.format {
	case plainFirewall:
		return fmt.Appendf(nil, `{"tenant":%q,"source":%q,"@timestamp":%q,"host":"fw-%02d","collector":%q,"action":%q,"src_ip":%q,"dst_ip":"203.0.113.%d","dst_port":%d,"proto":"tcp","bytes":%d,"rule":"r-%d"}`,
			s.Tenant, s.Source, g.eventTime(arrival, delay).Format("2006-01-02T15:04:05.000Z07:00"), g.rng.IntN(4), collector, actions[g.rng.IntN(3)], ip, g.rng.IntN(256), []int{22, 53, 80, 443, 3389}[g.rng.IntN(5)], g.rng.IntN(1<<20), g.rng.IntN(900))
	case plainEDR:
		return fmt.Appendf(nil, `{"tenant_id":%q,"log_type":%q,"timestamp":%d,"collector":%q,"device":{"name":"wks-%04d","os":"windows"},"event":"process_start","process":{"name":"powershell.exe","pid":%d,"parent":"explorer.exe","cmdline":"powershell -nop -c Get-Date"},"user":"user%d"}`,
			s.Tenant, s.Source, g.eventTime(arrival, delay).UnixMilli(), collector, g.rng.IntN(5000), 1000+g.rng.IntN(60000), g.rng.IntN(500))
	case plainDNS:
		return fmt.Appendf(nil, `{"tenantId":%q,"category":"dns","time":%d,"client":%q,"query":"host%d.example.com","qtype":"A","rcode":"NOERROR","resolver":"dns-%d","answers":["198.51.100.%d"],"ttl":300}`,
			s.Tenant, g.eventTime(arrival, delay).Unix(), ip, g.rng.IntN(10000), g.rng.IntN(3), g.rng.IntN(256))
	case purview:
		return g.renderPurview(s, arrival, delay)
	case azure:
		b := []byte(`{"records":[`)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"time":%q,"resourceId":"/tenants/%s/providers/Microsoft.aadiam","operationName":"%s","category":%q,"tenantId":%q,"resultType":"0","callerIpAddress":%q,"correlationId":"%08x-0000-4000-8000-%012x","identity":"user%d@%s.example","level":4,"location":"westeurope"}`,
				g.eventTime(arrival, delay).Format("2006-01-02T15:04:05.0000000Z"), s.Tenant, map[string]string{"SignInLogs": "Sign-in activity", "AuditLogs": "Update user"}[s.Source],
				s.Source, s.Tenant, ip, g.seq, i, g.rng.IntN(500), s.Org)
		}
		return append(b, "]}"...)
	default: // cloudTrail
		b := []byte(`{"Records":[`)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDA%012d","accountId":%q,"userName":"svc-%d"},"eventTime":%q,"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","sourceIPAddress":%q,"requestID":"%016X","eventID":"%08x-%04x","readOnly":true,"recipientAccountId":%q}`,
				g.rng.IntN(1e9), s.Tenant, g.rng.IntN(50), g.eventTime(arrival, delay).Format(time.RFC3339), ip, g.rng.Uint64(), g.seq, i, s.Tenant)
		}
		return append(b, "]}"...)
	}
}

// Run produces the traffic to Kafka once a second until cfg.Duration has passed
// or ctx ends. It returns the number of messages produced.
func Run(ctx context.Context, cfg Config, w *kafka.Writer) (int, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	return NewGenerator(cfg, time.Now()).Run(ctx, w)
}

// Run produces g's traffic from its start, once a second, until the
// configured duration has passed or ctx ends. It returns the number of
// messages produced.
func (g *Generator) Run(ctx context.Context, w *kafka.Writer) (int, error) {
	cfg, now := g.cfg, g.start
	sent := 0
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := now
	for {
		select {
		case <-ctx.Done():
			return sent, nil
		case tick := <-t.C:
			msgs, _ := g.Tick(last, tick.Sub(last))
			last = tick
			km := make([]kafka.Message, len(msgs))
			for i, m := range msgs {
				km[i] = kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}
			}
			if err := write(ctx, w, km); err != nil {
				if ctx.Err() != nil {
					return sent, nil
				}
				return sent, fmt.Errorf("producing to %s: %w", cfg.Topic, err)
			}
			sent += len(km)
			if cfg.Duration > 0 && tick.Sub(now) >= cfg.Duration {
				return sent, nil
			}
		}
	}
}

// write produces msgs, waiting up to 10 s for a topic that the first write
// asked the broker to create (it answers "unknown topic" until it exists).
func write(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) error {
	for wait := 0; ; wait++ {
		err := w.WriteMessages(ctx, msgs...)
		if !errors.Is(err, kafka.UnknownTopicOrPartition) || wait == 20 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// NewWriter returns a synchronous, fully acknowledged producer for cfg.Topic.
func NewWriter(cfg Config) *kafka.Writer {
	cfg = cfg.WithDefaults()
	return &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  cfg.Topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              1000,
		BatchBytes:             8 << 20,
		BatchTimeout:           20 * time.Millisecond,
		AllowAutoTopicCreation: true,
	}
}

// String describes the incident for people, e.g. "acme/firewall loses 100% after 6m for 10m".
func (in Incident) String() string {
	switch {
	case in.DelayPerMinute > 0:
		return fmt.Sprintf("%s/%s falls %s further behind every minute after %s for %s", in.Tenant, in.Source, in.DelayPerMinute, in.After, in.For)
	case in.Collector > 0:
		return fmt.Sprintf("%s/%s collector %d loses %.0f%% after %s for %s", in.Tenant, in.Source, in.Collector, 100*in.Loss, in.After, in.For)
	}
	return fmt.Sprintf("%s/%s loses %.0f%% after %s for %s", in.Tenant, in.Source, 100*in.Loss, in.After, in.For)
}
