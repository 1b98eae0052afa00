package main

import (
	"fmt"
	"math"

	"github.com/gapwatch/gapwatch/detect"
)

// volumeBands are the hourly volumes (events per hour at the injection) by
// which printSilenceByVolume breaks the restated silence target down.
var volumeBands = [][2]float64{{0, 30}, {30, 150}, {150, 1000}, {1000, math.Inf(1)}}

func bandName(b [2]float64) string {
	switch {
	case b[0] == 0:
		return fmt.Sprintf("< %g", b[1])
	case math.IsInf(b[1], 1):
		return fmt.Sprintf("> %g", b[0])
	}
	return fmt.Sprintf("%g–%g", b[0], b[1])
}

// printSilenceByVolume prints the restated silence target (holes that held
// ≥ minSilenceHeld events) over all data sets, real and synthetic, by the
// stream's hourly volume at the injection (inj.perHour), for gapwatch and
// every reference rule; false alarms per stream-week after two weeks by the
// stream's mean hourly volume.
func printSilenceByVolume(sets []*dataset) {
	fmt.Printf("\n## Restated silences by volume at the injection (events per hour; hole held ≥ %d events; all data sets)\n\n", minSilenceHeld)
	fmt.Println("| events/hour | detector  | silence recall  | TTD p50 | TTD p95 | FA/str-wk (mean volume) |")
	fmt.Println("|-------------|-----------|-----------------|---------|---------|-------------------------|")
	for _, band := range volumeBands {
		for di, det := range detectors() {
			recall, all := newScore(), newScore()
			eachTrial(sets, "all", di, func(ds *dataset, t *trial, alerts []alert) {
				if v := t.perMin * 60; v >= band[0] && v < band[1] {
					ds.scoreInto(all, t, alerts)
				}
				if t.inj.kind == detect.KindSilence && carriesEvidence(t) && t.inj.perHour >= band[0] && t.inj.perHour < band[1] {
					ds.scoreInto(recall, t, alerts)
				}
			})
			fa := "-"
			if all.streamWeeks > 0 {
				fa = fmt.Sprintf("%.3f", float64(all.falseAlarms)/all.streamWeeks)
			}
			fmt.Printf("| %-11s | %-9s | %-15s | %7s | %7s | %23s |\n", bandName(band), det,
				fmtRecall(recall, detect.KindSilence), fmtMin(quantile(recall.ttd[detect.KindSilence], 0.5)),
				fmtMin(quantile(recall.ttd[detect.KindSilence], 0.95)), fa)
		}
	}
}
