package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"
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
	r := csv.NewReader(f)
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !slices.Equal(head, []string{"time", "tenant", "source", "count"}) {
		return nil, fmt.Errorf("%s: header %q, want time,tenant,source,count", path, head)
	}
	const width = 300
	start := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	n := int((time.Date(2001, 7, 1, 0, 0, 0, 0, time.UTC).Unix() - start) / width)
	series := map[string][]uint64{}
	var names []string
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		t, err1 := time.Parse(time.RFC3339, rec[0])
		c, err2 := strconv.ParseUint(rec[3], 10, 64)
		i := int((t.Unix() - start) / width)
		if err1 != nil || err2 != nil || i < 0 || i >= n || t.Unix()%width != 0 {
			return nil, fmt.Errorf("%s:%d: bad row %q", path, line, rec)
		}
		s, ok := series[rec[2]]
		if !ok {
			s = make([]uint64, n)
			series[rec[2]] = s
			names = append(names, rec[2])
		}
		s[i] += c
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
