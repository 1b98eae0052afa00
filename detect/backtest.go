package detect

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// ErrBadInput marks backtest input that cannot be read as counts.
var ErrBadInput = errors.New("bad backtest input")

// ReadCountsCSV reads bucketed counts in the backtest format: a header
// `time,tenant,source,count`, then one row per stream and bucket, time being
// the bucket start in RFC 3339. The counts are of the arrival clock.
func ReadCountsCSV(r io.Reader) ([]storage.Count, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 4
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: reading the header: %w", ErrBadInput, err)
	}
	if strings.Join(head, ",") != "time,tenant,source,count" {
		return nil, fmt.Errorf("%w: header must be time,tenant,source,count, got %q", ErrBadInput, strings.Join(head, ","))
	}
	var out []storage.Count
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		line, _ := cr.FieldPos(0)
		t, err := time.Parse(time.RFC3339, rec[0])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: time %q is not RFC 3339", ErrBadInput, line, rec[0])
		}
		n, err := strconv.ParseUint(rec[3], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: count %q is not a non-negative integer", ErrBadInput, line, rec[3])
		}
		if rec[1] == "" || rec[2] == "" {
			return nil, fmt.Errorf("%w: line %d: tenant and source are required", ErrBadInput, line)
		}
		out = append(out, storage.Count{
			Tenant: strings.Clone(rec[1]), Source: strings.Clone(rec[2]),
			Clock: storage.Arrival, Bucket: t.Unix(), Events: n,
		})
	}
}

// InferStep returns the bucket width of counts — the smallest positive
// distance between two bucket starts of one stream — and the phase of the
// bucket starts. Every start must lie on that grid.
func InferStep(counts []storage.Count) (step, phase time.Duration, err error) {
	if len(counts) == 0 {
		return 0, 0, fmt.Errorf("%w: no counts", ErrBadInput)
	}
	byStream := map[streamKey][]int64{}
	for _, c := range counts {
		k := streamKey{c.Tenant, c.Source}
		byStream[k] = append(byStream[k], c.Bucket)
	}
	var w int64
	for _, ts := range byStream {
		slices.Sort(ts)
		for i := 1; i < len(ts); i++ {
			if d := ts[i] - ts[i-1]; d > 0 && (w == 0 || d < w) {
				w = d
			}
		}
	}
	if w == 0 {
		return 0, 0, fmt.Errorf("%w: cannot infer the bucket width from a single bucket per stream; give --step", ErrBadInput)
	}
	step = time.Duration(w) * time.Second
	phase, err = checkGrid(counts, step)
	return step, phase, err
}

// checkGrid returns the phase of the bucket starts on a grid of width step, or
// an error if they are not all on one grid.
func checkGrid(counts []storage.Count, step time.Duration) (time.Duration, error) {
	w := int64(step / time.Second)
	p := ((counts[0].Bucket % w) + w) % w
	for _, c := range counts {
		if ((c.Bucket%w)+w)%w != p {
			return 0, fmt.Errorf("%w: bucket start %s is not on the %s grid of %s",
				ErrBadInput, time.Unix(c.Bucket, 0).UTC().Format(time.RFC3339), step, time.Unix(counts[0].Bucket, 0).UTC().Format(time.RFC3339))
		}
	}
	return time.Duration(p) * time.Second, nil
}

// Backtest replays counts through an engine as live detection would see them:
// bucket by bucket, each bucket's counts delivered with the watermark at its
// end, and calls emit for every event in order. cfg.Bucket 0 means inferred
// from the counts (InferStep); cfg.Phase is always taken from the counts.
// Gaps still open at the end stay open (no resolution is invented).
func Backtest(counts []storage.Count, cfg Config, emit func(Event) error) error {
	if len(counts) == 0 {
		return nil
	}
	var err error
	if cfg.Bucket == 0 {
		cfg.Bucket, cfg.Phase, err = InferStep(counts)
	} else {
		cfg.Phase, err = checkGrid(counts, cfg.Bucket)
	}
	if err != nil {
		return err
	}
	e, err := New(cfg)
	if err != nil {
		return err
	}
	sorted := slices.Clone(counts)
	slices.SortStableFunc(sorted, func(a, b storage.Count) int {
		switch {
		case a.Bucket < b.Bucket:
			return -1
		case a.Bucket > b.Bucket:
			return 1
		}
		return 0
	})
	w := int64(cfg.Bucket / time.Second)
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].Bucket == sorted[i].Bucket {
			j++
		}
		res := e.Advance(time.Unix(sorted[i].Bucket+w, 0), sorted[i:j])
		for _, ev := range res.Events {
			if err := emit(ev); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}
