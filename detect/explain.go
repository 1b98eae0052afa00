package detect

import "time"

// Explanation is one judged bucket of the stream an Engine explains
// (Engine.Explain): what its tests saw, to tell why a gap was opened or
// not (gapwatch backtest --explain). The tests' evidence is as the bucket's
// decisions saw it (a gap's opening bucket shows what crossed the
// threshold); State is after them.
type Explanation struct {
	Bucket   time.Time // bucket start
	Observed uint64
	// Expected is the profile's expectation (0 while learning); Judged what
	// the silence and drop tests judge against: lower in a young stream's
	// possible weekend, 0 where a learned idle period may begin early.
	Expected, Judged float64
	// Dispersion is the bucket's negative binomial dispersion a (variance
	// mu + a·mu²).
	Dispersion float64
	// State is as Expectation.State.
	State string
	// SilenceRun is the run of empty (or near-empty) buckets up to this
	// one (a silence opened at one of the bucket's early slots counts it
	// whole), SilenceLogP the log probability the silence test gives it (0
	// without a run, and while a gap is open); a silence opens below
	// SilenceThreshold.
	SilenceRun                    int
	SilenceLogP, SilenceThreshold float64
	// Drop50 and Drop75 are the evidence (nats) of the CUSUMs of "half
	// lost" and "three quarters lost", corrected for serially correlated
	// buckets (Drop50Raw and Drop75Raw before the correction); Rank that of
	// the burst-robust rank test; a drop opens above DropThreshold.
	// LowQuantile is the rank test's low quantile of count/expectation.
	Drop50, Drop75, Rank, DropThreshold float64
	Drop50Raw, Drop75Raw                float64
	LowQuantile                         float64
}

// Explain makes the next Advance calls return the Explanation of every
// judged bucket of the stream (tenant, source) in Result.Explanations.
// Not safe to call during Advance.
func (e *Engine) Explain(tenant, source string) {
	e.explain = &streamKey{tenant, source}
}

// explained reports whether st is the stream the engine explains.
func (s *shard) explained(st *stream) bool {
	k := s.e.explain
	return k != nil && st.tenant == k.tenant && st.source == k.source
}

// explain records bucket b of st as judged (shard.judge): its count x,
// expectation mu and dispersion a, its state after the decisions, and the
// silence run and drop tests' evidence at them (raw: the CUSUMs before the
// run correction).
func (s *shard) explain(st *stream, b int64, x, mu, a float64, state string, run int32, logP float64, drop, raw [2]float64, rank float64) {
	th := &s.e.th
	ex := Explanation{Bucket: time.Unix(b, 0).UTC(), Observed: uint64(x), State: state, Dispersion: a,
		SilenceRun: int(run), SilenceLogP: logP, SilenceThreshold: th.lnAlpha, Drop50: drop[0], Drop75: drop[1], Rank: rank,
		DropThreshold: th.hDrop, Drop50Raw: raw[0], Drop75Raw: raw[1], LowQuantile: float64(st.rank.q)}
	if state != "learning" {
		ex.Expected, ex.Judged = mu, s.judged(st, b, mu)
	}
	s.expl = append(s.expl, ex)
}
