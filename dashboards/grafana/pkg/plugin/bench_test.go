package plugin

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkQueryData: one tenant with 100 sources over 7 days at a 5-minute
// interval, through a stub API on loopback that answers from a cache (so
// the figure is the plugin's: HTTP, JSON decoding, frames).
// Coverage is one request coarsened to 6 minutes by the 200 000-cell cap;
// rates are 100 requests, 8 at a time.
func BenchmarkQueryData(b *testing.B) {
	api := newFakeAPI(b)
	var sources []string
	for i := range 100 {
		sources = append(sources, fmt.Sprintf("source-%03d", i))
	}
	api.tenants = map[string][]string{"big": sources}
	api.cache = map[string][]byte{}
	d := newTestDatasource(b, api.serve().URL, "", "")
	r := tr("2026-11-24T00:00:00Z", "2026-12-01T00:00:00Z")
	for _, qt := range []string{QueryCoverage, QueryRates} {
		b.Run(qt, func(b *testing.B) {
			q := query("A", qt, map[string]any{"tenant": "big"}, r, 5*time.Minute)
			d.query(b.Context(), q) // fills the stub's cache
			b.ReportAllocs()
			for b.Loop() {
				res := d.query(b.Context(), q)
				if res.Error != nil {
					b.Fatal(res.Error)
				}
			}
		})
	}
}
