package engine

import (
	"math"
	"time"
)

// Backoff describes exponential reconnect delays.
type Backoff struct {
	Min, Max   time.Duration
	Multiplier float64
	// Jitter is the fraction (0..1) of each delay that is randomised, so
	// many clients cut off together do not come back together.
	Jitter float64
}

// Delay returns the wait before reconnect attempt number attempt (0 for
// the first retry). u is a uniform random number in [0,1) supplied by the
// caller; the result lies in [d·(1−Jitter), d] for the un-jittered delay d,
// and never exceeds Max.
func (b Backoff) Delay(attempt int, u float64) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	mult := b.Multiplier
	if mult < 1 {
		mult = 1
	}
	d := float64(b.Min) * math.Pow(mult, float64(attempt))
	if b.Max > 0 && (d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d)) {
		d = float64(b.Max)
	}
	j := min(max(b.Jitter, 0), 1)
	u = min(max(u, 0), 1)
	d -= d * j * u
	return time.Duration(d)
}
