package ledger

import (
	"github.com/creditgate/creditgate/meter"
)

// Settlement is the outcome of Settle: the parts charged from each pool
// (Per: the hold's period), the shortfall, the total, whether the charge
// counted in the current period, the usage entry (nil when nothing was
// charged) and the events raised.
type Settlement struct {
	Parts   Hold
	Short   int64
	Charged int64
	Current bool
	Entry   *Entry
	Events  []Event
}

// Settle charges a settled request. A held reservation (late false) is
// charged min(amount, held) from its own parts, quota first, then
// balance, then overage, and the rest of it is released; its use counts
// in the period it was made in, unless that period has rolled. A late
// settle (the hold expired first and was released) takes min(amount, held)
// from what the pools have now, counted in the current period. Uncapped,
// the excess over the hold is taken from the pools after the hold's parts,
// and what they cannot give, the shortfall, leaves the balance all the
// same.
func (a *Account) Settle(h Hold, late bool, amount int64, uncapped bool) Settlement {
	x := min(amount, h.Amount())
	if uncapped {
		x = amount
	}
	var q, b, o, excess int64
	var g []LotPart
	current := true
	if late {
		excess = x
	} else {
		held := min(x, h.Amount())
		q = min(held, h.Q)
		g = cutParts(h.G, held-q)
		b = min(held-q-partsSum(g), h.B)
		o = held - q - partsSum(g) - b
		excess = x - held
		current = h.Per == a.Period
		a.Release(h)
		a.spendLots(g)
	}
	if current {
		a.QUsed, a.OUsed = a.QUsed+q, a.OUsed+o
	}
	a.Balance -= b + o
	var short int64
	if excess > 0 {
		e := a.Split(excess)
		eg := partsSum(e.G)
		if uncapped {
			short = excess - e.Q - eg - e.B - e.O
		}
		a.spendLots(e.G)
		a.QUsed, a.OUsed = a.QUsed+e.Q, a.OUsed+e.O
		a.Balance -= e.B + e.O + short
		q, b, o = q+e.Q, b+e.B, o+e.O
		g = append(g, e.G...)
		current = current || e.Q+e.O > 0
	}
	gs := partsSum(g)
	st := Settlement{Parts: Hold{Q: q, B: b, O: o, G: g, Per: h.Per}, Short: short, Charged: q + gs + b + o + short, Current: current}
	a.TotalUsed += st.Charged

	// The quota's and the overage's crossings are tested with the whole
	// part charged, hold and excess (as commit.lua does).
	if current && q > 0 {
		st.Events = a.quotaCrossed(st.Events, a.QUsed-q)
	}
	if gs+b+o+short > 0 {
		st.Events = a.LowBalance(st.Events)
	}
	if current && o > 0 {
		st.Events = a.overageCrossed(st.Events, a.OUsed-o)
	}
	if short > 0 {
		st.Events = append(st.Events, Event{Type: meter.EventShortfall, Balance: a.Balance, Used: short})
	}
	if st.Charged > 0 {
		st.Entry = &Entry{Type: meter.EntryUsage, Amount: -(gs + b + o + short), BalanceAfter: a.Balance,
			Quota: q, Overage: o, Shortfall: short, Late: late, Lots: g}
	}
	return st
}

// cutParts is the first x of parts, in their order.
func cutParts(ps []LotPart, x int64) []LotPart {
	var out []LotPart
	for _, p := range ps {
		if x <= 0 {
			break
		}
		n := min(x, p.N)
		out = append(out, LotPart{ID: p.ID, N: n})
		x -= n
	}
	return out
}

// quotaCrossed raises quota.exhausted when the quota used went from below
// the limit (before) to at or above it.
func (a *Account) quotaCrossed(evs []Event, before int64) []Event {
	if a.QuotaLimit > 0 && a.QUsed >= a.QuotaLimit && before < a.QuotaLimit {
		evs = append(evs, Event{Type: meter.EventQuotaExhausted, Balance: a.Balance, Limit: a.QuotaLimit,
			Used: a.QUsed, Resets: a.PeriodEnd})
	}
	return evs
}

// overageCrossed raises overage.limit_reached when the overage used went
// from below the cap (before) to at or above it.
func (a *Account) overageCrossed(evs []Event, before int64) []Event {
	if a.OverageCap > 0 && a.OUsed >= a.OverageCap && before < a.OverageCap {
		evs = append(evs, Event{Type: meter.EventOverageLimitReached, Balance: a.Balance, Limit: a.OverageCap,
			Used: a.OUsed, Resets: a.PeriodEnd})
	}
	return evs
}

// LowBalance, after the balance moved, raises credits.low_balance when it
// is below the threshold and none was raised since it last was at or
// above it, and re-arms when it is at or above it.
func (a *Account) LowBalance(evs []Event) []Event {
	t := a.Threshold
	switch {
	case t <= 0:
	case a.Balance < t && !a.LBSent:
		a.LBSent = true
		evs = append(evs, Event{Type: meter.EventLowBalance, Balance: a.Balance, Threshold: t})
	case a.Balance >= t && a.LBSent:
		a.LBSent = false
	}
	return evs
}

// SetThreshold sets a new low-balance threshold. It raises no event; it
// re-arms when the balance is at or above it, so the next debit below it
// raises one.
func (a *Account) SetThreshold(t int64) {
	a.Threshold = t
	if t <= 0 || a.Balance >= t {
		a.LBSent = false
	}
}

// Grant adds amount (negative: removes it) to the balance as an entry of
// type typ (purchase, adjustment). A removal may not take more than the
// paid balance not held; no balance may exceed meter.MaxCredits.
func (a *Account) Grant(typ string, amount int64) (Entry, []Event, error) {
	// A removal takes paid credits only: credit grants are voided instead.
	if _, _, room, _ := a.Pools(); amount < 0 && room < -amount {
		return Entry{}, nil, Insufficient(meter.Credits(-amount), meter.Credits(max(0, room)))
	}
	if a.Balance+amount > int64(meter.MaxCredits) {
		return Entry{}, nil, meter.Errorf(meter.ECodeInvalid, "balance would exceed the maximum")
	}
	a.Balance += amount
	if amount > 0 {
		a.TotalPurchased += amount
	}
	e := Entry{Type: typ, Amount: amount, BalanceAfter: a.Balance}
	return e, a.LowBalance(nil), nil
}

// Refund gives back amount (0: all) of what a usage entry took from the
// balance: took, its paid balance and overage parts, first, then its
// grant parts g, each to its grant while that is still spendable; the
// part of an ended grant gives nothing back (it would have expired). The
// quota part was free. The store checks that the entry exists, is a
// usage entry and was not refunded before.
func (a *Account) Refund(entryID string, took int64, g []LotPart, amount int64) (Entry, []Event, error) {
	all := took + partsSum(g)
	if all <= 0 {
		return Entry{}, nil, meter.Errorf(meter.ECodeRefundNotAllowed, "entry %s took nothing from the balance (quota only)", entryID)
	}
	if amount == 0 {
		amount = all
	}
	if amount > all {
		return Entry{}, nil, meter.Errorf(meter.ECodeRefundNotAllowed, "a refund of %s credits exceeds the %s credits the entry took",
			meter.Credits(amount), meter.Credits(all))
	}
	paid := min(amount, took)
	var back []LotPart
	for _, p := range cutParts(g, amount-paid) {
		if l := a.lot(p.ID); l != nil && l.Ended == "" {
			back = append(back, p)
		}
	}
	n := paid + partsSum(back)
	if n == 0 {
		return Entry{}, nil, meter.Errorf(meter.ECodeRefundNotAllowed, "entry %s was paid from credit grants that have ended", entryID)
	}
	if a.Balance+n > int64(meter.MaxCredits) {
		return Entry{}, nil, meter.Errorf(meter.ECodeInvalid, "balance would exceed the maximum")
	}
	for _, p := range back {
		a.lot(p.ID).Left += p.N
	}
	a.Balance += n
	a.TotalUsed -= n
	e := Entry{Type: meter.EntryRefund, Amount: n, BalanceAfter: a.Balance, Lots: back}
	return e, a.LowBalance(nil), nil // only ever re-arms: a refund raises the balance
}

// Reverse takes back delta credits a payment bought (a refund at the
// payment provider). Unlike a negative grant it may take the balance
// below zero: the part the balance cannot give is the entry's shortfall,
// owed until bought back, so buying, spending and refunding gets no work
// free (see meter.PaymentStore).
func (a *Account) Reverse(delta int64) (Entry, []Event) {
	left, _ := a.lotsLeft() // grant credits never pay for a reversal
	shortfall := max(0, delta-max(0, a.Balance-left))
	a.Balance -= delta
	a.TotalPurchased -= delta
	e := Entry{Type: meter.EntryReversal, Amount: -delta, BalanceAfter: a.Balance, Shortfall: shortfall}
	return e, a.LowBalance(nil)
}
