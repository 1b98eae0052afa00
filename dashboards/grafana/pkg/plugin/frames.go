package plugin

import (
	"fmt"
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
	return streamFrame(tenant, source, times,
		column{"events", events}, column{"expected", expected}, column{"lower", lower}, column{"upper", upper})
}

// column is a value field of a stream's frame: its name and values (a slice
// of a type data.NewField takes).
type column struct {
	name   string
	values any
}

// streamFrame is one stream's wide time series: the time field, then each
// column labelled with the stream.
func streamFrame(tenant, source string, times []time.Time, cols ...column) *data.Frame {
	labels := data.Labels{"tenant": tenant, "source": source}
	f := data.NewFrame(tenant+"/"+source, data.NewField("time", nil, times))
	for _, c := range cols {
		f.Fields = append(f.Fields, data.NewField(c.name, labels, c.values))
	}
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

// explainFrame is a replay as a wide time series: the counts, what the tests
// judged them against, each test's evidence as a share of what opens a gap
// (1 opens; drop_share the largest of the three drop tests', silence_share
// the silence run's log probability over its threshold, underflowShare when
// it underflowed, late_share the lateness test's), the evidence itself, and
// the gaps the replay opened as notices.
func explainFrame(tenant, source string, x Explanation) *data.Frame {
	n := len(x.Buckets)
	times := make([]time.Time, n)
	observed := make([]float64, n)
	expected, judged := make([]*float64, n), make([]*float64, n)
	state := make([]string, n)
	dropShare, silenceShare, lateShare := make([]float64, n), make([]float64, n), make([]float64, n)
	drop50, drop75, rank, dropTh := make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n)
	silLogP, silTh, late, lateTh := make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n)
	for i, b := range x.Buckets {
		times[i], observed[i], expected[i], judged[i], state[i] = b.Bucket.UTC(), b.Observed, b.Expected, b.Judged, b.State
		drop50[i], drop75[i], rank[i], dropTh[i], silLogP[i], silTh[i] = b.Drop50, b.Drop75, b.Rank, b.DropThreshold, b.SilenceLogP, b.SilenceThreshold
		late[i], lateTh[i] = b.Late, b.LateThreshold
		if th := val(b.LateThreshold); th > 0 {
			lateShare[i] = val(b.Late) / th
		}
		if th := val(b.DropThreshold); th > 0 {
			dropShare[i] = math.Max(val(b.Drop50), math.Max(val(b.Drop75), val(b.Rank))) / th
		}
		if th := val(b.SilenceThreshold); th < 0 && b.SilenceRun > 0 {
			if b.SilenceLogP == nil {
				silenceShare[i] = underflowShare // underflowed: far past the threshold
			} else {
				silenceShare[i] = *b.SilenceLogP / th
			}
		}
	}
	f := streamFrame(tenant, source, times,
		column{"observed", observed}, column{"expected", expected}, column{"judged", judged}, column{"state", state},
		column{"drop_share", dropShare}, column{"silence_share", silenceShare}, column{"late_share", lateShare},
		column{"drop50", drop50}, column{"drop75", drop75}, column{"rank", rank}, column{"drop_threshold", dropTh},
		column{"silence_logp", silLogP}, column{"silence_threshold", silTh}, column{"late", late}, column{"late_threshold", lateTh})
	f.AppendNotices(data.Notice{Severity: data.NoticeSeverityInfo,
		Text: "replayed from " + x.ReplayedFrom.UTC().Format(time.RFC3339) + " with the detector's settings (GET /api/v1/explain)"})
	for _, o := range x.Opened {
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("%s opened: started %s, detected %s, %.0f of %.0f expected events missing", o.Kind,
				o.StartedAt.UTC().Format(time.RFC3339), o.DetectedAt.UTC().Format(time.RFC3339), o.Missing, o.Expected)})
	}
	return f
}

// underflowShare is silence_share where the run's log probability
// underflowed (the API's null): finite, so that panels scale.
const underflowShare = 10

// val is *p, or 0 for nil.
func val(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
