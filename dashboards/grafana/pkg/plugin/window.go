package plugin

import (
	"errors"
	"fmt"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// The API's caps (storage.MaxPoints and storage.MaxCoverageCells in the
// pipeline module, which this module does not import).
const (
	maxRatePoints    = 11_000
	maxCoverageCells = 200_000
)

// errEmptyRange is a time range with nothing in it.
var errEmptyRange = errors.New("the time range is empty: its end is not after its start")

// window lays tr on the API's step grid. The step is interval rounded up to
// a multiple of bucket (at least one bucket), coarsened by whole buckets until
// the grid has at most maxSteps steps. The range is widened to whole seconds.
func window(tr backend.TimeRange, interval, bucket time.Duration, maxSteps int) (Window, error) {
	if bucket < time.Second || bucket%time.Second != 0 {
		return Window{}, fmt.Errorf("bucket %s is not a whole number of seconds", bucket)
	}
	if maxSteps < 1 {
		return Window{}, fmt.Errorf("at most %d steps: nothing fits", maxSteps)
	}
	from := tr.From.UTC().Truncate(time.Second)
	to := tr.To.UTC().Truncate(time.Second)
	if to.Before(tr.To) {
		to = to.Add(time.Second)
	}
	if !from.Before(to) {
		return Window{}, errEmptyRange
	}
	step := roundUp(max(interval, bucket), bucket)
	if n := steps(from, to, step); n > maxSteps {
		// The smallest multiple of the bucket that fits, give or take the
		// grid's alignment: then walk up a bucket at a time.
		step = roundUp(to.Sub(from)/time.Duration(maxSteps), bucket)
		for steps(from, to, step) > maxSteps {
			step += bucket
		}
	}
	return Window{From: from, To: to, Step: step}, nil
}

// roundUp is d rounded up to a multiple of m.
func roundUp(d, m time.Duration) time.Duration {
	if r := d % m; r != 0 {
		return d + m - r
	}
	return d
}

// steps is the number of steps of the API's grid over [from, to): the grid
// starts at from rounded down to a multiple of step since the epoch.
func steps(from, to time.Time, step time.Duration) int {
	s := int64(step / time.Second)
	start := floorDiv(from.Unix(), s) * s
	return int((to.Unix() - start + s - 1) / s)
}

// gridStart is the first step's start, as the API lays it.
func gridStart(w Window) time.Time { return floorTo(w.From, w.Step) }

// floorTo is t rounded down to a multiple of step (whole seconds) since the
// epoch.
func floorTo(t time.Time, step time.Duration) time.Time {
	s := int64(step / time.Second)
	return time.Unix(floorDiv(t.Unix(), s)*s, 0).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
