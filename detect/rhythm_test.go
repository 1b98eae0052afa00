package detect

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
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
	return runRhythmWith(t, Config{}, days, rate)
}

// runRhythmWith is runRhythm with cfg (bucket and workers set here).
func runRhythmWith(t *testing.T, cfg Config, days int, rate func(b int64) float64) []Event {
	t.Helper()
	return runRhythmDrawn(t, cfg, rand.New(rand.NewPCG(5, 6)), 0.02, int64(days)*288, rate)
}

// runRhythmDrawn is runRhythmWith over the first buckets buckets, the
// counts drawn by r with dispersion disp.
func runRhythmDrawn(t *testing.T, cfg Config, r *rand.Rand, disp float64, buckets int64, rate func(b int64) float64) []Event {
	t.Helper()
	cfg.Bucket, cfg.Workers = 5*time.Minute, 1
	e, err := New(cfg)
	require.NoError(t, err)
	var opened []Event
	for i := range buckets {
		b := rhythmMonday + i*300
		var cs []storage.Count
		if n := simulate.GammaPoisson(r, rate(b), disp); n > 0 {
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

// runInflation's closed form is the variance ratio of a run of AR(1) blocks:
// 1 + 2·Σ_{h<k} (1 − h/k)·rho^h, from 1 for one block to (1+rho)/(1−rho).
func TestRunInflation(t *testing.T) {
	for _, rho := range []float64{0, 0.3, 0.735, 0.8} {
		for _, k := range []int32{1, 2, 3, 7, 40, 10_000} {
			want := 1.0
			for h := 1; h < int(k); h++ {
				want += 2 * (1 - float64(h)/float64(k)) * math.Pow(rho, float64(h))
			}
			require.InDelta(t, want, runInflation(rho, float64(k)), 1e-9, "rho %v k %d", rho, k)
		}
		require.InDelta(t, (1+rho)/(1-rho), runInflation(rho, 1_000_000), 1e-4)
	}
	require.Equal(t, 1.0, runInflation(0.8, 1), "one block: its dispersion holds the drift already")
	require.Greater(t, runInflation(0.5, 2.5), runInflation(0.5, 2))
	require.Less(t, runInflation(0.5, 2.5), runInflation(0.5, 3))
}

// A busy stream whose rate wanders slowly (log-normal AR(1) drift, as in the
// detection benchmark) loses 60 % of its events for three hours: the drop is
// found within them. Its blocks' errors are serially correlated, which the
// test must allow for — but for the length of the loss so far, not as if
// every block were part of a long run (that found this drop after 4 h, if at
// all). The same stream without the loss raises nothing.
func TestDropUnderDrift(t *testing.T) {
	const perBucket = 250.0
	run := func(loss float64) []Event {
		e, err := New(Config{Bucket: 5 * time.Minute, Workers: 1})
		require.NoError(t, err)
		r := rand.New(rand.NewPCG(7, 8))
		z := 0.0
		const sigma, phi = 0.15, 0.95
		lossFrom := int64(28 * 288)
		var opened []Event
		for i := range lossFrom + 36 {
			z = phi*z + sigma*math.Sqrt(1-phi*phi)*r.NormFloat64()
			m := perBucket * math.Exp(z-sigma*sigma/2)
			if i >= lossFrom {
				m *= 1 - loss
			}
			b := rhythmMonday + i*300
			n := simulate.GammaPoisson(r, m, 0.03)
			for _, ev := range e.Advance(time.Unix(b+300, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}}).Events {
				if ev.Type == TypeGapOpened {
					require.GreaterOrEqual(t, ev.DetectedAt.Unix(), rhythmMonday+lossFrom*300, "a false alarm: %+v", ev)
					opened = append(opened, ev)
				}
			}
		}
		return opened
	}
	require.Empty(t, run(0))
	opened := run(0.6)
	require.NotEmpty(t, opened, "the loss was not found within 3 hours")
	require.Equal(t, KindDrop, opened[0].Kind)
}

// ExpectLast gives, per Advance, each judged stream's expectation of its last
// judged bucket, exactly as ExpectEvery gives it among all of them, and
// LastEvents is the last bucket with events so far, through gaps, retirements
// and streams that come back.
func TestExpectLastIsTheLastOfEvery(t *testing.T) {
	cfg := Config{Bucket: time.Minute, Workers: 2, RetireAfter: 2 * time.Hour, Expectations: true}
	every, err := New(cfg)
	require.NoError(t, err)
	last, err := New(cfg)
	require.NoError(t, err)
	last.SetExpectations(ExpectLast)
	r := rand.New(rand.NewPCG(9, 10))
	t0 := rhythmMonday
	lastEvents := map[streamKey]time.Time{}
	retired := 0
	for step := 0; step < 60; step++ {
		var counts []storage.Count
		span := 1 + r.IntN(20) // buckets in this Advance
		for i := range span {
			b := t0 + int64(step*20+i)*60
			for s := range 6 {
				if s == 5 && step > 10 && step < 30 { // silent long enough to retire, then back
					continue
				}
				if n := simulate.GammaPoisson(r, float64(1+s*20), 0.2); n > 0 && r.IntN(10) > 0 {
					counts = append(counts, storage.Count{Tenant: "t", Source: string(rune('a' + s)), Bucket: b, Events: n})
				}
			}
		}
		wm := time.Unix(t0+int64(step*20+span)*60, 0)
		want := map[streamKey]Expectation{}
		res := every.Advance(wm, counts)
		retired += len(res.Retired)
		for _, x := range res.Expectations {
			k := streamKey{x.Tenant, x.Source}
			want[k] = x
			if x.Observed > 0 {
				lastEvents[k] = x.Bucket
			}
		}
		got := map[streamKey]Expectation{}
		for _, x := range last.Advance(wm, counts).Expectations {
			got[streamKey{x.Tenant, x.Source}] = x
		}
		require.Len(t, got, len(want), "step %d", step)
		for k, w := range want {
			g := got[k]
			require.Equal(t, lastEvents[k], g.LastEvents, "step %d %v", step, k)
			g.LastEvents = time.Time{}
			require.Equal(t, w, g, "step %d %v", step, k)
		}
	}
	require.Positive(t, retired, "a stream was retired and came back")
}

// BenchmarkReplayStep: a start-up replay's step, 10 one-minute buckets of
// 20 k streams per Advance, by which expectations it returns.
func BenchmarkReplayStep(b *testing.B) {
	const streams, buckets = 20_000, 10
	for _, m := range []struct {
		name string
		mode ExpectMode
	}{{"none", ExpectNone}, {"every", ExpectEvery}, {"last", ExpectLast}} {
		b.Run(m.name, func(b *testing.B) {
			e, err := New(Config{Bucket: time.Minute, Workers: 2, Expectations: true})
			require.NoError(b, err)
			e.SetExpectations(m.mode)
			names := make([]string, streams)
			for i := range names {
				names[i] = "s" + strconv.Itoa(i)
			}
			counts := make([]storage.Count, 0, streams*buckets)
			b.ResetTimer()
			for n := range b.N {
				counts = counts[:0]
				t0 := rhythmMonday + int64(n*buckets)*60
				for k := range buckets {
					for _, s := range names {
						counts = append(counts, storage.Count{Tenant: "t", Source: s, Bucket: t0 + int64(k)*60, Events: 10})
					}
				}
				e.Advance(time.Unix(t0+buckets*60, 0), counts)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*streams*buckets), "ns/stream-bucket")
		})
	}
}

// A fresh stream has no daily profile for two weeks: its first weekends,
// quieter than its weekdays by up to the cold-start floor, raise nothing —
// in UTC, or shifted by a time zone (UTC+9: Friday 15:00 to Sunday 15:00 UTC).
// Before the floor, each of them was a drop.
func TestFirstWeekendsDoNotPage(t *testing.T) {
	for _, c := range []struct {
		name  string
		share float64 // the weekend's rate, of a weekday's
		shift int64   // seconds east of UTC
	}{{"UTC at 30 %", 0.3, 0}, {"UTC at 50 %", 0.5, 0}, {"UTC+9 at 30 %", 0.3, 9 * 3600}, {"UTC−8 at 40 %", 0.4, -8 * 3600}} {
		t.Run(c.name, func(t *testing.T) {
			opened := runRhythm(t, 14, func(b int64) float64 {
				if weekday(b+c.shift) >= 5 {
					return 100 * c.share
				}
				return 100
			})
			require.Empty(t, opened, "a fresh stream's weekend paged")
		})
	}
}

// The floor leaves what is clearly not a weekend: a silence and a heavy loss
// in a fresh stream's first weekend are still found.
func TestFirstWeekendLossesAreFound(t *testing.T) {
	sat := rhythmMonday + 5*86400
	for _, c := range []struct {
		name string
		kind Kind
		keep float64
	}{{"silence", KindSilence, 0}, {"95 % lost", KindDrop, 0.05}} {
		t.Run(c.name, func(t *testing.T) {
			from, to := sat+10*3600, sat+16*3600
			opened := runRhythm(t, 7, func(b int64) float64 {
				rate := 100.0
				if weekday(b) >= 5 {
					rate = 40
				}
				if b >= from && b < to {
					rate *= c.keep
				}
				return rate
			})
			require.Len(t, opened, 1, "events: %+v", opened)
			require.Equal(t, from, opened[0].StartedAt.Unix())
			require.Less(t, opened[0].DetectedAt.Unix(), from+3600)
		})
	}
}

// WeekendFloor 1 judges a fresh stream's weekends as weekdays: its first
// weekend dip is a drop again (for streams known to have no weekly rhythm,
// such as the demo's).
func TestWeekendFloorOne(t *testing.T) {
	dip := func(b int64) float64 {
		if weekday(b) >= 5 {
			return 30
		}
		return 100
	}
	opened := runRhythmWith(t, Config{WeekendFloor: 1}, 7, dip)
	require.NotEmpty(t, opened)
	require.Equal(t, KindDrop, opened[0].Kind)
	require.Empty(t, runRhythm(t, 7, dip), "the default floor keeps it quiet")
	_, err := New(Config{WeekendFloor: 1.5})
	require.ErrorContains(t, err, "weekend floor")
}

// A fresh stream idle every night from 22:00 to 06:00 (a badge reader, an
// office VPN) pages on its first night only: from the second night on, the
// day before says those hours may be idle. Before, it paged on three.
func TestFreshStreamIdleAtNightPagesOnce(t *testing.T) {
	opened := runRhythm(t, 14, func(b int64) float64 {
		if h := hourOf(b); h >= 22 || h < 6 {
			return 0
		}
		return 10
	})
	require.Len(t, opened, 1, "events: %+v", opened)
	require.Equal(t, rhythmMonday+22*3600, opened[0].StartedAt.Unix(), "the first night is news")
}

// The same stream that really dies on its second day is still found: at
// 13:00 (the day before was busy then) as fast as before (5¾ h at 0.5 events
// a bucket, 34 min at 2, 7½ at 10, 1¼ at 100), at 23:00 (an hour idle the
// day before) an hour into the morning it should have resumed (07:02; before,
// the night's false silence had opened at 22:07 and covered it).
func TestFreshStreamDeathIsFound(t *testing.T) {
	for _, c := range []struct {
		rate   float64
		death  int64         // seconds after the first Monday 00:00
		within time.Duration // after the death (or, at night, 06:00)
	}{
		{0.5, 86400 + 13*3600, 6 * time.Hour},
		{2, 86400 + 13*3600, 40 * time.Minute},
		{10, 86400 + 13*3600, 10 * time.Minute},
		{100, 86400 + 13*3600, 2 * time.Minute},
		{10, 86400 + 23*3600, 8*time.Hour + 15*time.Minute},
	} {
		death := rhythmMonday + c.death
		opened := runRhythm(t, 4, func(b int64) float64 {
			if h := hourOf(b); b >= death || h >= 22 || h < 6 {
				return 0
			}
			return c.rate
		})
		var found []Event
		for _, ev := range opened {
			if ev.DetectedAt.Unix() >= death {
				found = append(found, ev)
			}
		}
		require.NotEmpty(t, found, "rate %v, death at %v: not found", c.rate, time.Unix(death, 0).UTC())
		require.Equal(t, KindSilence, found[0].Kind)
		took := found[0].DetectedAt.Sub(time.Unix(death, 0))
		t.Logf("rate %v per bucket, dead at %s: found after %v", c.rate, time.Unix(death, 0).UTC().Format("Mon 15:04"), took)
		require.LessOrEqual(t, took, c.within)
	}
}

// taperingNights is a fresh stream first seen at 06:00 on a Monday, busy by
// day, winding down in the evening (10 events a bucket until 20:00, then the
// rates of evening an hour at a time) and idle from 23:00 to 06:00
// (departures at an airport, an office's VPN).
func taperingNights(evening [3]float64) func(b int64) float64 {
	return func(b int64) float64 {
		switch h := hourOf(b); {
		case h < 6 || h >= 23:
			return 0
		case h >= 20:
			return evening[h-20]
		default:
			return 10
		}
	}
}

// steepEvening falls to a tenth within two hours: the heavy-drop CUSUM's
// evidence.
var steepEvening = [3]float64{4, 1, 0.25}

// Its first night does not page: the evening's fall, significant before the
// first empty run, at hours the stream has never been seen, makes the night
// a possible idle period (coldIdle). Before, the short-term rate (which
// trails the wind-down) expected the evening's rate through the night.
func TestFreshStreamWindingDownForTheNightDoesNotPage(t *testing.T) {
	opened := runRhythm(t, 14, taperingNights(steepEvening))
	require.Empty(t, opened, "a fresh stream's first night paged")
}

// The same stream dying for good is found: at 13:00 on its first day (no fall
// before it) as fast as a stream at that rate always was, and in its first
// evening's wind-down within an hour of 06:00, the time of day it was first seen
// (an idle period cannot reach past it).
func TestFreshStreamDyingOnItsFirstDay(t *testing.T) {
	for _, c := range []struct {
		death  int64 // seconds after Monday 00:00
		within time.Duration
	}{
		{13 * 3600, 10 * time.Minute},
		{21*3600 + 30*60, 9*time.Hour + 30*time.Minute},
	} {
		death := rhythmMonday + c.death
		opened := runRhythm(t, 3, func(b int64) float64 {
			if b >= death {
				return 0
			}
			return taperingNights(steepEvening)(b)
		})
		require.NotEmpty(t, opened, "death at %v: not found", time.Unix(death, 0).UTC())
		require.Equal(t, KindSilence, opened[0].Kind)
		took := opened[0].DetectedAt.Sub(time.Unix(death, 0))
		t.Logf("dead at %s: found after %v", time.Unix(death, 0).UTC().Format("Mon 15:04"), took)
		require.LessOrEqual(t, took, c.within)
	}
}

// The heavy-drop CUSUM that runs in cold start (coldIdle's evidence) starts
// afresh when the drop test starts: a stream quieter at night (a tenth of its
// day's rate from 22:00) is in an excursion against its short-term rate at
// every midnight, and the one at which its hourly profile comes into use
// (Wednesday, after two complete days) would otherwise open a drop at once,
// started the evening before.
func TestColdEvidenceDoesNotCarryIntoTheDropTest(t *testing.T) {
	opened := runRhythm(t, 5, func(b int64) float64 {
		if h := hourOf(b); h < 6 || h >= 22 {
			return 1
		}
		return 10
	})
	for _, ev := range opened {
		require.False(t, ev.Kind == KindDrop && ev.StartedAt.Unix() < rhythmMonday+2*86400,
			"a drop started before the drop test did: %+v", ev)
	}
}

// A fresh steady stream (2 or 10 events a bucket, gamma-Poisson dispersion
// 0.05) dies on its first day, at 13:00 or 20:00, 100 seeds each. Without
// coldIdle all 400 are found within the hour. With it, a death that follows
// a chance low stretch rarer than once a day is taken for a first night and
// waits for the time of day the stream was first seen: 2 of the 400 (4½ h,
// and more than 6 h). The test bounds that price; at the "not normal" level
// of 0.01 instead of once a day it was 8 of 800 in the rule's first harness.
func TestFreshSteadyStreamDeathIsRarelyTakenForANight(t *testing.T) {
	late := 0
	for _, rate := range []float64{2, 10} {
		for _, at := range []int64{13 * 3600, 20 * 3600} {
			death := rhythmMonday + at
			for seed := range uint64(100) {
				opened := runRhythmDrawn(t, Config{}, rand.New(rand.NewPCG(seed, 41)), 0.05, (death+6*3600-rhythmMonday)/300, func(b int64) float64 {
					if b >= death {
						return 0
					}
					return rate
				})
				var found time.Time
				for _, ev := range opened {
					// The silence may start at a chance empty bucket just before.
					if ev.Kind == KindSilence && ev.DetectedAt.Unix() > death && ev.StartedAt.Unix() >= death-3600 && found.IsZero() {
						found = ev.DetectedAt
					}
				}
				if found.IsZero() || found.Sub(time.Unix(death, 0)) > time.Hour {
					t.Logf("rate %v, dead at %02d:00, seed %d: not found within the hour", rate, at/3600, seed)
					late++
				}
			}
		}
	}
	require.LessOrEqual(t, late, 2, "first-day deaths of 400 taken for a night")
}

// A source whose Saturdays end three hours before its other days (a
// schedule, a shift) is alerted on its first Saturdays, then expected there:
// the hour-of-week correction takes a recurring hole as the rhythm rule does
// (imputeWeekHour). Before, a gap's hours entered the correction by their
// expectation, and each Saturday's alarm kept its evening expected. Nor is
// the Saturday hole taken as every day's rhythm (impute): with a stray
// bucket not learned on the Friday at 21:00 before it, every day's 21:00
// was expected idle, and Sunday 21:00 was later a false drop.
func TestSaturdayThatEndsEarlyIsLearned(t *testing.T) {
	const weeks = 10
	opened := runRhythm(t, weeks*7, func(b int64) float64 {
		h := hourOf(b)
		if h < 6 || h >= 23 || weekday(b) == 5 && h >= 20 {
			return 0
		}
		return 20
	})
	saturdays := map[int64]bool{}
	for _, ev := range opened {
		at := ev.StartedAt.Unix()
		if at < rhythmMonday+2*86400 {
			continue // the first two nights (TestNightlyIdleHoursAreLearned)
		}
		require.True(t, weekday(at) == 5 && hourOf(at) >= 19, "a gap that is not a Saturday evening's: %+v", ev)
		saturdays[(at-rhythmMonday)/(7*86400)] = true
	}
	require.NotEmpty(t, saturdays, "the first Saturday is a silence: nothing said it would end early")
	for w := range saturdays {
		require.Less(t, w, int64(4), "Saturday evening of week %d alerted: %v", w, saturdays)
	}
}

// A young stream's drop tests judge its possible weekends against what its
// weekends so far carried of their expectation (judgedWeekend), not against
// the quarter of the floor: a stream first seen on a Thursday, whose
// weekends carry 80 % of its weekdays, has a 70 % loss on its second
// Saturday found (it keeps 0.24 of a weekday, under the floor only by
// noise); without the loss its first two weekends raise nothing.
func TestYoungWeekendLossIsFound(t *testing.T) {
	thu := rhythmMonday + 3*86400
	sat := rhythmMonday + 12*86400
	from, to := sat+10*3600, sat+16*3600
	rate := func(loss bool) func(b int64) float64 {
		return func(b int64) float64 {
			r := 100.0
			switch {
			case b < thu:
				return 0 // first seen on Thursday
			case weekday(b) >= 5:
				r = 80
			}
			if loss && b >= from && b < to {
				r *= 0.3
			}
			return r
		}
	}
	require.Empty(t, runRhythm(t, 17, rate(false)), "a young stream's weekend paged")
	// Within its first weekend the stream keeps the floor: a Saturday at
	// 80 % and a Sunday at 15 % is a weekend, not a loss on Sunday.
	require.Empty(t, runRhythm(t, 9, func(b int64) float64 {
		switch weekday(b) {
		case 5:
			return 80
		case 6:
			return 15
		}
		return 100
	}), "a first weekend's Sunday paged")
	opened := runRhythm(t, 17, rate(true))
	require.Len(t, opened, 1, "events: %+v", opened)
	require.Equal(t, KindDrop, opened[0].Kind)
	require.GreaterOrEqual(t, opened[0].StartedAt.Unix(), from)
	require.Less(t, opened[0].DetectedAt.Unix(), to)
}

// Its silence test does too, since a day's early end near its idle hours is
// no evidence (windingDown): the same stream at 6 events a bucket,
// silent from noon on its second Saturday, is found within half an hour
// (24 minutes); judged at the quarter floor it took 48.
func TestYoungWeekendSilenceIsFound(t *testing.T) {
	thu := rhythmMonday + 3*86400
	noon := rhythmMonday + 12*86400 + 12*3600
	opened := runRhythm(t, 17, func(b int64) float64 {
		switch {
		case b < thu, b >= noon && b < noon+2*3600:
			return 0
		case weekday(b) >= 5:
			return 5
		}
		return 6
	})
	require.Len(t, opened, 1, "events: %+v", opened)
	require.Equal(t, KindSilence, opened[0].Kind)
	require.Equal(t, noon, opened[0].StartedAt.Unix())
	require.LessOrEqual(t, opened[0].DetectedAt.Unix(), noon+30*60)
}

// learnWeekend learns only a young stream's possible weekends' core
// (Saturday 08:00 to Sunday 14:00 UTC) from two days to two complete weeks
// of history: the plain mean of its first weekendLearn buckets' log ratios,
// then an EWMA. judgedWeekend uses it above the floor, never above the
// expectation, while the daily profile is not in use.
func TestLearnWeekend(t *testing.T) {
	m := newModel(300)
	m.weekendFloor = DefaultWeekendFloor
	require.Equal(t, uint8(144), m.weekendLearn)
	b := newBaseline()
	b.days = 2
	sat := rhythmMonday + 5*86400 + 8*3600
	for _, at := range []int64{rhythmMonday + 10*3600, sat - 300, sat + 30*3600} { // a Monday; Saturday before 08:00; Sunday 14:00
		m.learnWeekend(&b, at, 10, 100)
	}
	require.Zero(t, b.wkN, "outside the core")
	b.days = 1
	m.learnWeekend(&b, sat, 10, 100)
	require.Zero(t, b.wkN, "no hourly profile yet")
	b.days = 2
	for i := range int64(144) {
		m.learnWeekend(&b, sat+i*300, 49, 99)
	}
	require.Equal(t, uint8(144), b.wkN)
	require.InDelta(t, 0.5*weekendMargin*100, m.judgedWeekend(&b, 100, 25), 0.1)
	require.Equal(t, 100.0, m.judgedWeekend(&b, 100, 100), "not a possible weekend")
	m.learnWeekend(&b, sat+144*300, 0, 99)
	require.Equal(t, uint8(144), b.wkN)
	require.InDelta(t, math.Log(0.5)+(math.Log(0.01)-math.Log(0.5))/144, float64(b.wkL)/wkStep, 1e-3, "an EWMA of half a day's weight")
	b.wkL = 0 // weekends as busy as weekdays (or busier)
	require.InDelta(t, weekendMargin*100, m.judgedWeekend(&b, 100, 25), 1e-9)
	b.wkL = -3 * wkStep // far quieter: the floor
	require.Equal(t, 25.0, m.judgedWeekend(&b, 100, 25))
	b.weeks = 2
	require.Equal(t, 25.0, m.judgedWeekend(&b, 100, 25), "the daily profile is in use")
	before := b.wkL
	m.learnWeekend(&b, sat, 0, 100)
	require.Equal(t, before, b.wkL)
}

// A young stream's weekend floor comes from its first weekend's core and
// stays: the weekends it judges by it do not teach it (a loss there would
// lower the floor while it is weighed).
func TestWeekendLearnedOnce(t *testing.T) {
	e, err := New(Config{Bucket: 5 * time.Minute, Workers: 1})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 4))
	var st *stream
	var known int16
	secondSunday := rhythmMonday + 13*86400
	for b := rhythmMonday; b < secondSunday+86400; b += 300 {
		rate := 100.0
		if weekday(b) >= 5 {
			rate = 80
		}
		var cs []storage.Count
		if n := simulate.GammaPoisson(r, rate, 0.02); n > 0 {
			cs = []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}}
		}
		e.Advance(time.Unix(b+300, 0), cs)
		st = e.shards[0].streams[streamKey{"t", "s"}]
		if b == rhythmMonday+7*86400+8*3600 { // the first weekend's end
			require.True(t, st.weekendKnown)
			known = st.base.wkL
			require.InDelta(t, math.Log(0.8), float64(known)/wkStep, 0.25, "what the first weekend carried")
		}
	}
	require.Equal(t, known, st.base.wkL, "the second weekend taught the floor")
}

// A stream's expectations say how much of its profile it has learned: its
// recent rate for two days, then its hourly profile with possible weekends
// judged leniently, by what its first weekend carried once that weekend
// is over, and its daily profile from two complete weeks on; with a
// weekend floor of 1, weekends are judged as weekdays.
func TestExpectationsSayWhatIsLearned(t *testing.T) {
	thu := rhythmMonday + 3*86400
	stages := func(cfg Config) (seen []string, at []int64) {
		cfg.Bucket, cfg.Workers, cfg.Expectations = 5*time.Minute, 1, true
		e, err := New(cfg)
		require.NoError(t, err)
		r := rand.New(rand.NewPCG(5, 6))
		for b := thu; b < rhythmMonday+22*86400; b += 300 {
			rate := 100.0
			if weekday(b) >= 5 {
				rate = 60
			}
			cs := []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: max(1, simulate.GammaPoisson(r, rate, 0.02))}}
			for _, x := range e.Advance(time.Unix(b+300, 0), cs).Expectations {
				if s := x.Profile + "/" + x.Weekend; len(seen) == 0 || seen[len(seen)-1] != s {
					seen, at = append(seen, s), append(at, x.Bucket.Unix())
				}
			}
		}
		return seen, at
	}
	seen, at := stages(Config{})
	require.Equal(t, []string{"short-term/recent", "hourly/lenient", "hourly/learned", "weekly/profile"}, seen)
	require.Equal(t, thu, at[0])
	// Days and weeks fold as the next one's first bucket is learned.
	require.Equal(t, thu+2*86400+300, at[1], "the hourly profile after two complete days")
	require.Equal(t, rhythmMonday+7*86400+8*3600, at[2], "the first weekend known at its end, Monday 08:00 UTC")
	require.Equal(t, rhythmMonday+21*86400+300, at[3], "the daily profile after two complete Monday-to-Sunday weeks")
	seen, _ = stages(Config{WeekendFloor: 1})
	require.Equal(t, []string{"short-term/recent", "hourly/weekday", "weekly/profile"}, seen)
}

// A source active from 06:00 to 22:00 whose day ends up to 75 minutes early
// (a schedule's last departures, an office's evening) does not page at
// every early end: within two hours of its idle period an empty run is no
// evidence (windingDown). A stream that stops in the afternoon is still
// caught within minutes; one that stops in the evening and stays down, in
// the next morning's first hour.
func TestEveningsMayEndEarly(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	ends := make([]int64, 28)
	for d := range ends {
		ends[d] = rhythmMonday + int64(d)*86400 + 22*3600 - 300*r.Int64N(16)
	}
	rate := func(stopAt int64) func(b int64) float64 {
		return func(b int64) float64 {
			if b >= stopAt {
				return 0
			}
			if h := hourOf(b); h < 6 || b >= ends[b/86400-rhythmMonday/86400] {
				return 0
			}
			return 40
		}
	}
	// The first two evenings are news: nothing says yet that the stream idles.
	afterTwoDays := func(evs []Event) []Event {
		return slices.DeleteFunc(evs, func(ev Event) bool { return ev.StartedAt.Unix() < rhythmMonday+2*86400 })
	}
	never := rhythmMonday + 28*86400
	require.Empty(t, afterTwoDays(runRhythm(t, 28, rate(never))), "an evening that ended early paged")

	afternoon := rhythmMonday + 24*86400 + 15*3600
	opened := afterTwoDays(runRhythm(t, 28, rate(afternoon)))
	require.NotEmpty(t, opened)
	require.Equal(t, afternoon, opened[0].StartedAt.Unix())
	require.Less(t, opened[0].DetectedAt.Unix(), afternoon+15*60, "an afternoon stop")

	evening := rhythmMonday + 24*86400 + 21*3600
	opened = afterTwoDays(runRhythm(t, 28, rate(evening)))
	require.NotEmpty(t, opened)
	require.Equal(t, evening, opened[0].StartedAt.Unix())
	morning := rhythmMonday + 25*86400 + 6*3600
	require.Greater(t, opened[0].DetectedAt.Unix(), morning-3600, "the evening is judged leniently")
	require.Less(t, opened[0].DetectedAt.Unix(), morning+3600, "found in the next morning's first hour")
}
