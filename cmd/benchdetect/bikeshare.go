package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// loadBikeshare reads the Capital Bikeshare 2011 hourly rentals (UCI "Bike
// Sharing Dataset", CC BY 4.0, as shipped in the ISLP package's
// data/Bikeshare.csv; `deploy/tools.sh bikeshare` installs it and prints the
// path) as two real count series at 1-hour buckets: casual riders (bursty,
// weather-driven, busiest at weekends) and registered riders (commuter peaks
// on weekdays, flat weekends: an hour-by-weekday rhythm that is not a product
// of an hourly and a daily profile). Hours absent from the file are counted
// as empty, except runs of three or more (the January snowstorm, hurricane
// Irene), which are outages of the system itself: they are treated like
// NAB's labelled windows (no injection there, no false alarm counted). So are
// the hours the file marks as rain or snow (column weathersit), from the start
// of the hour before to the end of the rainAfter-th hour after (an alarm is
// placed by its detection time, its bucket's end): rentals fall by up to 80 %
// in them — a real drop of the series, which its own labels name (as NAB's
// windows name its anomalies), not a loss of events.
func loadBikeshare(path string, trials int, seed uint64) ([]*dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, need := range []string{"day", "hr", "casual", "registered"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s: no column %q", path, need)
		}
	}
	const width = 3600
	n := 365 * 24
	casual, registered := make([]uint64, n), make([]uint64, n)
	present, rain := make([]bool, n), make([]bool, n)
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		day, err1 := strconv.Atoi(rec[col["day"]])
		hr, err2 := strconv.Atoi(rec[col["hr"]])
		c, err3 := strconv.ParseUint(rec[col["casual"]], 10, 64)
		g, err4 := strconv.ParseUint(rec[col["registered"]], 10, 64)
		if errors.Join(err1, err2, err3, err4) != nil || day < 1 || day > 365 || hr < 0 || hr > 23 {
			return nil, fmt.Errorf("%s:%d: bad row %q", path, line, rec)
		}
		i := (day-1)*24 + hr
		casual[i], registered[i], present[i] = c, g, true
		if w, ok := col["weathersit"]; ok && wet(rec[w]) {
			rain[i] = true
		}
	}
	start := time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	var windows [][2]int64
	for _, r := range runs(n, func(i int) bool { return !present[i] }) {
		if r[1]-r[0] >= 3 {
			windows = append(windows, [2]int64{start + int64(r[0]-1)*width, start + int64(r[1]+1)*width})
		}
	}
	for _, r := range runs(n, func(i int) bool { return rain[i] }) {
		windows = append(windows, [2]int64{start + int64(r[0]-1)*width, start + int64(r[1]+rainAfter)*width})
	}
	var out []*dataset
	for k, s := range []struct {
		name   string
		counts []uint64
	}{{"bikeshare_casual", casual}, {"bikeshare_registered", registered}} {
		ds := &dataset{name: s.name, group: "Bikeshare", width: width, start: start, warm: 14 * 24, n: n, windows: windows}
		ds.addTrials(s.counts, trials, rand.New(rand.NewPCG(seed, uint64(k)+200)))
		out = append(out, ds)
	}
	return out, nil
}

// runs returns the runs [i, j) of consecutive indices below n at which in
// holds, in order.
func runs(n int, in func(i int) bool) [][2]int {
	var out [][2]int
	for i := 0; i < n; i++ {
		if !in(i) {
			continue
		}
		j := i
		for j < n && in(j) {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// rainAfter is how many hours after the last rain or snow hour Bikeshare's
// weather window lasts: the roads stay wet, and the rentals low.
const rainAfter = 4

// wet reports whether a weathersit value marks rain or snow: ISLP's labels,
// or the UCI file's codes 3 and 4.
func wet(weathersit string) bool {
	switch weathersit {
	case "light rain/snow", "heavy rain/snow", "3", "4":
		return true
	}
	return false
}
