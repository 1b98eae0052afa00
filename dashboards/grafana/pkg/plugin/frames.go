package plugin

import (
	"math"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// The frames follow CONTRACT.md "Grafana plugin": field names are part of
// the contract (dashboards and alert rules refer to them).

// gapsFrame is one row per gap; ended_at is null while the gap is open.
func gapsFrame(gaps []Gap) *data.Frame {
	n := len(gaps)
	started := make([]time.Time, n)
	detected := make([]time.Time, n)
	ended := make([]*time.Time, n)
	tenant := make([]string, n)
	source := make([]string, n)
	kind := make([]string, n)
	expected := make([]int64, n)
	missing := make([]int64, n)
	id := make([]string, n)
	for i, g := range gaps {
		started[i], detected[i] = g.StartedAt.UTC(), g.DetectedAt.UTC()
		if g.EndedAt != nil {
			e := g.EndedAt.UTC()
			ended[i] = &e
		}
		tenant[i], source[i], kind[i], id[i] = g.Tenant, g.Source, g.Kind, g.ID
		expected[i], missing[i] = whole(g.Expected), whole(g.Missing)
	}
	f := data.NewFrame("gaps",
		data.NewField("started_at", nil, started),
		data.NewField("detected_at", nil, detected),
		data.NewField("ended_at", nil, ended),
		data.NewField("tenant", nil, tenant),
		data.NewField("source", nil, source),
		data.NewField("kind", nil, kind),
		data.NewField("expected_events", nil, expected),
		data.NewField("missing_events", nil, missing),
		data.NewField("id", nil, id),
	)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}

func whole(v float64) int64 {
	if !(v > 0) {
		return 0
	}
	return int64(math.Round(v))
}

// coverageFrame is one wide frame on w's grid: a time field and, per tenant
// and source, a share field (0–1, null where the stream had no baseline,
// such as while it was learning) labelled tenant and source.
func coverageFrame(w Window, answers []Coverage) *data.Frame {
	start := gridStart(w)
	n := steps(w.From, w.To, w.Step)
	times := make([]time.Time, n)
	for i := range times {
		times[i] = start.Add(time.Duration(i) * w.Step)
	}
	f := data.NewFrame("coverage", data.NewField("time", nil, times))
	for _, a := range answers {
		for _, st := range a.Streams {
			share := make([]*float64, n)
			for _, p := range st.Points {
				i := int(p.T.Sub(start) / w.Step)
				if i < 0 || i >= n || p.Share == nil {
					continue
				}
				v := *p.Share
				share[i] = &v
			}
			fd := data.NewField("share", data.Labels{"tenant": a.Tenant, "source": st.Source}, share)
			fd.Config = &data.FieldConfig{
				DisplayNameFromDS: a.Tenant + "/" + st.Source,
				Unit:              "percentunit",
				Min:               zero(),
				Max:               one(),
			}
			f.Fields = append(f.Fields, fd)
		}
	}
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1}}
	return f
}

func zero() *data.ConfFloat64 { v := data.ConfFloat64(0); return &v }
func one() *data.ConfFloat64  { v := data.ConfFloat64(1); return &v }

// ratesFrame is one stream's events per step with the expected band (null
// where no baseline exists: the event clock, steps not judged yet, learning).
func ratesFrame(tenant, source string, r Rates) *data.Frame {
	n := len(r.Points)
	times := make([]time.Time, n)
	events := make([]float64, n)
	expected := make([]*float64, n)
	lower := make([]*float64, n)
	upper := make([]*float64, n)
	for i, p := range r.Points {
		times[i], events[i] = p.T.UTC(), p.Events
		expected[i], lower[i], upper[i] = p.Expected, p.Lower, p.Upper
	}
	labels := data.Labels{"tenant": tenant, "source": source}
	f := data.NewFrame(tenant+"/"+source,
		data.NewField("time", nil, times),
		data.NewField("events", labels, events),
		data.NewField("expected", labels, expected),
		data.NewField("lower", labels, lower),
		data.NewField("upper", labels, upper),
	)
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1}}
	return f
}

// streamsFrame is one row per stream as the detector sees it.
func streamsFrame(list []Stream) *data.Frame {
	n := len(list)
	tenant := make([]string, n)
	source := make([]string, n)
	status := make([]string, n)
	lastSeen := make([]*time.Time, n)
	rate := make([]float64, n)
	profile := make([]string, n)
	weekend := make([]string, n)
	for i, s := range list {
		tenant[i], source[i], status[i], rate[i] = s.Tenant, s.Source, s.Status, s.EventsPerMin
		profile[i], weekend[i] = s.Profile, s.Weekend
		if s.LastSeen != nil {
			t := s.LastSeen.UTC()
			lastSeen[i] = &t
		}
	}
	f := data.NewFrame("streams",
		data.NewField("tenant", nil, tenant),
		data.NewField("source", nil, source),
		data.NewField("status", nil, status),
		data.NewField("last_seen", nil, lastSeen),
		data.NewField("events_per_min", nil, rate),
		data.NewField("profile", nil, profile),
		data.NewField("weekend", nil, weekend),
	)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}
