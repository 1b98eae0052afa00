package simulate

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// History calls write with the arrival-clock counts the streams would have
// had over [from, to), in buckets of width, six hours of buckets at a time:
// the rates, daily rhythm and noise of the live traffic (no incidents), with
// its lateness. The bucket holding to is counted up to to only, so that the
// live traffic from to on completes it. The counts are what ingest would have
// stored, as ingest writes them (storage.Count, arrival clock); the event
// clock is not written: detection learns from the arrival clock.
func (g *Generator) History(from, to time.Time, width time.Duration, write func([]storage.Count) error) error {
	r := rand.New(rand.NewPCG(g.cfg.Seed, 0x4157))
	shares := latenessShares()
	w := int64(width / time.Second)
	end := to.Unix()
	chunk := max(1, 6*3600/w)
	var batch []storage.Count
	for b := storage.BucketStart(from, width); b < end; {
		stop := min(b+chunk*w, end)
		batch = batch[:0]
		for ; b < stop; b += w {
			lo, hi := max(b, from.Unix()), min(b+w, end)
			if hi <= lo {
				continue
			}
			mid := time.Unix((lo+hi)/2, 0)
			for i := range g.streams {
				s := &g.streams[i]
				n := Poisson(r, s.RateAt(mid)*float64(hi-lo))
				if n == 0 {
					continue
				}
				batch = append(batch, storage.Count{Tenant: s.Tenant, Source: s.Source, Clock: storage.Arrival, Bucket: b,
					Events: n, Lateness: split(n, shares), Arrival: lo + (hi-lo)/int64(n+1)})
			}
		}
		if err := write(batch); err != nil {
			return err
		}
	}
	return nil
}

// latenessShares is the share of events in each lateness class of the live
// traffic (lag), estimated once from a fixed sample.
func latenessShares() [storage.LatenessBuckets]float64 {
	r := rand.New(rand.NewPCG(1, 2))
	var shares [storage.LatenessBuckets]float64
	const n = 100_000
	for range n {
		shares[storage.LatenessBucket(lag(r))] += 1.0 / n
	}
	return shares
}

// split shares n events out over the lateness classes, rounding the running
// sum so that the classes add up to n.
func split(n uint64, shares [storage.LatenessBuckets]float64) []uint64 {
	out := make([]uint64, storage.LatenessBuckets)
	var cum float64
	var given uint64
	for j, s := range shares {
		cum += s
		upto := min(n, uint64(math.Round(cum*float64(n))))
		if j == len(shares)-1 {
			upto = n
		}
		out[j] = upto - given
		given = upto
	}
	return out
}
