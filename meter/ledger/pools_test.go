package ledger

import (
	"fmt"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// Requests' holds in an accountSim: reserve, commit (Settle), void and
// expire (Release), as the stores apply the model (meter/storetest's
// model_ref.go does the same beside a store).

// simHold is a request's hold; late once it expired; entry the usage
// entry its commit wrote.
type simHold struct {
	h                               Hold
	short                           bool
	late, settled, voided, refunded bool
	entry                           *Entry
}

// roll moves the account to the period its calls name, as a store does
// at each call that names one.
func (s *accountSim) roll() {
	if s.month > 0 {
		s.a.Roll(s.month, s.month+1)
	}
}

// request applies a request's step, if f is one: "reserve <rid> <x>
// [short] [min=<x>]", "commit <rid> <x> [uncapped]", "void <rid>",
// "refund <rid> [<x>]" (of the usage entry rid's commit wrote; all
// without x), "adjust <x>" (an adjustment, negative: a removal), "totals"
// (what was purchased and used), "expire" (the short
// holds), "settings <quota> <overage cap>", "period <n>" (the
// month the calls name from now on, 0: none).
func (s *accountSim) request(f []string) (bool, error) {
	a := s.a
	switch f[0] {
	case "reserve":
		s.roll()
		if s.holds[f[1]] != nil {
			return true, meter.Errorf(meter.ECodeInvalid, "reservation id already used")
		}
		var minimum int64
		if m, ok := opt(f, "min"); ok {
			minimum = k(num(m))
		}
		h, err := a.Reserve(k(num(f[2])), minimum)
		if err != nil {
			return true, err
		}
		_, short := opt(f, "short")
		s.holds[f[1]] = &simHold{h: h, short: short}
		fmt.Fprintf(&s.out, "held %s (quota %s balance %s overage %s)", cr(h.Amount()), cr(h.Q), cr(h.B), cr(h.O))
	case "commit":
		sh := s.holds[f[1]]
		switch {
		case sh == nil:
			return true, meter.Errorf(meter.ECodeReservationNotFound, "no reservation %s", f[1])
		case sh.voided:
			return true, meter.Errorf(meter.ECodeReservationSettled, "voided")
		case sh.settled:
			s.out.WriteString("the first settlement again") // a settle retried
			return true, nil
		}
		_, uncapped := opt(f, "uncapped")
		st := a.Settle(sh.h, sh.late, k(num(f[2])), uncapped)
		sh.settled, sh.entry = true, st.Entry
		fmt.Fprintf(&s.out, "charged %s", cr(st.Charged))
		if e := st.Entry; e != nil {
			s.sum += e.Amount
			fmt.Fprintf(&s.out, " (usage %s quota %s overage %s after %s)", cr(e.Amount), cr(e.Quota), cr(e.Overage), cr(e.BalanceAfter))
			if e.Late {
				s.out.WriteString(" late")
			}
			if e.Shortfall > 0 {
				s.out.WriteString(" shortfall " + cr(e.Shortfall))
			}
		}
		s.events(st.Events)
	case "void":
		sh := s.holds[f[1]]
		if sh.settled {
			return true, meter.Errorf(meter.ECodeReservationSettled, "committed")
		}
		if !sh.voided && !sh.late {
			a.Release(sh.h)
		}
		sh.voided = true
		s.out.WriteString("released")
	case "expire":
		for _, sh := range s.holds {
			if sh.short && !sh.settled && !sh.voided && !sh.late {
				a.Release(sh.h)
				sh.late = true
			}
		}
	case "refund":
		sh := s.holds[f[1]]
		if sh.refunded {
			return true, meter.Errorf(meter.ECodeRefundNotAllowed, "already refunded")
		}
		var x int64
		if len(f) > 2 {
			x = k(num(f[2]))
		}
		e, evs, err := a.Refund(f[1], -sh.entry.Amount-partsSum(sh.entry.Lots), sh.entry.Lots, x)
		if err != nil {
			return true, err
		}
		sh.refunded = true
		s.sum += e.Amount
		fmt.Fprintf(&s.out, "refunded %s", cr(e.Amount))
		s.events(evs)
	case "totals":
		fmt.Fprintf(&s.out, "purchased %s used %s", cr(a.TotalPurchased), cr(a.TotalUsed))
	case "adjust":
		e, evs, err := a.Grant(meter.EntryAdjustment, k(num(f[1])))
		if err != nil {
			return true, err
		}
		s.sum += e.Amount
		s.events(evs)
	case "settings":
		a.QuotaLimit, a.OverageCap = k(num(f[1])), k(num(f[2]))
	case "period":
		s.month = int64(num(f[1]))
	default:
		return false, nil
	}
	return true, nil
}

// opt is the value of option name (name or name=value) among a step's
// fields after the third.
func opt(f []string, name string) (string, bool) {
	for _, o := range f[min(3, len(f)):] {
		if k, v, _ := strings.Cut(o, "="); k == name {
			return v, true
		}
	}
	return "", false
}
