// Package ledger is the money model of creditgate: where a credit moves
// when an account reserves, settles, releases, is charged for a job's
// pages, refunded or granted credits, and which events that raises. It is
// pure: no I/O and no clock (a store passes its own time in), so a store
// only reads its records, calls these functions and persists what they
// return, in one atomic step. meter/boltstore applies it; the Lua scripts
// of meter/redisstore mirror it, and the model-based tests of
// meter/storetest run both against it (docs/money-model.md).
//
// Amounts are integer milli-credits. A charge is taken from three pools,
// in order: the period's quota (limit - used - reserved), the prepaid
// balance (balance - reserved, when positive), then the period's overage
// (cap - used - reserved, and never so much that the balance, once every
// hold is settled, would be below -cap). Without a period yet, quota and
// overage give nothing.
package ledger

import (
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Account is the money state of one account. The JSON names are the
// embedded store's record fields (and redisstore's hash fields), so a
// store may embed it in its record unchanged.
type Account struct {
	Balance int64 `json:"balance"`
	// Reserved is the balance and overage parts of all holds (what will
	// leave the balance); QRes and ORes only the quota and overage parts
	// of the current period's holds.
	Reserved   int64 `json:"reserved"`
	QRes       int64 `json:"q_res"`
	ORes       int64 `json:"o_res"`
	QUsed      int64 `json:"q_used"`
	OUsed      int64 `json:"o_used"`
	Period     int64 `json:"period"` // current period id (start ms), 0: none yet
	PeriodEnd  int64 `json:"period_end"`
	QuotaLimit int64 `json:"quota_limit"`
	OverageCap int64 `json:"overage_cap"`
	// TotalPurchased counts positive grants, TotalUsed every charge less
	// refunds.
	TotalPurchased int64  `json:"total_purchased"`
	TotalUsed      int64  `json:"total_used"`
	QuotaUnit      string `json:"quota_unit,omitempty"`
	// LBSent is true once a low-balance event was raised and until the
	// balance is back at or above the threshold.
	LBSent bool `json:"lb_sent,omitempty"`
	// Threshold is the low-balance threshold (Settings'); a store keeps it
	// where it keeps settings and sets it here before an operation.
	Threshold int64 `json:"-"`
	// Lots are the account's credit grants in spending order (grants.go).
	Lots []Lot `json:"lots,omitempty"`
}

// Hold is what a reservation took from each pool: quota, balance and
// overage parts (once settled: what it charged), and the period it was
// made in.
type Hold struct {
	Q   int64 `json:"q,omitempty"`
	B   int64 `json:"b,omitempty"`
	O   int64 `json:"o,omitempty"`
	Per int64 `json:"per,omitempty"`
	// G are the parts held from (once settled: charged to) credit grants,
	// spent after Q and before B.
	G []LotPart `json:"g,omitempty"`
}

// Amount is what the hold holds in all.
func (h Hold) Amount() int64 { return h.Q + h.B + h.O + partsSum(h.G) }

// Entry is a ledger entry the model writes: Amount is what moved in or out
// of the balance, Quota and Overage the parts of a charge, Shortfall what
// an uncapped charge took beyond the pools.
type Entry struct {
	Type         string
	Amount       int64
	BalanceAfter int64
	Quota        int64
	Overage      int64
	Shortfall    int64
	Late         bool
	// Lots are the parts taken from (a refund, grant: given to) credit
	// grants; they are in Amount.
	Lots []LotPart
}

// Event is a webhook event the model raises (meter.Event* types), with the
// balance at the end of the operation that raised it.
type Event struct {
	Type      string
	Balance   int64
	Threshold int64
	Limit     int64
	Used      int64
	Resets    int64
}

// Roll moves the account to period pid (ending pend) when it is newer than
// the current one: quota and overage start afresh, and holds of the old
// period keep their parts but no longer count here. An older or absent (0)
// id is read as the current period (a gateway whose clock lags). It
// reports whether the period changed.
func (a *Account) Roll(pid, pend int64) bool {
	if pid <= a.Period {
		return false
	}
	a.Period, a.PeriodEnd = pid, pend
	a.QUsed, a.QRes, a.OUsed, a.ORes = 0, 0, 0, 0
	return true
}

// Owes is what the account owes beyond its overage cap: the shortfall of
// uncapped charges (or an adjustment) not yet bought back. While it owes,
// no pool gives anything. Grant credits never pay a debt: only the paid
// balance counts.
func (a *Account) Owes() int64 {
	left, _ := a.lotsLeft()
	return max(0, -(a.Balance - left + a.OverageCap))
}

// Pools returns what the quota, the credit grants, the paid balance and
// the overage can give now; room (paid balance - its holds) may be
// negative. Without grants, room is balance - reserved. While the
// account owes, grants give nothing either.
func (a *Account) Pools() (qa, ga, room, oa int64) {
	room = a.Balance - a.Reserved
	if len(a.Lots) > 0 {
		left, held := a.lotsLeft()
		room -= left - held
		ga = a.lotsFree()
	}
	if a.Owes() > 0 {
		return 0, 0, room, 0
	}
	if a.Period == 0 {
		return 0, ga, room, 0
	}
	qa = max(0, a.QuotaLimit-a.QUsed-a.QRes)
	oa = max(0, min(a.OverageCap-a.OUsed-a.ORes, a.OverageCap+min(0, room)))
	return qa, ga, room, oa
}

// Split takes x from the pools in order: quota, grants (in spending
// order), paid balance, overage. The parts (Per unset) may fall short of
// x.
func (a *Account) Split(x int64) Hold {
	qa, ga, room, oa := a.Pools()
	var h Hold
	h.Q = min(x, qa)
	if ga > 0 && x > h.Q {
		h.G = a.takeLots(x - h.Q)
	}
	g := partsSum(h.G)
	h.B = min(x-h.Q-g, max(0, room))
	h.O = min(x-h.Q-g-h.B, oa)
	return h
}

// Available is all the pools can give now.
func (a *Account) Available() int64 {
	qa, ga, room, oa := a.Pools()
	return qa + ga + max(0, room) + oa
}

// State is the period's quota and overage as the API reports them.
func (a *Account) State() (meter.QuotaState, meter.OverageState) {
	qa, _, _, oa := a.Pools()
	q := meter.QuotaState{Limit: meter.Credits(a.QuotaLimit), Used: meter.Credits(a.QUsed),
		Reserved: meter.Credits(a.QRes), Remaining: meter.Credits(qa)}
	if a.PeriodEnd > 0 {
		q.ResetsAt = msTime(a.PeriodEnd)
	}
	ov := meter.OverageState{Cap: meter.Credits(a.OverageCap), Used: meter.Credits(a.OUsed),
		Reserved: meter.Credits(a.ORes), Remaining: meter.Credits(oa)}
	return q, ov
}

// take adds a hold of parts h in the current period to the pools'
// reservations.
func (a *Account) take(h Hold) Hold {
	g := partsSum(h.G)
	a.Reserved, a.QRes, a.ORes = a.Reserved+g+h.B+h.O, a.QRes+h.Q, a.ORes+h.O
	a.holdLots(h.G, 1)
	h.Per = a.Period
	return h
}

// Release takes a hold's parts off the pools (a void, an expiry, what a
// settle did not charge). Parts held in an earlier period were already
// dropped from QRes and ORes when the period rolled. Parts of a grant
// that has ended since leave the balance at the next EndLots.
func (a *Account) Release(h Hold) {
	a.Reserved -= h.B + h.O + partsSum(h.G)
	a.holdLots(h.G, -1)
	if h.Per == a.Period {
		a.QRes -= h.Q
		a.ORes -= h.O
	}
}

// Reserve holds amount from the pools. When they cannot give it all but
// give at least minimum (> 0), it holds all they give (an estimate's
// partial hold). Otherwise it changes nothing and returns the refusal
// (Refusal) of minimum, or of amount without one.
func (a *Account) Reserve(amount, minimum int64) (Hold, error) {
	h := a.Split(amount)
	if got := h.Amount(); got < amount && (minimum <= 0 || got < minimum) {
		if minimum > 0 {
			return Hold{}, a.Refusal(minimum)
		}
		return Hold{}, a.Refusal(amount)
	}
	return a.take(h), nil
}

// HoldAll holds x as far as the pools cover it (a resumed job's hold).
func (a *Account) HoldAll(x int64) Hold { return a.take(a.Split(x)) }

// Refusal is the refusal of a hold of amount the pools cannot cover, the
// first that applies: credits owed, the overage cap reached, a quota-only
// account that used its quota, or too few credits.
func (a *Account) Refusal(amount int64) error {
	room := meter.Credits(a.Balance - a.Reserved)
	req := meter.Credits(amount)
	switch {
	case a.Owes() > 0:
		return meter.CreditsOwed(req, room, meter.Credits(a.Owes()))
	case a.Period > 0 && a.OverageCap > 0:
		e := meter.Errorf(meter.ECodeOverageLimitReached, "the overage of this period (%s credits) cannot cover %s credits",
			meter.Credits(a.OverageCap), req)
		e.Details = map[string]any{"required": req, "available": room, "cap": meter.Credits(a.OverageCap)}
		return e
	case a.Period > 0 && a.QuotaLimit > 0 && room <= 0:
		limit, used, resets := meter.Credits(a.QuotaLimit), meter.Credits(a.QUsed+a.QRes), msTime(a.PeriodEnd)
		e := meter.Errorf(meter.ECodeQuotaExceeded, "%s", meter.QuotaMessage(limit, a.QuotaUnit, resets))
		e.Details = map[string]any{"limit": limit, "used": used, "resets_at": resets}
		return e
	}
	return Insufficient(req, room)
}

// Insufficient is the insufficient_credits refusal.
func Insufficient(req, avail meter.Credits) error {
	e := meter.Errorf(meter.ECodeInsufficientCredits, "insufficient credits: %s required, %s available", req, avail)
	e.Details = map[string]any{"required": req, "available": avail}
	return e
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
