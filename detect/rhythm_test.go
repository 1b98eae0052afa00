package detect

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
)

// rhythmMonday is a Monday, 00:00 UTC.
var rhythmMonday = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC).Unix()

// runRhythm feeds one stream days of 5-minute buckets whose mean rate(t)
// gives, gamma-Poisson with a little dispersion, and returns the gap.opened
// events.
func runRhythm(t *testing.T, days int, rate func(b int64) float64) []Event {
	t.Helper()
	e, err := New(Config{Bucket: 5 * time.Minute, Workers: 1})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(5, 6))
	var opened []Event
	for i := range int64(days) * 288 {
		b := rhythmMonday + i*300
		var cs []storage.Count
		if n := simulate.GammaPoisson(r, rate(b), 0.02); n > 0 {
			cs = []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}}
		}
		for _, ev := range e.Advance(time.Unix(b+300, 0), cs).Events {
			if ev.Type == TypeGapOpened {
				opened = append(opened, ev)
			}
		}
	}
	return opened
}

func hourOf(b int64) int64 { return b % 86400 / 3600 }

func weekday(b int64) int64 { return (b/86400 + 3) % 7 } // Monday = 0

// A source idle every night from 01:00 to 05:00 is alerted the first two
// nights (a hole is news until it recurs), then its nights are expected.
func TestNightlyIdleHoursAreLearned(t *testing.T) {
	opened := runRhythm(t, 14, func(b int64) float64 {
		if h := hourOf(b); h >= 1 && h < 5 {
			return 0
		}
		return 100
	})
	for _, ev := range opened {
		require.Less(t, ev.StartedAt.Unix(), rhythmMonday+2*86400, "a gap after the second night: %+v", ev)
	}
	require.NotEmpty(t, opened, "the first night is a silence: nothing said it would be idle")
}

// A source at 30 % on weekends is not alerted every weekend: after two
// weekends the weekly profile holds the dip.
func TestWeekendDipIsLearned(t *testing.T) {
	opened := runRhythm(t, 5*7, func(b int64) float64 {
		if weekday(b) >= 5 {
			return 30
		}
		return 100
	})
	for _, ev := range opened {
		require.Less(t, ev.StartedAt.Unix(), rhythmMonday+14*86400, "a gap after the second weekend: %+v", ev)
	}
}

// One long outage is not a rhythm: a stream down from 10:00 one day to 16:00
// the next has the same hours missing on two days running, but it was never
// healthy in between, so those hours are still expected: a silence at noon
// two days later is caught.
func TestLongOutageIsNotLearnedAsRhythm(t *testing.T) {
	outFrom, outTo := rhythmMonday+7*86400+10*3600, rhythmMonday+8*86400+16*3600
	noon := rhythmMonday + 10*86400 + 12*3600
	opened := runRhythm(t, 11, func(b int64) float64 {
		if b >= outFrom && b < outTo || b >= noon && b < noon+3600 {
			return 0
		}
		return 100
	})
	var starts []int64
	for _, ev := range opened {
		starts = append(starts, ev.StartedAt.Unix())
	}
	require.Contains(t, starts, outFrom, "the outage")
	require.Contains(t, starts, noon, "the silence at noon two days after the outage")
}
