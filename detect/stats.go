package detect

import "math"

// Counts are modelled as negative binomial (gamma-Poisson): mean mu and variance
// mu + a·mu², where a ≥ 0 is the stream's overdispersion (a = 0 is Poisson).
// These helpers are the only probability code of the package.

// poissonA is the dispersion below which the Poisson limits are used.
const poissonA = 1e-9

// logP0 is log P(X = 0) for X ~ NB(mu, a).
func logP0(mu, a float64) float64 {
	if mu <= 0 {
		return 0
	}
	if a < poissonA {
		return -mu
	}
	return -math.Log1p(a*mu) / a
}

// llrLoss is the log-likelihood ratio of observing x under "a fraction 1−rho of
// the events is lost" (mean rho·mu) against "normal" (mean mu), both NB with the
// same gamma shape 1/a. It is positive when x favours the loss.
func llrLoss(x, mu, a, rho float64) float64 {
	if mu <= 0 {
		return 0
	}
	if a < poissonA {
		return x*math.Log(rho) + mu*(1-rho)
	}
	return x*math.Log(rho) + (x+1/a)*(math.Log1p(a*mu)-math.Log1p(a*rho*mu))
}

// lowerTail is P(X ≤ x) for X ~ NB(mu, a): exact for small means, a normal
// approximation with continuity correction for large ones.
func lowerTail(x, mu, a float64) float64 {
	if mu <= 0 {
		return 1
	}
	if mu >= 30 {
		sd := math.Sqrt(mu + a*mu*mu)
		return 0.5 * math.Erfc(-(x+0.5-mu)/(sd*math.Sqrt2))
	}
	if x > 200 {
		return 1
	}
	p := math.Exp(logP0(mu, a))
	sum := p
	var ratio float64 // P(k+1)/P(k) = (k+r)/(k+1) · a·mu/(1+a·mu), or mu/(k+1) for Poisson
	if a >= poissonA {
		ratio = a * mu / (1 + a*mu)
	}
	for k := 0.0; k < x; k++ {
		if a < poissonA {
			p *= mu / (k + 1)
		} else {
			p *= (k + 1/a) / (k + 1) * ratio
		}
		sum += p
	}
	return math.Min(sum, 1)
}

// band returns the approximate 0.5 % and 99.5 % quantiles of NB(mu, a) (normal
// approximation, clipped at 0): the band served with the expectation.
func band(mu, a float64) (lower, upper float64) {
	const z = 2.576
	sd := math.Sqrt(mu + a*mu*mu)
	return math.Max(0, mu-z*sd), mu + z*sd
}

// halfLifeRate is the EWMA weight that halves an old value's influence after
// n updates.
func halfLifeRate(n float64) float64 {
	if n <= 1 {
		return 0.5
	}
	return 1 - math.Exp2(-1/n)
}
