package simulate

import (
	"math"
	"math/rand/v2"
)

// Poisson draws a Poisson count with the given mean (a normal approximation above 50).
func Poisson(r *rand.Rand, mean float64) uint64 {
	if mean <= 0 {
		return 0
	}
	if mean > 50 {
		return uint64(math.Max(0, math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), uint64(0), 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// GammaPoisson draws an overdispersed count (negative binomial) with mean mu
// and dispersion a: variance mu + a·mu². a = 0 is Poisson.
func GammaPoisson(r *rand.Rand, mu, a float64) uint64 {
	if a > 0 {
		mu *= gamma(r, 1/a) * a
	}
	return Poisson(r, mu)
}

// gamma draws from Gamma(k, 1) (Marsaglia and Tsang).
func gamma(r *rand.Rand, k float64) float64 {
	if k < 1 {
		return gamma(r, k+1) * math.Pow(r.Float64(), 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		if math.Log(r.Float64()) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}
