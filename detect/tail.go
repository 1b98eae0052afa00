package detect

import "math"

// logPMF is log P(X = x) for X ~ NB(mu, a) (Poisson when a is below poissonA).
func logPMF(x, mu, a float64) float64 {
	if mu <= 0 {
		if x == 0 {
			return 0
		}
		return math.Inf(-1)
	}
	lx, _ := math.Lgamma(x + 1)
	if a < poissonA {
		return x*math.Log(mu) - mu - lx
	}
	r := 1 / a
	lxr, _ := math.Lgamma(x + r)
	lr, _ := math.Lgamma(r)
	return lxr - lr - lx - r*math.Log1p(a*mu) + x*(math.Log(a*mu)-math.Log1p(a*mu))
}

// logLowerTailBound is an upper bound of log P(X ≤ x) for X ~ NB(mu, a), tight
// deep in the lower tail where the normal approximation of lowerTail is far
// too generous: below the mode the probabilities rise with k, so the tail is
// at most (x+1)·P(X = x). At or above the mode it claims nothing (0).
func logLowerTailBound(x, mu, a float64) float64 {
	mode := math.Floor(mu * (1 - a))
	if a < poissonA {
		mode = math.Floor(mu)
	}
	if x >= mode {
		return 0
	}
	return math.Log(x+1) + logPMF(x, mu, a)
}
