package pricing

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/creditgate/creditgate/meter"
)

// mulCredits is n * c, refusing overflow: units come from requests and
// upstreams, so they are not trusted to be small.
func mulCredits(n int64, c meter.Credits) (meter.Credits, error) {
	if n < 0 || c < 0 {
		return 0, fmt.Errorf("pricing: negative amount %d x %s", n, c)
	}
	hi, lo := bits.Mul64(uint64(n), uint64(c))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, overflow()
	}
	return meter.Credits(lo), nil
}

func addCredits(a, b meter.Credits) (meter.Credits, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, overflow()
	}
	return s, nil
}

func overflow() error {
	return meter.Errorf(meter.ECodeBadRequest, "the request's price is out of range")
}

// ceilDiv is ceil(n / d) for n >= 0, d > 0.
func ceilDiv(n, d int64) int64 {
	q := n / d
	if n%d != 0 {
		q++
	}
	return q
}
