package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/gapwatch/gapwatch/detect"
)

// loadFlights reads departures per 5 minutes of ten US airports from January
// to June 2001 (vega-datasets' flights-3m, the US DOT/BTS on-time records;
// `deploy/tools.sh flights` makes the CSV, backtest's time,tenant,source,count,
// and prints its path) as real count series: scheduled traffic in hub banks
// (clustered arrivals), empty nights, quieter Saturdays, holidays and storms
// the file does not label. Each airport is replayed as trials/2 streams (its
// six months cost six times a NAB series) with one injection each; bucket
// times absent from the file are empty buckets.
func loadFlights(path string, trials int, seed uint64) ([]*dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts, err := detect.ReadCountsCSV(f) // the backtest's reader: the file is in its format
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	const width = 300
	start := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	n := int((time.Date(2001, 7, 1, 0, 0, 0, 0, time.UTC).Unix() - start) / width)
	series := map[string][]uint64{}
	var names []string
	for _, c := range counts {
		i := int((c.Bucket - start) / width)
		if i < 0 || i >= n || c.Bucket%width != 0 {
			return nil, fmt.Errorf("%s: %s/%s at %s is outside January–June 2001's 5-minute buckets",
				path, c.Tenant, c.Source, time.Unix(c.Bucket, 0).UTC().Format(time.RFC3339))
		}
		s, ok := series[c.Source]
		if !ok {
			s = make([]uint64, n)
			series[c.Source] = s
			names = append(names, c.Source)
		}
		s[i] += c.Events
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no counts", path)
	}
	slices.Sort(names)
	var out []*dataset
	for k, name := range names {
		ds := &dataset{name: "flights_" + name, group: "Flights", width: width, start: start, warm: 14 * 288, n: n}
		ds.addTrials(series[name], max(1, trials/2), rand.New(rand.NewPCG(seed, uint64(k)+300)))
		out = append(out, ds)
	}
	return out, nil
}
