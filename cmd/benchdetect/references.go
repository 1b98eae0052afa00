package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/detect"
)

// reference is a simple rule of the kind people run today, scored beside
// gapwatch on the same counts. Each sees the counts only (no model, no
// injection) and re-arms after its alert.
type reference struct {
	name string
	run  func(ds *dataset, t *trial) []alert
}

// references are the rules gapwatch is compared with; the first is the one
// the per-series tables show.
var references = []reference{
	{"static", func(ds *dataset, t *trial) []alert { return quietRule(ds, t, time.Hour) }},
	{"static15", func(ds *dataset, t *trial) []alert { return quietRule(ds, t, 15*time.Minute) }},
	{"seasonal", seasonalRule},
	{"dailydrop", dailyDropRule},
}

// quietRule alerts when a run of empty buckets reaches d, after the stream's
// first event ("no events for N minutes").
func quietRule(ds *dataset, t *trial, d time.Duration) []alert {
	need := int((int64(d/time.Second) + ds.width - 1) / ds.width)
	var out []alert
	run := 0
	seen := false
	for i, c := range t.counts {
		if c > 0 {
			seen, run = true, 0
			continue
		}
		if !seen {
			continue
		}
		run++
		if run == need {
			out = append(out, alert{ds.start + int64(i-need+1)*ds.width, ds.start + int64(i+1)*ds.width, detect.KindSilence})
		}
	}
	return out
}

// seasonalRule is a seasonal decomposition with a robust threshold: a bucket's
// expectation is the median of the same time of week in the previous weeks
// (up to four; the same time of day in the previous seven days while there is
// less than a week), its residual scale the MAD of the previous week's
// residuals (refreshed daily); three buckets in a row below expectation − 3
// scales raise an alert (a silence if they are all empty), re-armed after
// an hour of buckets within the band.
func seasonalRule(ds *dataset, t *trial) []alert {
	perDay := int(86400 / ds.width)
	perWeek := 7 * perDay
	n := len(t.counts)
	expect := make([]float64, n)
	have := make([]bool, n)
	var vals []float64
	for i := perDay; i < n; i++ {
		vals = vals[:0]
		for k := 1; k <= 4 && i-k*perWeek >= 0; k++ {
			vals = append(vals, float64(t.counts[i-k*perWeek]))
		}
		if len(vals) == 0 {
			for k := 1; k <= 7 && i-k*perDay >= 0; k++ {
				vals = append(vals, float64(t.counts[i-k*perDay]))
			}
		}
		expect[i], have[i] = median(vals), true
	}
	var out []alert
	scale := math.NaN()
	low, normal := 0, 0
	armed := true
	var res []float64
	for i := range n {
		if i%perDay == 0 && i >= 2*perDay {
			res = res[:0]
			for j := max(0, i-perWeek); j < i; j++ {
				if have[j] {
					res = append(res, math.Abs(float64(t.counts[j])-expect[j]))
				}
			}
			scale = 1.4826 * median(res)
		}
		if !have[i] || math.IsNaN(scale) {
			continue
		}
		x := float64(t.counts[i])
		if x < expect[i]-3*math.Max(scale, 1) {
			low++
			normal = 0
		} else {
			low = 0
			normal++
			if normal >= int(3600/ds.width) {
				armed = true
			}
		}
		if armed && low == 3 {
			kind := detect.KindSilence
			for j := i - 2; j <= i; j++ {
				if t.counts[j] > 0 {
					kind = detect.KindDrop
				}
			}
			out = append(out, alert{ds.start + int64(i-2)*ds.width, ds.start + int64(i+1)*ds.width, kind})
			armed = false
		}
	}
	return out
}

// dailyDropRule compares, every hour, the last 24 hours' events with the mean
// of the seven 24-hour windows before them: under half of it raises a drop,
// re-armed once the last 24 hours are back above three quarters.
func dailyDropRule(ds *dataset, t *trial) []alert {
	perDay := int(86400 / ds.width)
	perHour := int(3600 / ds.width)
	cum := make([]float64, len(t.counts)+1)
	for i, c := range t.counts {
		cum[i+1] = cum[i] + float64(c)
	}
	var out []alert
	armed := true
	for end := 8 * perDay; end <= len(t.counts); end += perHour {
		last := cum[end] - cum[end-perDay]
		before := (cum[end-perDay] - cum[end-8*perDay]) / 7
		switch {
		case armed && before > 0 && last < before/2:
			out = append(out, alert{ds.start + int64(end-perDay)*ds.width, ds.start + int64(end)*ds.width, detect.KindDrop})
			armed = false
		case !armed && last >= 0.75*before:
			armed = true
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// Restated targets (issue 19): recall counted over the gaps that carry the
// evidence, false alarms after two weeks of history and over the first two
// weeks of a stream (cold start).
const (
	minSilenceHeld  = 20  // a silence counts when its hole should have held this many events
	minDropMissing  = 100 // a drop counts when it took this many events
	targetSilence   = 0.95
	targetSilenceP  = 20 // minutes, median time to detect a silence
	targetDrop      = 0.80
	targetFA        = 0.1 // per stream-week after two weeks
	targetColdStart = 0.2 // per stream over its first two weeks
)

// coldAlarms counts a trial's alerts during warm-up (its first two weeks,
// without history), outside labelled windows.
func (ds *dataset) coldAlarms(alerts []alert) int {
	n := 0
	for _, a := range alerts {
		if a.detected < ds.start+int64(ds.warm)*ds.width && !ds.inWindow(a.detected) {
			n++
		}
	}
	return n
}

// carriesEvidence reports whether the trial's injection is one the restated
// targets count.
func carriesEvidence(t *trial) bool {
	if t.inj.kind == detect.KindSilence {
		return t.inj.held >= minSilenceHeld
	}
	return t.inj.loss >= 0.5 && t.inj.missing >= minDropMissing
}

// printTargets prints the restated targets per group of data sets, for
// gapwatch and every reference rule.
func printTargets(sets []*dataset) {
	fmt.Printf("\n## Restated targets: silences whose hole held ≥ %d events, drops (≥ 50 %% lost) that took ≥ %d events\n\n", minSilenceHeld, minDropMissing)
	fmt.Printf("targets: silence recall ≥ %.2f, TTD p50 ≤ %dm; drop recall ≥ %.2f; FA ≤ %.1f per stream-week after two weeks; cold start ≤ %.1f FA per stream over its first two weeks\n\n",
		targetSilence, targetSilenceP, targetDrop, targetFA, targetColdStart)
	fmt.Println("| data sets              | detector  | silence recall  | TTD p50 | drop recall     | TTD p50 | FA/str-wk | cold FA/stream | met |")
	fmt.Println("|------------------------|-----------|-----------------|---------|-----------------|---------|-----------|----------------|-----|")
	for _, r := range targetRows(sets) {
		sr := rate(r.recall, detect.KindSilence)
		dr := rate(r.recall, detect.KindDrop)
		ttd := quantile(r.recall.ttd[detect.KindSilence], 0.5)
		fa := float64(r.all.falseAlarms) / r.all.streamWeeks
		cs := float64(r.cold) / float64(r.streams)
		met := "no"
		if sr >= targetSilence && (math.IsNaN(ttd) || ttd <= targetSilenceP) && (math.IsNaN(dr) || dr >= targetDrop) && fa <= targetFA && cs <= targetColdStart {
			met = "yes"
		}
		fmt.Printf("| %-22s | %-9s | %-15s | %7s | %-15s | %7s | %9.3f | %14.3f | %-3s |\n", r.group, r.det,
			fmtRecall(r.recall, detect.KindSilence), fmtMin(ttd), fmtRecall(r.recall, detect.KindDrop),
			fmtMin(quantile(r.recall.ttd[detect.KindDrop], 0.5)), fa, cs, met)
	}
	// gapwatch's restated drop recall per series, for the groups with more
	// than one (where the group's figure hides which series it misses).
	for _, g := range groupNames(sets) {
		var parts []string
		for _, ds := range sets {
			if ds.group != g || ds.group == ds.name || len(groupSets(sets, g)) < 2 {
				continue
			}
			sc := newScore()
			for _, t := range ds.trials {
				if carriesEvidence(t) {
					ds.scoreInto(sc, t, t.alerts)
				}
			}
			parts = append(parts, fmt.Sprintf("%s %s", ds.name, fmtRecall(sc, detect.KindDrop)))
		}
		if len(parts) > 0 {
			fmt.Printf("\ngapwatch restated drop recall, %s: %s", g, strings.Join(parts, ", "))
		}
	}
	fmt.Println()
	fmt.Println("\nReferences: static/static15 = no events for 60/15 minutes; seasonal = median of the same time of week (up to 4 weeks) − 3 MADs, 3 buckets in a row; dailydrop = last 24 h under half the mean of the 7 days before, checked hourly.")
}

// targetRow is what one detector achieved on one group of data sets (or
// "all"), restated: recall over the injections that carry the evidence,
// false alarms over all trials, and the alarms of their first two weeks.
type targetRow struct {
	group, det    string
	recall, all   *score
	cold, streams int
}

// targetRows scores every group of sets, then all of them, for gapwatch and
// each reference rule in turn.
func targetRows(sets []*dataset) []targetRow {
	var rows []targetRow
	for _, g := range append(groupNames(sets), "all") {
		for di, det := range detectors() {
			r := targetRow{group: g, det: det, recall: newScore(), all: newScore()}
			eachTrial(sets, g, di, func(ds *dataset, t *trial, alerts []alert) {
				ds.scoreInto(r.all, t, alerts)
				if carriesEvidence(t) {
					ds.scoreInto(r.recall, t, alerts)
				}
				r.cold += ds.coldAlarms(alerts)
				r.streams++
			})
			rows = append(rows, r)
		}
	}
	return rows
}

// detectors names gapwatch and the reference rules, in the order of a
// trial's alerts and refs (eachTrial).
func detectors() []string {
	dets := []string{"gapwatch"}
	for _, r := range references {
		dets = append(dets, r.name)
	}
	return dets
}

// eachTrial calls fn with every trial of the sets in group g ("all": of
// every set) and detector di's alerts on it: gapwatch's for 0, else
// references[di−1]'s.
func eachTrial(sets []*dataset, g string, di int, fn func(ds *dataset, t *trial, alerts []alert)) {
	for _, ds := range sets {
		if g != "all" && ds.group != g {
			continue
		}
		for _, t := range ds.trials {
			alerts := t.alerts
			if di > 0 {
				alerts = t.refs[di-1]
			}
			fn(ds, t, alerts)
		}
	}
}

// groupNames returns the groups of sets, in their order.
func groupNames(sets []*dataset) []string {
	var groups []string
	for _, ds := range sets {
		if !slices.Contains(groups, ds.group) {
			groups = append(groups, ds.group)
		}
	}
	return groups
}

// groupSets returns the data sets of group g.
func groupSets(sets []*dataset, g string) []*dataset {
	var out []*dataset
	for _, ds := range sets {
		if ds.group == g {
			out = append(out, ds)
		}
	}
	return out
}

func rate(sc *score, k detect.Kind) float64 {
	if sc.total[k] == 0 {
		return math.NaN()
	}
	return float64(sc.found[k]) / float64(sc.total[k])
}
