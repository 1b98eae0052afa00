package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
)

// Collector losses: a lost collector (an agent, a forwarder, a host) takes a
// share of several of a tenant's sources at once. Each tenant below has
// several sources and one such loss: a share of 50–90 % of the events of
// some of its sources (each with probability 0.6, at least two) for 30
// minutes to 12 hours after the two weeks' warm-up. Scored per loss (found
// when any of its sources is alarmed: that pages someone) and per affected
// source (what the alarms tell an auditor was hit).

// tenantTrial is one tenant: its sources' counts (the loss applied).
type tenantTrial struct {
	name       string
	sources    [][]uint64
	windows    [][][2]int64 // per source: labelled windows (no false alarm counted)
	hit        []bool       // the sources the loss took a share of
	start, end int          // the loss, in buckets [start, end)
	share      float64      // of the events lost
	missing    []uint64     // per source: events the loss took
	alerts     [][]alert    // per source
}

type tenantSet struct {
	name         string
	width, phase int64
	start        int64
	warm, n      int
	tenants      []*tenantTrial
}

// collectorLoss applies one loss to tt, avoiding its affected sources'
// labelled windows.
func (ts *tenantSet) collectorLoss(r *rand.Rand, tt *tenantTrial) {
	for {
		dur := int(math.Ceil(logUniform(r, 1800, 12*3600) / float64(ts.width)))
		s := ts.warm + r.IntN(ts.n-ts.warm-dur-2)
		hit := make([]bool, len(tt.sources))
		k := 0
		for i := range hit {
			if r.Float64() < 0.6 {
				hit[i], k = true, k+1
			}
		}
		if k < 2 {
			continue
		}
		clash := false
		a, b := ts.start+int64(s)*ts.width, ts.start+int64(s+dur+2)*ts.width
		for i, h := range hit {
			clash = clash || h && overlapsWindows(tt.windows[i], a, b)
		}
		if clash {
			continue
		}
		tt.start, tt.end, tt.hit, tt.share = s, s+dur, hit, 0.5+0.4*r.Float64()
		tt.missing = make([]uint64, len(hit))
		for i, h := range hit {
			if !h {
				continue
			}
			c := tt.sources[i]
			for j := s; j < s+dur; j++ {
				kept := binomial(r, c[j], 1-tt.share)
				tt.missing[i] += c[j] - kept
				c[j] = kept
			}
		}
		return
	}
}

// syntheticTenants builds tenants of 3–12 security-log sources: each with
// its own volume (log-uniform 0.01–100 events a minute), dispersion,
// day/night ratio and rate drift, sharing the tenant's daily peak, weekend
// dip and a tenant-wide drift (the synthetic model's, main.go, split half
// and half between the tenant's and the source's; without its bursts).
func syntheticTenants(tenants, weeks int, seed uint64) *tenantSet {
	const width = 300
	start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC).Unix() // a Monday
	n := weeks * 7 * 86400 / width
	ts := &tenantSet{name: "synthetic tenants", width: width, start: start, warm: 14 * 86400 / width, n: n}
	r := rand.New(rand.NewPCG(seed, 11))
	for k := range tenants {
		m := 3 + r.IntN(10)
		peak := 8 + 10*r.Float64()
		weekend := 0.3 + 0.7*r.Float64()
		const sigma, phi = driftSigma, driftPhi
		tt := &tenantTrial{name: fmt.Sprintf("tenant-%03d", k), sources: make([][]uint64, m), windows: make([][][2]int64, m)}
		zT := 0.0
		zs := make([]float64, m)
		perMin, disp, amp := make([]float64, m), make([]float64, m), make([]float64, m)
		for i := range m {
			perMin[i] = logUniform(r, 0.01, 100)
			disp[i] = logUniform(r, 0.02, 0.5)
			dayNight := 1.5 + 8.5*r.Float64()
			amp[i] = (dayNight - 1) / (dayNight + 1)
			tt.sources[i] = make([]uint64, n)
		}
		for j := range n {
			t := start + int64(j)*width
			zT = phi*zT + sigma*math.Sqrt(1-phi*phi)*r.NormFloat64()/math.Sqrt2
			for i := range m {
				zs[i] = phi*zs[i] + sigma*math.Sqrt(1-phi*phi)*r.NormFloat64()/math.Sqrt2
				z := zT + zs[i]
				tt.sources[i][j] = simulate.GammaPoisson(r, perMin[i]*5*synthShape(t, amp[i], peak, weekend)*math.Exp(z-sigma*sigma/2), disp[i])
			}
		}
		ts.collectorLoss(r, tt)
		ts.tenants = append(ts.tenants, tt)
	}
	return ts
}

// twitterTenants makes each tenant the five NAB Twitter series together (a
// tenant whose sources' real traffic moves together as it does), each with
// its own collector loss; their labelled windows are kept.
func twitterTenants(sets []*dataset, tenants int, seed uint64) *tenantSet {
	var tw []*dataset
	for _, ds := range sets {
		if ds.group == "NAB Twitter" {
			tw = append(tw, ds)
		}
	}
	if len(tw) < 2 {
		return nil
	}
	n := tw[0].n
	for _, ds := range tw {
		if ds.start != tw[0].start || ds.width != tw[0].width {
			return nil
		}
		n = min(n, ds.n)
	}
	ts := &tenantSet{name: "NAB Twitter as tenants", width: tw[0].width, phase: tw[0].phase, start: tw[0].start, warm: tw[0].warm, n: n}
	r := rand.New(rand.NewPCG(seed, 12))
	for k := range tenants {
		tt := &tenantTrial{name: fmt.Sprintf("twitter-%03d", k)}
		for _, ds := range tw {
			tt.sources = append(tt.sources, slices.Clone(ds.series[:n]))
			tt.windows = append(tt.windows, ds.windows)
		}
		ts.collectorLoss(r, tt)
		ts.tenants = append(ts.tenants, tt)
	}
	return ts
}

// run judges the set with cfg and keeps every source's gap.opened alerts.
func (ts *tenantSet) run(cfg detect.Config) error {
	cfg.Bucket = time.Duration(ts.width) * time.Second
	cfg.Phase = time.Duration(ts.phase) * time.Second
	e, err := detect.New(cfg)
	if err != nil {
		return err
	}
	byName := map[string]*tenantTrial{}
	for _, tt := range ts.tenants {
		byName[tt.name] = tt
		tt.alerts = make([][]alert, len(tt.sources))
	}
	var cs []storage.Count
	for j := range ts.n {
		cs = cs[:0]
		b := ts.start + int64(j)*ts.width
		for _, tt := range ts.tenants {
			for i, c := range tt.sources {
				if c[j] > 0 {
					cs = append(cs, storage.Count{Tenant: tt.name, Source: strconv.Itoa(i), Bucket: b, Events: c[j]})
				}
			}
		}
		for _, ev := range e.Advance(time.Unix(b+ts.width, 0), cs).Events {
			if ev.Type == detect.TypeGapOpened {
				i, err := strconv.Atoi(ev.Source)
				if err != nil {
					return fmt.Errorf("alert for source %q: %w", ev.Source, err)
				}
				tt := byName[ev.Tenant]
				tt.alerts[i] = append(tt.alerts[i], alert{ev.StartedAt.Unix(), ev.DetectedAt.Unix(), ev.Kind})
			}
		}
	}
	return nil
}

// tenantScore is a run's figures: losses found (any affected source
// alarmed within the loss), affected sources alarmed, the first alarm's
// time to detect, and false alarms per stream-week after warm-up.
type tenantScore struct {
	found, total, restatedFound, restated int
	flagged, affected                     int
	flaggedBig, affectedBig               int       // sources that lost ≥ 100 events
	ttd                                   []float64 // minutes
	falseAlarms                           int
	streamWeeks                           float64
}

// score scores the alerts per tenant and source that alerts returns.
func (ts *tenantSet) score(alerts func(tt *tenantTrial) [][]alert) tenantScore {
	var sc tenantScore
	warm := ts.start + int64(ts.warm)*ts.width
	for _, tt := range ts.tenants {
		s := ts.start + int64(tt.start)*ts.width
		e := ts.start + int64(tt.end+2)*ts.width
		first := int64(math.MaxInt64)
		var missing uint64
		for i, as := range alerts(tt) {
			flagged := false
			for _, a := range as {
				switch {
				case tt.hit[i] && a.detected >= s && a.detected <= e:
					flagged = true
					first = min(first, a.detected)
				case a.detected < warm || inWindows(tt.windows[i], a.detected):
				default:
					sc.falseAlarms++
				}
			}
			if tt.hit[i] {
				sc.affected++
				missing += tt.missing[i]
				big := tt.missing[i] >= minDropMissing
				if big {
					sc.affectedBig++
				}
				if flagged {
					sc.flagged++
					if big {
						sc.flaggedBig++
					}
				}
			}
			sc.streamWeeks += float64(ts.n-ts.warm) * float64(ts.width) / (7 * 86400)
		}
		sc.total++
		restated := missing >= minDropMissing
		if restated {
			sc.restated++
		}
		if first != math.MaxInt64 {
			sc.found++
			if restated {
				sc.restatedFound++
			}
			sc.ttd = append(sc.ttd, float64(first-s)/60)
		}
	}
	return sc
}

// refAlerts runs a reference rule on every source of the set.
func (ts *tenantSet) refAlerts(ref reference) map[*tenantTrial][][]alert {
	ds := &dataset{name: ts.name, width: ts.width, phase: ts.phase, start: ts.start, warm: ts.warm, n: ts.n}
	out := map[*tenantTrial][][]alert{}
	for _, tt := range ts.tenants {
		for _, c := range tt.sources {
			out[tt] = append(out[tt], ref.run(ds, &trial{counts: c}))
		}
	}
	return out
}

// printTenants runs every set and prints gapwatch's figures beside the
// reference rules'.
func printTenants(sets []*tenantSet) error {
	fmt.Printf("\n## Collector losses: a share (50–90 %%) of several of a tenant's sources at once, 30 min–12 h\n\n")
	fmt.Printf("| tenants                  | detector  | losses found    | restated (≥ %d missing) | sources alarmed | of those ≥ %d missing | TTD p50 | TTD p95 | FA/str-wk |\n", minDropMissing, minDropMissing)
	fmt.Println("|--------------------------|-----------|-----------------|--------------------------|-----------------|------------------------|---------|---------|-----------|")
	for _, ts := range sets {
		if err := ts.run(detect.Config{}); err != nil {
			return err
		}
		printTenantRow(ts.name, "gapwatch", ts.score(func(tt *tenantTrial) [][]alert { return tt.alerts }))
		for _, ref := range references {
			alerts := ts.refAlerts(ref)
			printTenantRow(ts.name, ref.name, ts.score(func(tt *tenantTrial) [][]alert { return alerts[tt] }))
		}
	}
	fmt.Println("\nA loss is found when a drop or silence opens on one of its sources from its start to two buckets after its end (TTD: the first); sources alarmed: of the sources it took a share of. Each stream is judged on its own evidence: nothing is pooled across a tenant's streams (docs/detection.md, Known limits).")
	return nil
}

func printTenantRow(set, det string, sc tenantScore) {
	fmt.Printf("| %-24s | %-9s | %-15s | %-24s | %-15s | %-22s | %7s | %7s | %9.3f |\n", set, det,
		fmt.Sprintf("%.2f (%d/%d)", float64(sc.found)/float64(sc.total), sc.found, sc.total),
		fmt.Sprintf("%.2f (%d/%d)", float64(sc.restatedFound)/float64(max(1, sc.restated)), sc.restatedFound, sc.restated),
		fmt.Sprintf("%.2f (%d/%d)", float64(sc.flagged)/float64(sc.affected), sc.flagged, sc.affected),
		fmt.Sprintf("%.2f (%d/%d)", float64(sc.flaggedBig)/float64(max(1, sc.affectedBig)), sc.flaggedBig, sc.affectedBig),
		fmtMin(quantile(sc.ttd, 0.5)), fmtMin(quantile(sc.ttd, 0.95)), float64(sc.falseAlarms)/sc.streamWeeks)
}
