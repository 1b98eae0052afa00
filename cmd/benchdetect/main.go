// Command benchdetect measures gapwatch's gap detection (package detect) and
// compares it with rules people run today: "no events for 60 (15) minutes",
// a seasonal decomposition and a daily volume drop (`make bench` runs it).
//
// Quality: gaps are injected into count series at positions drawn by a seeded
// RNG after a warm-up, one gap per stream — silences (every count 0) of 30
// minutes to 1 day and drops (each event kept with probability 1−loss, loss
// 50–90 %) of 30 minutes to 1 day, durations log-uniform — and the alerts
// (gap.opened) are scored:
//
//   - recall per kind: an injection is found when a gap opens on its stream
//     between its start and two buckets after its end;
//   - time to detect: detected_at − injection start (median and p95);
//   - false alarms per stream-week: gaps opened after the warm-up that match no
//     injection (for NAB, nor a labelled anomaly window), over the stream-weeks
//     watched (labelled windows excluded);
//   - the restated targets (references.go): recall over the gaps that carry
//     the evidence (a silence whose hole held ≥ 20 events, a drop that took
//     ≥ 100), and cold-start false alarms per stream over its first two weeks,
//     for gapwatch beside static, seasonal and daily-drop reference rules;
//     and the restated silences by the stream's hourly volume at the
//     injection, over all data sets (volume.go);
//   - young streams (young.go): the same restated figures on each real
//     series' first two weeks replayed alone, gaps injected from day 3 (a
//     fresh install, or a series only two weeks long);
//   - heavy sustained losses (heavy.go): each real series replayed again,
//     one 70 % loss of 3½–9 hours per trial (the held-back failure issue 19
//     reports), recall for gapwatch and the reference rules;
//   - collector losses (tenants.go): -tenants synthetic tenants, and half as
//     many copies of the five NAB Twitter series as one tenant, each with a
//     loss of 50–90 % of several of its sources at once: losses found,
//     sources alarmed, TTD and false alarms.
//
// Two kinds of data: (a) real count series, each replayed as -trials streams
// with one injection each: the NAB series in -nab (Twitter mentions per 5
// minutes, NYC taxi passengers per 30 minutes); with -bikeshare, Capital
// Bikeshare's hourly rentals of 2011 (casual and registered riders; UCI, CC BY
// 4.0); with -flights, US departures per 5 minutes at ten airports (2001);
// and -worldcup, the requests per 5 minutes to the 1998 World Cup web site
// (in testdata, with its notice); (b) a synthetic security-log model:
// -streams streams at 5-minute buckets over -weeks weeks, volumes log-uniform
// from 0.01 to 1000 events per minute, a diurnal shape (day/night 1.5–10×), a
// weekend dip (×0.3–1), slow log-normal rate drift (AR(1)), bursts (×2–5 for
// 30 minutes, about one a week) and gamma-Poisson noise (dispersion
// 0.02–0.5). The detector's thresholds come from its default false-alarm
// budget, not from these series.
//
// Scale: -scale streams (default 100 000) with a count every bucket at
// 5-minute buckets, fed two days and an hour of history first (so that they
// are judged on their seasonal profiles, drop tests running): CPU time per
// Advance (process CPU, all workers) and heap bytes per stream.
//
//	go run ./cmd/benchdetect                 # everything, a minute or two
//	go run ./cmd/benchdetect -scale 0        # quality only
//	go run ./cmd/benchdetect -streams 2000   # a larger synthetic population
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
)

func main() {
	nab := flag.String("nab", "../shared/data/nab", "folder with the NAB CSV files and combined_windows.json")
	bikes := flag.String("bikeshare", "", "Capital Bikeshare 2011 hourly CSV (ISLP's data/Bikeshare.csv; deploy/tools.sh bikeshare prints its path); empty: skipped")
	flights := flag.String("flights", "", "US departures per 5 minutes, 2001 (deploy/tools.sh flights prints its path); empty: skipped")
	worldcup := flag.String("worldcup", "cmd/benchdetect/testdata/worldcup98-requests-5m.csv.gz", "requests per 5 minutes to the 1998 World Cup web site (in the repository); empty: skipped")
	trials := flag.Int("trials", 40, "injected streams per real series")
	streams := flag.Int("streams", 600, "synthetic streams")
	tenants := flag.Int("tenants", 80, "synthetic tenants with collector losses (and half as many NAB Twitter ones)")
	weeks := flag.Int("weeks", 6, "synthetic weeks")
	scale := flag.Int("scale", 100000, "streams for the scale figure (0 to skip)")
	seed := flag.Uint64("seed", 1, "RNG seed")
	flag.Parse()
	if err := run(*nab, *bikes, *flights, *worldcup, *trials, *streams, *tenants, *weeks, *scale, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "benchdetect:", err)
		os.Exit(1)
	}
}

func run(nabDir, bikes, flights, worldcup string, trials, streams, tenants, weeks, scale int, seed uint64) error {
	start := time.Now()
	cfg := detect.Config{}
	fmt.Printf("benchdetect: seed %d, GOMAXPROCS %d, detector defaults: false-alarm budget %.2g per stream-week (split over silence, drop, late), drop alternative %.0f %% loss, resolve after %s\n",
		seed, runtime.GOMAXPROCS(0), 0.03, 50.0, 15*time.Minute)
	var sets []*dataset
	if nabDir != "" && trials > 0 {
		ns, err := loadNAB(nabDir, trials, seed)
		if err != nil {
			return err
		}
		sets = append(sets, ns...)
	}
	if bikes != "" && trials > 0 {
		bs, err := loadBikeshare(bikes, trials, seed)
		if err != nil {
			return err
		}
		sets = append(sets, bs...)
	}
	if flights != "" && trials > 0 {
		fs, err := loadFlights(flights, trials, seed)
		if err != nil {
			return err
		}
		sets = append(sets, fs...)
	}
	if worldcup != "" && trials > 0 {
		ws, err := loadWorldCup(worldcup, trials, seed)
		if err != nil {
			return err
		}
		sets = append(sets, ws...)
	}
	if streams > 0 {
		sets = append(sets, synthetic(streams, weeks, seed))
	}
	for _, ds := range sets {
		if err := ds.run(cfg); err != nil {
			return err
		}
	}
	printQuality(sets)
	printTargets(sets)
	if err := printEscapes("restated drops (≥ 50 % lost, ≥ 100 events) gapwatch missed", sets); err != nil {
		return err
	}
	printSilenceByVolume(sets)
	young := youngSets(sets, seed)
	for _, ds := range young {
		if err := ds.run(cfg); err != nil {
			return err
		}
	}
	printYoung(young)
	heavy := heavySets(sets, seed)
	for _, ds := range heavy {
		if err := ds.run(cfg); err != nil {
			return err
		}
	}
	printHeavy(heavy)
	if err := printEscapes("heavy sustained losses (≥ 100 events) gapwatch missed", heavy); err != nil {
		return err
	}
	if tenants > 0 {
		var ts []*tenantSet
		if tw := twitterTenants(sets, tenants/2, seed); tw != nil {
			ts = append(ts, tw)
		}
		ts = append(ts, syntheticTenants(tenants, weeks, seed))
		if err := printTenants(ts); err != nil {
			return err
		}
	}
	if scale > 0 {
		if err := scaleBench(scale); err != nil {
			return err
		}
	}
	fmt.Printf("\ntotal %.1fs\n", time.Since(start).Seconds())
	return nil
}

// injection is one injected gap, in buckets [start, end).
type injection struct {
	kind       detect.Kind
	start, end int
	loss       float64
	// held is the events the gap's buckets held before the injection,
	// missing how many of them it took.
	held, missing uint64
	// perHour is the stream's volume at the injection: the events its
	// first hour held (the whole hole's if shorter), per hour.
	perHour float64
}

// trial is one stream: counts per bucket (with the injection applied).
type trial struct {
	name   string
	counts []uint64
	inj    injection
	perMin float64 // mean events per minute before injection
	// Synthetic only: the gamma-Poisson dispersion and the mean of each
	// bucket's count (before the noise and the injection).
	disp float64
	mean []float32
	// base is mean without the drift: what a test knowing the model, but
	// not the drift's path, expects.
	base []float32
	// alerts: gapwatch's, (started, detected) bucket-end times, Unix
	// seconds; refs: each reference rule's (references), by index.
	alerts []alert
	refs   [][]alert
}

type dataset struct {
	name    string
	group   string // NAB series family, or "synthetic"
	width   int64  // seconds
	phase   int64
	start   int64 // Unix seconds of bucket 0
	warm    int   // buckets of warm-up
	n       int   // buckets
	trials  []*trial
	windows [][2]int64 // labelled anomaly windows, Unix seconds
	series  []uint64   // a real series before injection (addTrials)
}

func (ds *dataset) run(cfg detect.Config) error {
	cfg.Bucket = time.Duration(ds.width) * time.Second
	cfg.Phase = time.Duration(ds.phase) * time.Second
	e, err := detect.New(cfg)
	if err != nil {
		return err
	}
	byName := map[string]*trial{}
	for _, t := range ds.trials {
		byName[t.name] = t
	}
	cs := make([]storage.Count, 0, len(ds.trials))
	for i := range ds.n {
		cs = cs[:0]
		b := ds.start + int64(i)*ds.width
		for _, t := range ds.trials {
			if t.counts[i] > 0 {
				cs = append(cs, storage.Count{Tenant: ds.name, Source: t.name, Bucket: b, Events: t.counts[i]})
			}
		}
		for _, ev := range e.Advance(time.Unix(b+ds.width, 0), cs).Events {
			if ev.Type == detect.TypeGapOpened {
				t := byName[ev.Source]
				t.alerts = append(t.alerts, alert{ev.StartedAt.Unix(), ev.DetectedAt.Unix(), ev.Kind})
			}
		}
	}
	for _, t := range ds.trials {
		t.refs = make([][]alert, len(references))
		for i, ref := range references {
			t.refs[i] = ref.run(ds, t)
		}
	}
	return nil
}

// score is what one detector achieved on a set of trials.
type score struct {
	found, total map[detect.Kind]int
	ttd          map[detect.Kind][]float64 // minutes
	falseAlarms  int
	falseByKind  map[detect.Kind]int
	labelled     int // alarms after warm-up inside a labelled window: not counted false
	streamWeeks  float64
}

// alert is one gap.opened: when its gap started and when it was detected
// (Unix seconds), and its kind.
type alert struct {
	started, detected int64
	kind              detect.Kind
}

func newScore() *score {
	return &score{found: map[detect.Kind]int{}, total: map[detect.Kind]int{}, ttd: map[detect.Kind][]float64{}, falseByKind: map[detect.Kind]int{}}
}

// addTrials replays a real series as n streams, each with one injection
// drawn by rng after the warm-up and outside the labelled windows: silences
// and drops in turn.
func (ds *dataset) addTrials(counts []uint64, n int, rng *rand.Rand) {
	ds.series = counts
	var mean float64
	for _, v := range counts[ds.warm:] {
		mean += float64(v)
	}
	mean /= float64(ds.n-ds.warm) * float64(ds.width) / 60
	for k := range n {
		t := &trial{name: fmt.Sprintf("trial-%03d", k), counts: slices.Clone(counts), perMin: mean}
		kind := detect.KindSilence
		if k%2 == 1 {
			kind = detect.KindDrop
		}
		t.inj = inject(rng, t.counts, kind, ds.width, ds.warm, ds.overlapsWindow)
		ds.trials = append(ds.trials, t)
	}
}

// overlapsWindow reports whether buckets [i, j) overlap a labelled window
// (no injection goes there).
func (ds *dataset) overlapsWindow(i, j int) bool {
	return overlapsWindows(ds.windows, ds.start+int64(i)*ds.width, ds.start+int64(j)*ds.width)
}

// overlapsWindows reports whether the times [a, b) overlap one of the
// windows ws.
func overlapsWindows(ws [][2]int64, a, b int64) bool {
	for _, w := range ws {
		if a < w[1] && b > w[0] {
			return true
		}
	}
	return false
}

func (ds *dataset) inWindow(t int64) bool { return inWindows(ds.windows, t) }

// inWindows reports whether time t falls in one of the windows ws.
func inWindows(ws [][2]int64, t int64) bool {
	for _, w := range ws {
		if t >= w[0] && t < w[1] {
			return true
		}
	}
	return false
}

// findable is when an alert finds trial t's injection: detected from the
// injection's start to two buckets after its end (Unix seconds, inclusive).
func (ds *dataset) findable(t *trial) (s, e int64) {
	return ds.start + int64(t.inj.start)*ds.width, ds.start + int64(t.inj.end+2)*ds.width
}

// scoreInto adds trial t's results with the given alerts to sc.
func (ds *dataset) scoreInto(sc *score, t *trial, alerts []alert) {
	s, e := ds.findable(t)
	sc.total[t.inj.kind]++
	found := false
	for _, a := range alerts {
		switch {
		case a.detected >= s && a.detected <= e:
			if !found {
				found = true
				sc.found[t.inj.kind]++
				sc.ttd[t.inj.kind] = append(sc.ttd[t.inj.kind], float64(a.detected-s)/60)
			}
		case a.detected < ds.start+int64(ds.warm)*ds.width:
		case ds.inWindow(a.detected):
			sc.labelled++
		default:
			sc.falseAlarms++
			sc.falseByKind[a.kind]++
		}
	}
	watched := 0
	for i := ds.warm; i < ds.n; i++ {
		if !ds.inWindow(ds.start + int64(i)*ds.width) {
			watched++
		}
	}
	sc.streamWeeks += float64(watched) * float64(ds.width) / (7 * 86400)
}

// dropEvidence is the expected log-likelihood ratio "loss" vs "normal" of a
// synthetic drop injection, summed over its whole blocks of n buckets: for a
// block of true mean M, negative binomial of dispersion ab (the buckets' a
// weighted by Σm²/M²) with a share rho = 1 − loss kept, E[llr] is
// rho·M·ln(rho) + (rho·M + 1/ab)·(ln(1+ab·M) − ln(1+ab·rho·M)).
func dropEvidence(t *trial, n int) float64 {
	rho := 1 - t.inj.loss
	var total float64
	for b := t.inj.start; b+n <= t.inj.end; b += n {
		m, m2 := sums(t.mean[b : b+n])
		if m <= 0 {
			continue
		}
		total += expectedLLR(m, t.disp*m2/(m*m), rho)
	}
	return total
}

// sums returns Σv and Σv².
func sums(vs []float32) (m, m2 float64) {
	for _, v := range vs {
		m += float64(v)
		m2 += float64(v) * float64(v)
	}
	return m, m2
}

// expectedLLR is E[llr] of "a share rho kept" vs "all" for a block of mean m
// and dispersion ab when rho is kept (dropEvidence).
func expectedLLR(m, ab, rho float64) float64 {
	return rho*m*math.Log(rho) + (rho*m+1/ab)*(math.Log1p(ab*m)-math.Log1p(ab*rho*m))
}

// The synthetic model's rate drift: log-rate AR(1) of stationary sd
// driftSigma and lag-1 correlation driftPhi per 5-minute bucket.
const driftSigma, driftPhi = 0.15, 0.95

// modelEvidence is dropEvidence for a test that knows the model — each
// bucket's mean without the drift, the dispersion and the drift's law — but
// not the drift's path: each block's noise then holds the drift's variance
// (σ²·g0, g0 the mean correlation of two buckets of a block), consecutive
// blocks are correlated (lag-1 covariance σ²·g1), and the blocks' summed
// evidence is divided by the variance inflation of a run of that many
// AR(1) blocks, as the detector's own test does (detect.runInflation).
func modelEvidence(t *trial, n int) float64 {
	var g0, g1 float64
	for i := range n {
		for j := range n {
			g0 += math.Pow(driftPhi, math.Abs(float64(i-j)))
			g1 += math.Pow(driftPhi, float64(n+j-i))
		}
	}
	g0 /= float64(n * n)
	g1 /= float64(n * n)
	vd := driftSigma * driftSigma
	rho := 1 - t.inj.loss
	var total, varSum float64
	blocks := 0
	for b := t.inj.start; b+n <= t.inj.end; b += n {
		m, m2 := sums(t.base[b : b+n])
		if m <= 0 {
			continue
		}
		ab := t.disp*m2/(m*m) + vd*g0
		total += expectedLLR(m, ab, rho)
		varSum += ab + 1/m
		blocks++
	}
	if blocks <= 1 {
		return total
	}
	c := math.Min(vd*g1/(varSum/float64(blocks)), 0.99)
	k := float64(blocks)
	infl := (1+c)/(1-c) - 2*c*(1-math.Pow(c, k))/(k*(1-c)*(1-c))
	return total / infl
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}

func fmtRecall(sc *score, k detect.Kind) string {
	if sc.total[k] == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f (%d/%d)", float64(sc.found[k])/float64(sc.total[k]), sc.found[k], sc.total[k])
}

func fmtMin(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if v >= 120 {
		return fmt.Sprintf("%.1fh", v/60)
	}
	return fmt.Sprintf("%.0fm", v)
}

func row(name string, width int64, det string, sc *score) string {
	return fmt.Sprintf("| %-22s | %4s | %-8s | %-15s | %6s | %6s | %-15s | %6s | %6s | %5d | %7.1f | %6.3f |",
		name, time.Duration(width*int64(time.Second)).String(), det,
		fmtRecall(sc, detect.KindSilence), fmtMin(quantile(sc.ttd[detect.KindSilence], 0.5)), fmtMin(quantile(sc.ttd[detect.KindSilence], 0.95)),
		fmtRecall(sc, detect.KindDrop), fmtMin(quantile(sc.ttd[detect.KindDrop], 0.5)), fmtMin(quantile(sc.ttd[detect.KindDrop], 0.95)),
		sc.falseAlarms, sc.streamWeeks, float64(sc.falseAlarms)/sc.streamWeeks)
}

func printQuality(sets []*dataset) {
	// The synthetic set's thresholds (5-minute buckets, default budget), for
	// what a test knowing the true means could detect at the same alpha.
	e5, err := detect.New(detect.Config{Bucket: 5 * time.Minute})
	if err != nil {
		panic(err) // the defaults are valid
	}
	th5 := e5.Thresholds()
	fmt.Println("\n## Detection quality (gapwatch vs static rule \"no events for 60 minutes\")")
	fmt.Println()
	fmt.Println("| data set               | bkt  | detector | silence recall  | TTD p50 | TTD p95 | drop recall     | TTD p50 | TTD p95 | FA    | str-wk  | FA/str-wk |")
	fmt.Println("|------------------------|------|----------|-----------------|--------|--------|-----------------|--------|--------|-------|---------|--------|")
	totals := map[string][2]*score{}
	widths := map[string]int64{}
	var order []string
	for _, ds := range sets {
		g, s := newScore(), newScore()
		for _, t := range ds.trials {
			ds.scoreInto(g, t, t.alerts)
			ds.scoreInto(s, t, t.refs[0])
		}
		fmt.Println(row(ds.name, ds.width, "gapwatch", g))
		fmt.Println(row(ds.name, ds.width, "static", s))
		if _, ok := totals[ds.group]; !ok {
			order = append(order, ds.group)
			totals[ds.group] = [2]*score{newScore(), newScore()}
			widths[ds.group] = ds.width
		}
		for _, t := range ds.trials {
			ds.scoreInto(totals[ds.group][0], t, t.alerts)
			ds.scoreInto(totals[ds.group][1], t, t.refs[0])
		}
	}
	for _, gname := range order {
		if gname == "synthetic" {
			continue
		}
		w := widths[gname]
		fmt.Println(row("all "+gname, w, "gapwatch", totals[gname][0]))
		fmt.Println(row("all "+gname, w, "static", totals[gname][1]))
	}
	fmt.Println()
	for _, gname := range order {
		fa := totals[gname][0].falseByKind
		fmt.Printf("gapwatch false alarms by kind, %s: silence %d, drop %d, late %d; in labelled windows (not counted) %d\n", gname, fa[detect.KindSilence], fa[detect.KindDrop], fa[detect.KindLate], totals[gname][0].labelled)
	}
	// Synthetic, by volume band.
	for _, ds := range sets {
		if ds.group != "synthetic" {
			continue
		}
		fmt.Println("\n## Synthetic security logs by volume (events per minute)")
		fmt.Println()
		fmt.Println("| volume band            | bkt  | detector | silence recall  | TTD p50 | TTD p95 | drop recall     | TTD p50 | TTD p95 | FA    | str-wk  | FA/str-wk |")
		fmt.Println("|------------------------|------|----------|-----------------|--------|--------|-----------------|--------|--------|-------|---------|--------|")
		for lo := 0.01; lo < 1000; lo *= 10 {
			g, s := newScore(), newScore()
			for _, t := range ds.trials {
				if t.perMin >= lo && t.perMin < lo*10 {
					ds.scoreInto(g, t, t.alerts)
					ds.scoreInto(s, t, t.refs[0])
				}
			}
			name := fmt.Sprintf("%g–%g", lo, lo*10)
			fmt.Println(row(name, ds.width, "gapwatch", g))
			fmt.Println(row(name, ds.width, "static", s))
		}
		// Detectable silences: expected events in the silence at least -ln(alpha)
		// (a perfect Poisson test at the detector's alpha could not do better).
		g, s := newScore(), newScore()
		for _, t := range ds.trials {
			if t.inj.kind != detect.KindSilence {
				continue
			}
			dur := float64(t.inj.end-t.inj.start) * float64(ds.width) / 60
			if t.perMin*dur >= -math.Log(th5.SilenceAlpha) {
				ds.scoreInto(g, t, t.alerts)
				ds.scoreInto(s, t, t.refs[0])
			}
		}
		fmt.Printf("\nsilences with ≥ %.1f expected events (statistically detectable at the detector's alpha): gapwatch %s, p50 %s, p95 %s; static %s\n",
			-math.Log(th5.SilenceAlpha), fmtRecall(g, detect.KindSilence), fmtMin(quantile(g.ttd[detect.KindSilence], 0.5)),
			fmtMin(quantile(g.ttd[detect.KindSilence], 0.95)), fmtRecall(s, detect.KindSilence))
	}
	// Detectable drops: the expected evidence of the loss, summed over its
	// 30-minute blocks, reaches the drop test's threshold even for a test
	// that knew each bucket's true mean and dispersion (no drift, no learning).
	// A test on whole blocks may cross once per block, not per bucket as the
	// detector's CUSUMs may: its threshold is ln(blocks per week / budget)
	// + ln 2, ln(blocks) below the detector's — the stricter yardstick.
	hDrop := th5.DropCUSUM - math.Log(float64(th5.DropBlock))
	for _, ds := range sets {
		if ds.group != "synthetic" {
			continue
		}
		g, s := newScore(), newScore()
		for _, t := range ds.trials {
			if t.inj.kind == detect.KindDrop && dropEvidence(t, th5.DropBlock) >= hDrop {
				ds.scoreInto(g, t, t.alerts)
				ds.scoreInto(s, t, t.refs[0])
			}
		}
		fmt.Printf("drops whose expected evidence reaches %.1f (detectable by a block test knowing the true means, drift path included, and dispersion): gapwatch %s, p50 %s, p95 %s; static %s\n",
			hDrop, fmtRecall(g, detect.KindDrop), fmtMin(quantile(g.ttd[detect.KindDrop], 0.5)),
			fmtMin(quantile(g.ttd[detect.KindDrop], 0.95)), fmtRecall(s, detect.KindDrop))
		g, s = newScore(), newScore()
		for _, t := range ds.trials {
			if t.inj.kind == detect.KindDrop && modelEvidence(t, th5.DropBlock) >= hDrop {
				ds.scoreInto(g, t, t.alerts)
				ds.scoreInto(s, t, t.refs[0])
			}
		}
		fmt.Printf("drops detectable by a test knowing the model but not the drift's path (same threshold): gapwatch %s, p50 %s, p95 %s; static %s\n",
			fmtRecall(g, detect.KindDrop), fmtMin(quantile(g.ttd[detect.KindDrop], 0.5)),
			fmtMin(quantile(g.ttd[detect.KindDrop], 0.95)), fmtRecall(s, detect.KindDrop))
	}
	fmt.Println("\nTTD = detected_at − injected start (minutes/hours); FA = gaps opened after warm-up matching no injection, outside labelled windows (NAB's, Bikeshare's absent and rainy hours, the World Cup log's outages); str-wk = stream-weeks watched.")
}

// ---- data sets ----

func logUniform(r *rand.Rand, lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo)))
}

// inject applies a random gap after warm-up, avoiding the excluded ranges.
func inject(r *rand.Rand, counts []uint64, kind detect.Kind, width int64, warm int, excluded func(i, j int) bool) injection {
	return injectDrawn(r, counts, kind, width, warm, excluded,
		func() float64 { return logUniform(r, 1800, 86400) },
		func() float64 { return 0.5 + 0.4*r.Float64() })
}

// injectDrawn is inject with the gap's length in seconds and a drop's loss
// drawn by the given functions: the length before the start, the loss after.
func injectDrawn(r *rand.Rand, counts []uint64, kind detect.Kind, width int64, warm int, excluded func(i, j int) bool,
	seconds, loss func() float64) injection {
	for {
		dur := int(math.Ceil(seconds() / float64(width)))
		if warm+dur+2 >= len(counts) {
			dur = len(counts) - warm - 3
		}
		s := warm + r.IntN(len(counts)-warm-dur-1)
		if excluded != nil && excluded(s, s+dur+2) {
			continue
		}
		inj := injection{kind: kind, start: s, end: s + dur}
		if kind == detect.KindDrop {
			inj.loss = loss()
		}
		hour := max(1, int(3600/width))
		var first uint64
		for i := s; i < min(s+dur, s+hour); i++ {
			first += counts[i]
		}
		inj.perHour = float64(first) * 3600 / float64(int64(min(dur, hour))*width)
		for i := s; i < s+dur; i++ {
			held := counts[i]
			if kind == detect.KindSilence {
				counts[i] = 0
			} else {
				counts[i] = binomial(r, counts[i], 1-inj.loss)
			}
			inj.held += held
			inj.missing += held - counts[i]
		}
		return inj
	}
}

func binomial(r *rand.Rand, n uint64, p float64) uint64 {
	if n < 64 {
		var k uint64
		for range n {
			if r.Float64() < p {
				k++
			}
		}
		return k
	}
	m := float64(n) * p
	v := math.Round(m + math.Sqrt(m*(1-p))*r.NormFloat64())
	return uint64(math.Min(math.Max(v, 0), float64(n)))
}

func loadNAB(dir string, trials int, seed uint64) ([]*dataset, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "combined_windows.json"))
	if err != nil {
		return nil, err
	}
	var windows map[string][][2]string
	if err := json.Unmarshal(raw, &windows); err != nil {
		return nil, fmt.Errorf("combined_windows.json: %w", err)
	}
	files := []string{"Twitter_volume_AAPL", "Twitter_volume_AMZN", "Twitter_volume_CRM", "Twitter_volume_CVS", "Twitter_volume_FB", "nyc_taxi"}
	tss, vss := make([][]int64, len(files)), make([][]uint64, len(files))
	for fi, name := range files {
		if tss[fi], vss[fi], err = readNAB(filepath.Join(dir, name+".csv")); err != nil {
			return nil, err
		}
	}
	outages := collectorOutages(tss[:5], vss[:5])
	var out []*dataset
	for fi, name := range files {
		ts, vs := tss[fi], vss[fi]
		width := ts[1] - ts[0]
		for i := 2; i < len(ts); i++ {
			width = min(width, ts[i]-ts[i-1])
		}
		n := int((ts[len(ts)-1]-ts[0])/width) + 1
		base := make([]uint64, n)
		for i, t := range ts {
			base[(t-ts[0])/width] += vs[i]
		}
		group, key := "NAB Twitter", "realTweets/"+name+".csv"
		if strings.HasPrefix(name, "nyc") {
			group, key = "NAB taxi", "realKnownCause/"+name+".csv"
		}
		ds := &dataset{name: name, group: group, width: width, phase: ((ts[0] % width) + width) % width,
			start: ts[0], warm: int(14 * 86400 / width), n: n}
		for _, w := range windows[key] {
			a, err1 := time.Parse("2006-01-02 15:04:05.000000", w[0])
			b, err2 := time.Parse("2006-01-02 15:04:05.000000", w[1])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("window %q of %s", w, key)
			}
			ds.windows = append(ds.windows, [2]int64{a.Unix(), b.Unix()})
		}
		if group == "NAB Twitter" {
			ds.windows = append(ds.windows, outages...)
		}
		ds.addTrials(base, trials, rand.New(rand.NewPCG(seed, uint64(fi)+100)))
		out = append(out, ds)
	}
	return out, nil
}

// collectorOutages finds the NAB Twitter collector's own outages: runs of
// three or more 5-minute rows (15 minutes) at which every Twitter series
// recorded nothing. On 2015-03-11 from 07:02 all five held 0 for 2 h 10 min
// (AAPL and AMZN never hold 0 for 15 minutes otherwise): a real silence of
// the source, so detecting it is no false alarm. Like Bikeshare's absent
// hours, they are treated as labelled windows (a bucket's margin each side):
// no injection there, no false alarm counted.
func collectorOutages(tss [][]int64, vss [][]uint64) [][2]int64 {
	const width = 300
	seen := map[int64]bool{}  // a row of some series at this time
	heard := map[int64]bool{} // an event of some series at this time
	for i, ts := range tss {
		for j, t := range ts {
			seen[t] = true
			if vss[i][j] > 0 {
				heard[t] = true
			}
		}
	}
	times := slices.Sorted(maps.Keys(seen))
	var out [][2]int64
	for i := 0; i < len(times); {
		j := i
		for j < len(times) && !heard[times[j]] && (j == i || times[j]-times[j-1] == width) {
			j++
		}
		if j-i >= 3 {
			out = append(out, [2]int64{times[i] - width, times[j-1] + 2*width})
		}
		i = max(j, i+1)
	}
	return out
}

func readNAB(path string) (ts []int64, vs []uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			continue
		}
		tsv, val, ok := strings.Cut(sc.Text(), ",")
		if !ok {
			return nil, nil, fmt.Errorf("%s:%d: no comma", path, line+1)
		}
		t, err := time.Parse(time.DateTime, tsv)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", path, line+1, err)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || v < 0 {
			return nil, nil, fmt.Errorf("%s:%d: bad value %q", path, line+1, val)
		}
		ts = append(ts, t.Unix())
		vs = append(vs, uint64(math.Round(v)))
	}
	if len(ts) < 2 {
		return nil, nil, fmt.Errorf("%s: fewer than 2 rows", path)
	}
	return ts, vs, sc.Err()
}

// synthShape is the synthetic model's rate shape at time t (Unix seconds):
// a daily cosine of amplitude amp peaking at hour peak, times weekend on
// Saturdays and Sundays.
func synthShape(t int64, amp, peak, weekend float64) float64 {
	h := float64(t%86400) / 3600
	shape := 1 + amp*math.Cos(2*math.Pi*(h-peak)/24)
	if wd := (t/86400 + 3) % 7; wd >= 5 {
		shape *= weekend
	}
	return shape
}

// synthetic builds the security-log model's streams.
func synthetic(streams, weeks int, seed uint64) *dataset {
	const width = 300
	start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC).Unix() // a Monday
	n := weeks * 7 * 86400 / width
	ds := &dataset{name: "synthetic", group: "synthetic", width: width, start: start, warm: 14 * 86400 / width, n: n}
	r := rand.New(rand.NewPCG(seed, 7))
	for k := range streams {
		perMin := logUniform(r, 0.01, 1000)
		a := logUniform(r, 0.02, 0.5)
		dayNight := 1.5 + 8.5*r.Float64()
		peak := 10 + 6*r.Float64()
		weekend := 0.3 + 0.7*r.Float64()
		const sigma, phi = driftSigma, driftPhi
		z := 0.0
		burst, burstLeft := 1.0, 0
		counts := make([]uint64, n)
		mean := make([]float32, n)
		base := make([]float32, n)
		amp := (dayNight - 1) / (dayNight + 1)
		for i := range counts {
			t := start + int64(i)*width
			shape := synthShape(t, amp, peak, weekend)
			z = phi*z + sigma*math.Sqrt(1-phi*phi)*r.NormFloat64()
			if burstLeft == 0 && r.Float64() < 1.0/(7*288) {
				burst, burstLeft = 2+3*r.Float64(), 6
			}
			m := perMin * 5 * shape * math.Exp(z-sigma*sigma/2)
			if burstLeft > 0 {
				m *= burst
				burstLeft--
			}
			counts[i] = simulate.GammaPoisson(r, m, a)
			mean[i] = float32(m)
			base[i] = float32(m / math.Exp(z-sigma*sigma/2))
		}
		t := &trial{name: fmt.Sprintf("s%05d", k), counts: counts, perMin: perMin, disp: a, mean: mean, base: base}
		kind := detect.KindSilence
		if k%2 == 1 {
			kind = detect.KindDrop
		}
		t.inj = inject(r, t.counts, kind, width, ds.warm, nil)
		ds.trials = append(ds.trials, t)
	}
	return ds
}

// ---- scale ----

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func scaleBench(n int) error {
	// Two days and an hour of history first, so that every stream is judged
	// on its seasonal profile with the drop tests running (a cold engine
	// judges the short-term rate only, which is cheaper).
	const width = 300
	const warm, measured = 2*86400/width + 12, 20
	names := make([]storage.Count, n)
	r := rand.New(rand.NewPCG(3, 4))
	rates := make([]float64, n)
	for i := range names {
		names[i] = storage.Count{Tenant: fmt.Sprintf("tenant-%04d", i%5000), Source: fmt.Sprintf("source-%06d", i)}
		rates[i] = logUniform(r, 0.5, 1000)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	e, err := detect.New(detect.Config{Bucket: width * time.Second})
	if err != nil {
		return err
	}
	start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC).Unix()
	fmt.Fprintf(os.Stderr, "benchdetect: scale: %d streams, %d buckets of history first\n", n, warm)
	counts := make([]storage.Count, 0, n)
	var cpu, wall time.Duration
	var events int
	for b := range warm + measured {
		counts = counts[:0]
		for i, c := range names {
			if b >= warm && i%100 == 0 {
				continue // 1 % of the streams go silent while measured
			}
			c.Bucket = start + int64(b)*width
			c.Events = simulate.Poisson(r, rates[i]*width/60)
			counts = append(counts, c)
		}
		c0, w0 := cpuTime(), time.Now()
		res := e.Advance(time.Unix(start+int64(b+1)*width, 0), counts)
		if b >= warm {
			cpu += cpuTime() - c0
			wall += time.Since(w0)
			events += len(res.Events)
		}
	}
	counts = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	perStream := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	runtime.KeepAlive(e)
	fmt.Println("\n## Scale (5-minute buckets after two days of history: seasonal profiles and drop tests in use; every stream judged every bucket)")
	fmt.Println()
	fmt.Println("| streams | workers | CPU per Advance | wall per Advance | heap per stream | events while measured |")
	fmt.Println("|---------|---------|-----------------|------------------|-----------------|-----------------------|")
	fmt.Printf("| %7d | %7d | %15s | %16s | %13.0f B | %21d |\n", e.Streams(), runtime.GOMAXPROCS(0),
		(cpu / measured).Round(time.Millisecond), (wall / measured).Round(time.Millisecond), perStream, events)
	fmt.Printf("targets: ≤ 1 s CPU per bucket for 100k streams, ≤ 1 KB per stream (heap after GC, including the map and names)\n")
	return nil
}
