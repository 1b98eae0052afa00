package main

import (
	"fmt"
	"math"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// What still escapes: every restated drop gapwatch missed is replayed alone
// through detect.ExplainStream (streams are judged independently, so the
// replay decides as the benchmark's engine did), and the largest evidence
// its drop tests reached while the loss could still be found (its buckets
// and the two after, as scoreInto counts a detection) is printed as a
// share of the threshold, in bands. A loss that began while the stream
// already had a gap open cannot open another (one gap per stream; the open
// gap's missing events grow instead): those are counted apart. The bands
// tell whether a miss is near the threshold (a lower threshold, a larger
// false-alarm budget, would find it) or far below it (the tests do not see
// it at all).

// escapeBands are the upper edges of the peak-evidence bands, as shares of
// the drop threshold.
var escapeBands = []float64{0.5, 0.75, 0.9, math.Inf(1)}

// escapes is what the missed drops of one group reached.
type escapes struct {
	missed, inGap, differs int
	bands                  []int
	peaks                  []float64
}

// printEscapes prints, per group of sets and over all, the restated drops
// gapwatch missed by the peak evidence their replay reached.
func printEscapes(title string, sets []*dataset) error {
	byGroup := map[string]*escapes{} // and "all"
	for _, ds := range sets {
		for _, t := range ds.trials {
			if t.inj.kind != detect.KindDrop || !carriesEvidence(t) {
				continue
			}
			sc := newScore()
			ds.scoreInto(sc, t, t.alerts)
			if sc.found[detect.KindDrop] > 0 {
				continue
			}
			peak, inGap, differs, err := ds.escape(t)
			if err != nil {
				return err
			}
			for _, g := range []string{ds.group, "all"} {
				if byGroup[g] == nil {
					byGroup[g] = &escapes{bands: make([]int, len(escapeBands))}
				}
				byGroup[g].add(peak, inGap, differs)
			}
		}
	}
	fmt.Printf("\n## What still escapes: %s\n\n", title)
	fmt.Println("Each restated drop gapwatch missed, replayed alone: the largest drop evidence (50 %, 75 % CUSUMs, rank test) it reached, as a share of the threshold.")
	fmt.Println()
	fmt.Println("| data sets              | missed | in an open gap | < 0.5 | 0.5–0.75 | 0.75–0.9 | ≥ 0.9 | peak p50 |")
	fmt.Println("|------------------------|--------|----------------|-------|----------|----------|-------|----------|")
	for _, g := range append(groupNames(sets), "all") {
		es := byGroup[g]
		if es == nil {
			continue
		}
		fmt.Printf("| %-22s | %6d | %14d | %5d | %8d | %8d | %5d | %8.2f |\n", g, es.missed, es.inGap,
			es.bands[0], es.bands[1], es.bands[2], es.bands[3], quantile(es.peaks, 0.5))
	}
	if all := byGroup["all"]; all != nil && all.differs > 0 {
		// The replay opened a gap the benchmark's engine did not: a
		// replay that does not decide as live would make the bands wrong.
		fmt.Printf("\nWARNING: %d replays opened a gap in the loss that the benchmark's engine missed\n", all.differs)
	}
	return nil
}

func (es *escapes) add(peak float64, inGap, differs bool) {
	es.missed++
	if differs {
		es.differs++
	}
	if inGap {
		es.inGap++
		return
	}
	es.peaks = append(es.peaks, peak)
	for i, edge := range escapeBands {
		if peak < edge {
			es.bands[i]++
			return
		}
	}
}

// escape replays trial t's stream alone up to the end of its injection's
// scoring window and returns the largest drop evidence over that window as
// a share of the threshold, whether the stream had a gap open when the loss
// began, and whether the replay opened a gap in the window.
func (ds *dataset) escape(t *trial) (peak float64, inGap, differs bool, err error) {
	s, e := ds.findable(t)
	var counts []storage.Count
	for i, v := range t.counts {
		b := ds.start + int64(i)*ds.width
		if b >= e {
			break
		}
		if v > 0 {
			counts = append(counts, storage.Count{Tenant: ds.name, Source: t.name, Bucket: b, Events: v})
		}
	}
	cfg := detect.Config{Bucket: time.Duration(ds.width) * time.Second, Phase: time.Duration(ds.phase) * time.Second}
	xs, opened, err := detect.ExplainStream(cfg, ds.name, t.name, counts, time.Unix(s-ds.width, 0), time.Unix(e, 0))
	if err != nil {
		return 0, false, false, err
	}
	for _, x := range xs {
		if x.Bucket.Unix() < s {
			inGap = x.State == "gap" || x.State == "drop"
			continue
		}
		if x.DropThreshold > 0 {
			peak = max(peak, max(x.Drop50, x.Drop75, x.Rank)/x.DropThreshold)
		}
	}
	for _, ev := range opened {
		if d := ev.DetectedAt.Unix(); d >= s && d <= e {
			differs = true
		}
	}
	return peak, inGap, differs, nil
}
