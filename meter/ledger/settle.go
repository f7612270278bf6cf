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
	current := true
	if late {
		excess = x
	} else {
		held := min(x, h.Amount())
		q = min(held, h.Q)
		b = min(held-q, h.B)
		o = held - q - b
		excess = x - held
		current = h.Per == a.Period
		a.Release(h)
	}
	if current {
		a.QUsed, a.OUsed = a.QUsed+q, a.OUsed+o
	}
	a.Balance -= b + o
	var short int64
	if excess > 0 {
		eq, eb, eo := a.Split(excess)
		if uncapped {
			short = excess - eq - eb - eo
		}
		a.QUsed, a.OUsed = a.QUsed+eq, a.OUsed+eo
		a.Balance -= eb + eo + short
		q, b, o = q+eq, b+eb, o+eo
		current = current || eq+eo > 0
	}
	st := Settlement{Parts: Hold{Q: q, B: b, O: o, Per: h.Per}, Short: short, Charged: q + b + o + short, Current: current}
	a.TotalUsed += st.Charged

	// The quota's and the overage's crossings are tested with the whole
	// part charged, hold and excess (as commit.lua does).
	if current && q > 0 {
		st.Events = a.quotaCrossed(st.Events, a.QUsed-q)
	}
	if b+o+short > 0 {
		st.Events = a.LowBalance(st.Events)
	}
	if current && o > 0 {
		st.Events = a.overageCrossed(st.Events, a.OUsed-o)
	}
	if short > 0 {
		st.Events = append(st.Events, Event{Type: meter.EventShortfall, Balance: a.Balance, Used: short})
	}
	if st.Charged > 0 {
		st.Entry = &Entry{Type: meter.EntryUsage, Amount: -(b + o + short), BalanceAfter: a.Balance,
			Quota: q, Overage: o, Shortfall: short, Late: late}
	}
	return st
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
// balance not held; no balance may exceed meter.MaxCredits.
func (a *Account) Grant(typ string, amount int64) (Entry, []Event, error) {
	if amount < 0 && a.Balance-a.Reserved < -amount {
		return Entry{}, nil, Insufficient(meter.Credits(-amount), meter.Credits(a.Balance-a.Reserved))
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
// balance (took, its balance and overage parts; the quota part was free).
// The store checks that the entry exists, is a usage entry and was not
// refunded before.
func (a *Account) Refund(entryID string, took, amount int64) (Entry, []Event, error) {
	if took <= 0 {
		return Entry{}, nil, meter.Errorf(meter.ECodeRefundNotAllowed, "entry %s took nothing from the balance (quota only)", entryID)
	}
	if amount == 0 {
		amount = took
	}
	if amount > took {
		return Entry{}, nil, meter.Errorf(meter.ECodeRefundNotAllowed, "a refund of %s credits exceeds the %s credits the entry took",
			meter.Credits(amount), meter.Credits(took))
	}
	if a.Balance+amount > int64(meter.MaxCredits) {
		return Entry{}, nil, meter.Errorf(meter.ECodeInvalid, "balance would exceed the maximum")
	}
	a.Balance += amount
	a.TotalUsed -= amount
	e := Entry{Type: meter.EntryRefund, Amount: amount, BalanceAfter: a.Balance}
	return e, a.LowBalance(nil), nil // only ever re-arms: a refund raises the balance
}

// Reverse takes back delta credits a payment bought (a refund at the
// payment provider). Unlike a negative grant it may take the balance
// below zero: the part the balance cannot give is the entry's shortfall,
// owed until bought back, so buying, spending and refunding gets no work
// free (see meter.PaymentStore).
func (a *Account) Reverse(delta int64) (Entry, []Event) {
	shortfall := max(0, delta-max(0, a.Balance))
	a.Balance -= delta
	a.TotalPurchased -= delta
	e := Entry{Type: meter.EntryReversal, Amount: -delta, BalanceAfter: a.Balance, Shortfall: shortfall}
	return e, a.LowBalance(nil)
}
