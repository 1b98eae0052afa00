package storage

import (
	"fmt"
	"time"
)

// Expectation is what live detection expected of one stream in one judged
// bucket of the arrival clock, with an approximate 99 % band, and what it
// observed then. Streams still learning have none. Written once per judged
// bucket; a replayed or replicated detector writes the same rows again, so
// readers take any one row per (tenant, source, bucket).
type Expectation struct {
	Tenant, Source         string
	Bucket                 int64 // bucket start, Unix seconds
	Expected, Lower, Upper float64
	Observed               uint64
	State                  string // ok, gap, drop or late (detect.Expectation.State)
}

// Band is the expectations of one stream summed over one step of a query: the
// buckets of the step that had one (Buckets of them).
type Band struct {
	I                      int64 // step index, as in FillPoints: 0 is the step of RateQuery.Steps's start
	Expected, Lower, Upper float64
	Observed               uint64
	Buckets                uint32
}

// CoverageQuery asks, for every stream of one tenant with expectations in
// [From, To), its expected and observed events per step.
type CoverageQuery struct {
	Tenant string
	From   time.Time // inclusive
	To     time.Time // exclusive
	Step   time.Duration
	// Bucket is the pipeline's bucket width when known (0: unknown). It
	// changes nothing in the answer; a store may answer faster with it.
	Bucket time.Duration
}

// MaxCoverageCells bounds the streams × steps of one coverage answer.
const MaxCoverageCells = 200_000

// Validate reports a query that can never be answered as asked.
func (q CoverageQuery) Validate() error {
	if q.Tenant == "" {
		return fmt.Errorf("%w: tenant is required", ErrBadQuery)
	}
	if q.Bucket < 0 || q.Bucket%time.Second != 0 {
		return fmt.Errorf("%w: bucket width must be whole seconds, got %s", ErrBadQuery, q.Bucket)
	}
	return q.Rate("-").Validate()
}

// Rate returns the rate query of one source with q's range and step: the
// steps of both are the same.
func (q CoverageQuery) Rate(source string) RateQuery {
	return RateQuery{Tenant: q.Tenant, Source: source, Clock: Arrival, From: q.From, To: q.To, Step: q.Step}
}

// SourceBand is one source's Band in a coverage answer, with Received: the
// events counted by event time in the step's buckets that had an expectation,
// as stored now — late data that filled a hole after it was judged is in it.
type SourceBand struct {
	Source string
	Band
	Received uint64
}
