package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/gapwatch/gapwatch/detect"
)

// Young streams: a fresh install sees a source's first two weeks with no
// history. The tables above inject after two weeks of it; here each real
// series' first youngDays days are replayed alone, as a series that short
// is (a load balancer's two weeks of request counts), with the injections
// from day youngWarm on, when the hourly profile is in use. False alarms
// are counted from that day too.
const (
	youngDays = 14
	youngWarm = 2
)

// youngSets returns, for each real data set, its series' first youngDays
// days as a data set of their own, with as many trials as the data set,
// injected from day youngWarm.
func youngSets(sets []*dataset, seed uint64) []*dataset {
	var out []*dataset
	for k, ds := range sets {
		if ds.series == nil {
			continue // synthetic: its streams have no series of their own
		}
		perDay := int(86400 / ds.width)
		n := min(ds.n, youngDays*perDay)
		if n <= youngWarm*perDay+perDay {
			continue
		}
		y := &dataset{name: ds.name, group: ds.group, width: ds.width, phase: ds.phase, start: ds.start,
			warm: youngWarm * perDay, n: n, windows: ds.windows}
		y.addTrials(ds.series[:n], max(1, len(ds.trials)), rand.New(rand.NewPCG(seed, uint64(k)+500)))
		out = append(out, y)
	}
	return out
}

// printYoung prints the restated figures on the young data sets, per group,
// for gapwatch and the reference rules.
func printYoung(young []*dataset) {
	if len(young) == 0 {
		return
	}
	fmt.Printf("\n## Young streams: each real series' first %d days alone, gaps injected from day %d (restated: silences whose hole held ≥ %d events, drops that took ≥ %d)\n\n",
		youngDays, youngWarm+1, minSilenceHeld, minDropMissing)
	fmt.Println("| data sets              | detector  | silence recall  | TTD p50 | drop recall     | TTD p50 | FA/str-wk |")
	fmt.Println("|------------------------|-----------|-----------------|---------|-----------------|---------|-----------|")
	for _, r := range targetRows(young) {
		fmt.Printf("| %-22s | %-9s | %-15s | %7s | %-15s | %7s | %9.3f |\n", r.group, r.det,
			fmtRecall(r.recall, detect.KindSilence), fmtMin(quantile(r.recall.ttd[detect.KindSilence], 0.5)),
			fmtRecall(r.recall, detect.KindDrop), fmtMin(quantile(r.recall.ttd[detect.KindDrop], 0.5)),
			float64(r.all.falseAlarms)/r.all.streamWeeks)
	}
}
