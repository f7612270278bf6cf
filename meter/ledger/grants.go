package ledger

import (
	"slices"

	"github.com/creditgate/creditgate/meter"
)

// Lot is one credit grant of an account (meter.CreditGrant): credits
// given, not bought, that may expire. Its Left is part of the account's
// Balance (the balance is the ledger's sum, grants included), Held part
// of Reserved. Lots are kept in spending order (see less).
type Lot struct {
	ID       string `json:"id"`
	Granted  int64  `json:"granted"`
	Left     int64  `json:"left"` // not spent yet, held parts included
	Held     int64  `json:"held,omitempty"`
	Priority int64  `json:"prio,omitempty"`
	Expires  int64  `json:"exp,omitempty"` // store ms; 0: never
	Created  int64  `json:"created"`
	Desc     string `json:"desc,omitempty"`
	// Ended is "" while the lot is spendable, meter.GrantExpired or
	// meter.GrantVoided after. An ended lot stays while holds keep some
	// of it: what they release leaves the balance at the next EndLots.
	Ended string `json:"ended,omitempty"`
}

// LotPart is what a hold, a charge or a refund took from (or gave back
// to) one lot.
type LotPart struct {
	ID string `json:"id"`
	N  int64  `json:"n"`
}

func partsSum(ps []LotPart) (n int64) {
	for _, p := range ps {
		n += p.N
	}
	return n
}

// less is the spending order: higher priority first, then the soonest
// expiry (never last), then the oldest.
func less(a, b Lot) int {
	switch {
	case a.Priority != b.Priority:
		if a.Priority > b.Priority {
			return -1
		}
		return 1
	case a.Expires != b.Expires:
		if b.Expires == 0 || (a.Expires != 0 && a.Expires < b.Expires) {
			return -1
		}
		return 1
	case a.Created != b.Created:
		if a.Created < b.Created {
			return -1
		}
		return 1
	}
	if a.ID < b.ID {
		return -1
	}
	return 1
}

func (a *Account) lot(id string) *Lot {
	for i := range a.Lots {
		if a.Lots[i].ID == id {
			return &a.Lots[i]
		}
	}
	return nil
}

// lotsFree is what the spendable lots can give now, and lotsLeft what
// all lots still hold in the balance (their held parts included).
func (a *Account) lotsFree() (n int64) {
	for _, l := range a.Lots {
		if l.Ended == "" {
			n += l.Left - l.Held
		}
	}
	return n
}

func (a *Account) lotsLeft() (left, held int64) {
	for _, l := range a.Lots {
		left, held = left+l.Left, held+l.Held
	}
	return left, held
}

// takeLots takes up to x from the spendable lots in spending order,
// without holding it; it returns the parts.
func (a *Account) takeLots(x int64) []LotPart {
	var ps []LotPart
	for _, l := range a.Lots {
		if x <= 0 {
			break
		}
		if n := min(x, l.Left-l.Held); l.Ended == "" && n > 0 {
			ps = append(ps, LotPart{ID: l.ID, N: n})
			x -= n
		}
	}
	return ps
}

// holdLots adds d (+1 hold, -1 release) times the parts to their lots'
// Held.
func (a *Account) holdLots(ps []LotPart, d int64) {
	for _, p := range ps {
		if l := a.lot(p.ID); l != nil {
			l.Held += d * p.N
		}
	}
}

// spendLots takes the parts out of their lots and the balance.
func (a *Account) spendLots(ps []LotPart) {
	for _, p := range ps {
		if l := a.lot(p.ID); l != nil {
			l.Left -= p.N
		}
		a.Balance -= p.N
	}
}

// AddLot grants a lot: its amount joins the balance with a grant entry.
// No balance may exceed meter.MaxCredits.
func (a *Account) AddLot(l Lot) (Entry, []Event, error) {
	if l.Granted <= 0 {
		return Entry{}, nil, meter.Errorf(meter.ECodeInvalid, "a grant must be positive")
	}
	if a.Balance+l.Granted > int64(meter.MaxCredits) {
		return Entry{}, nil, meter.Errorf(meter.ECodeInvalid, "balance would exceed the maximum")
	}
	l.Left, l.Held, l.Ended = l.Granted, 0, ""
	i, _ := slices.BinarySearchFunc(a.Lots, l, less)
	a.Lots = slices.Insert(a.Lots, i, l)
	a.Balance += l.Granted
	e := Entry{Type: meter.EntryGrant, Amount: l.Granted, BalanceAfter: a.Balance,
		Lots: []LotPart{{ID: l.ID, N: l.Granted}}}
	return e, a.LowBalance(nil), nil
}

// VoidLot ends a lot now: what is not held leaves the balance with a
// grant_void entry; held parts leave when their holds release them.
// ECodeGrantNotFound for an unknown or ended lot.
func (a *Account) VoidLot(id string) ([]Entry, []Event, error) {
	l := a.lot(id)
	if l == nil || l.Ended != "" {
		return nil, nil, meter.Errorf(meter.ECodeGrantNotFound, "no active grant %q", id)
	}
	l.Ended = meter.GrantVoided
	es := a.endLots(0)
	return es, a.LowBalance(nil), nil
}

// LotsDue reports whether EndLots at now would change anything, so a
// read can tell that it must write first.
func (a *Account) LotsDue(now int64) bool {
	for _, l := range a.Lots {
		if (l.Ended == "" && l.Expires > 0 && l.Expires <= now) || (l.Ended != "" && l.Left > l.Held) || (l.Ended != "" && l.Left == 0) {
			return true
		}
	}
	return false
}

// EndLots expires the lots whose expiry is at or before now (the store's
// clock): what is left and not held leaves the balance, one expiration
// entry per lot. It also lets go what holds have since released from
// ended lots, and drops ended lots nothing holds any more. A store calls
// it before and after every operation on the account.
func (a *Account) EndLots(now int64) ([]Entry, []Event) {
	if len(a.Lots) == 0 {
		return nil, nil
	}
	es := a.endLots(now)
	if len(es) == 0 {
		return nil, nil
	}
	return es, a.LowBalance(nil)
}

func (a *Account) endLots(now int64) []Entry {
	var es []Entry
	kept := a.Lots[:0]
	for _, l := range a.Lots {
		if l.Ended == "" && now > 0 && l.Expires > 0 && l.Expires <= now {
			l.Ended = meter.GrantExpired
		}
		if n := l.Left - l.Held; l.Ended != "" && n > 0 {
			l.Left -= n
			a.Balance -= n
			typ := meter.EntryExpiration
			if l.Ended == meter.GrantVoided {
				typ = meter.EntryGrantVoid
			}
			es = append(es, Entry{Type: typ, Amount: -n, BalanceAfter: a.Balance, Lots: []LotPart{{ID: l.ID, N: n}}})
		}
		if l.Ended == "" || l.Left > 0 {
			kept = append(kept, l)
		}
	}
	clear(a.Lots[len(kept):])
	a.Lots = kept
	if len(a.Lots) == 0 {
		a.Lots = nil
	}
	return es
}

// Grants is the account's lots as the API shows them.
func (a *Account) Grants(account string) []meter.CreditGrant {
	if len(a.Lots) == 0 {
		return nil
	}
	out := make([]meter.CreditGrant, 0, len(a.Lots))
	for _, l := range a.Lots {
		g := meter.CreditGrant{ID: l.ID, AccountID: account, Amount: meter.Credits(l.Granted),
			Remaining: meter.Credits(l.Left), Held: meter.Credits(l.Held), Priority: l.Priority,
			Description: l.Desc, CreatedAt: msTime(l.Created), State: meter.GrantActive}
		if l.Ended != "" {
			g.State = l.Ended
		}
		if l.Expires > 0 {
			t := msTime(l.Expires)
			g.ExpiresAt = &t
		}
		out = append(out, g)
	}
	return out
}
