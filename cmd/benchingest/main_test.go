package main

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

func TestCountEvents(t *testing.T) {
	var p fastjson.Parser
	for _, c := range []struct {
		in   string
		want int
	}{
		{`{"tenant":"a","source":"fw","time":1}`, 1},
		{`{"records":[{"a":1},{"a":2},{"a":3}]}`, 3},
		{`{"Records":[{"a":1}]}`, 1},
		{`{"records":"not an array"}`, 1},
	} {
		got, err := countEvents(&p, []byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("countEvents(%s) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	if _, err := countEvents(&p, []byte(`[1]`)); err == nil {
		t.Error("countEvents accepted an array")
	}
}

func TestRetenant(t *testing.T) {
	in := `{"time":"x","resourceId":"/tenants/ab-12/providers/Microsoft.aadiam","tenantId":"ab-12","identity":"u@acme.example"}`
	out, err := retenant([]byte(in), "ab-12", "cd-34")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"time":"x","resourceId":"/tenants/cd-34/providers/Microsoft.aadiam","tenantId":"cd-34","identity":"u@acme.example"}`; string(out) != want {
		t.Errorf("got %s", out)
	}
	// A tenant that is a prefix of another is only replaced as a whole string.
	out, err = retenant([]byte(`{"tenant":"tenant-100","x":"tenant-1000"}`), "tenant-100", "tenant-7")
	if err != nil || string(out) != `{"tenant":"tenant-7","x":"tenant-1000"}` {
		t.Errorf("got %s, %v", out, err)
	}
	if _, err := retenant([]byte(`{"tenant":"a"}`), "b", "c"); err == nil {
		t.Error("retenant of an absent tenant did not fail")
	}
}

func TestMedian(t *testing.T) {
	f := func(r result) float64 { return r.seconds }
	if m := median([]result{{seconds: 3}, {seconds: 1}, {seconds: 2}}, f); m != 2 {
		t.Errorf("odd median %v", m)
	}
	if m := median([]result{{seconds: 4}, {seconds: 1}, {seconds: 2}, {seconds: 3}}, f); m != 2.5 {
		t.Errorf("even median %v", m)
	}
}

// generate must hit the event count exactly, activate every stream and keep
// the messages in arrival order, with every stream's records decodable by key.
func TestGenerate(t *testing.T) {
	const events, streams = 20_000, 600
	w, err := generate(events, streams, 5*time.Minute, time.Minute, 7, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if w.events != events {
		t.Errorf("events = %d, want %d", w.events, events)
	}
	if w.streams != streams {
		t.Errorf("active streams = %d, want %d (topped up %d)", w.streams, streams, w.toppedUp)
	}
	var p fastjson.Parser
	total := 0
	for i, m := range w.msgs {
		if i > 0 && m.Time.Before(w.msgs[i-1].Time) {
			t.Fatalf("message %d out of arrival order", i)
		}
		n, err := countEvents(&p, m.Value)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		tenant, _ := splitKey(m.Key)
		if !strings.Contains(string(m.Value), tenant) {
			t.Fatalf("message keyed %s does not name its tenant: %s", m.Key, m.Value)
		}
	}
	if total != events {
		t.Errorf("records in messages = %d, want %d", total, events)
	}
	// Deterministic for a seed.
	w2, err := generate(events, streams, 5*time.Minute, time.Minute, 7, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if err != nil || len(w2.msgs) != len(w.msgs) || string(w2.msgs[len(w2.msgs)/2].Value) != string(w.msgs[len(w.msgs)/2].Value) {
		t.Error("generate is not deterministic for a seed")
	}
}

func TestLatencyReferences(t *testing.T) {
	width := time.Minute
	last := time.Date(2026, 12, 5, 10, 23, 26, 0, time.UTC)
	s := latStop{last: last}
	// The 15 empty buckets after 10:23 end at 10:39: 15 min 34 s after the last event.
	if got, want := s.static(15*time.Minute, width), 15*time.Minute+34*time.Second; got != want {
		t.Errorf("static 15 min = %s, want %s", got, want)
	}
	if got, want := s.static(time.Hour, width), time.Hour+34*time.Second; got != want {
		t.Errorf("static 60 min = %s, want %s", got, want)
	}
	// Not a whole number of buckets: the rule needs the next whole one.
	if got, want := s.static(90*time.Second, width), 2*time.Minute+34*time.Second; got != want {
		t.Errorf("static 90 s = %s, want %s", got, want)
	}
	p50, p90, mx := stats([]float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5})
	if p50 != 5.5 || p90 != 9 || mx != 10 {
		t.Errorf("stats = %v, %v, %v; want 5.5, 9, 10", p50, p90, mx)
	}
	if m := medianOf([]float64{3, 1, 2}); m != 2 {
		t.Errorf("medianOf = %v, want 2", m)
	}
	var w watermarkLog
	t0 := last.Truncate(width)
	w.samples = []wmSample{{t0.Add(time.Second), t0}, {t0.Add(61 * time.Second), t0.Add(59 * time.Second)}, {t0.Add(62 * time.Second), t0.Add(61 * time.Second)}}
	if got := w.passed(t0.Add(width)); !got.Equal(t0.Add(62 * time.Second)) {
		t.Errorf("watermark passed the bucket end at %s, want %s", got, t0.Add(62*time.Second))
	}
}
