package ledger

import (
	"github.com/creditgate/creditgate/meter"
)

// Pages is one page class of a job: its rate and the pages reported but
// not yet charged.
type Pages struct {
	Rate int64
	Owed int64
}

// PagesWithin charges owed pages class by class, in the order given (the
// stores: by class name), as many whole pages as budget covers; pages of
// rate 0 always. It returns the pages charged per class, their cost and
// whether some owed page could not be covered (the job blocks).
func PagesWithin(budget int64, classes []Pages) (n []int64, cost int64, blocked bool) {
	n = make([]int64, len(classes))
	for i, c := range classes {
		if c.Owed <= 0 {
			continue
		}
		k := c.Owed
		if c.Rate > 0 {
			k = min(k, budget/c.Rate)
		}
		budget -= k * c.Rate
		cost += k * c.Rate
		n[i] = k
		blocked = blocked || k < c.Owed
	}
	return n, cost, blocked
}

// JobBudget is what a job's charge may take: the pools, and its hold h
// while held (nil: none).
func (a *Account) JobBudget(h *Hold) int64 {
	b := a.Available()
	if h != nil {
		b += h.Amount()
	}
	return b
}

// JobCharge is the outcome of ChargeJob: the parts charged, the usage
// entry (nil when the cost is 0) and the events raised.
type JobCharge struct {
	Parts  Hold
	Entry  *Entry
	Events []Event
}

// ChargeJob charges cost (within JobBudget) for a job's pages: from its
// hold h's parts first (quota, balance, overage; h shrinks in place), then
// from the pools in their order. Hold parts of a period that has rolled
// since do not count in this period's use. ok is false when the pools
// were short of the cost, which PagesWithin within JobBudget rules out;
// the account is then changed and must not be saved.
func (a *Account) ChargeJob(h *Hold, cost int64) (ch JobCharge, ok bool) {
	qUsed, oUsed := a.QUsed, a.OUsed
	var hq, hb, ho, hgs int64
	var hg []LotPart
	if h != nil {
		hq = min(cost, h.Q)
		hg = cutParts(h.G, cost-hq)
		hgs = partsSum(hg)
		hb = min(cost-hq-hgs, h.B)
		ho = min(cost-hq-hgs-hb, h.O)
		h.Q, h.B, h.O = h.Q-hq, h.B-hb, h.O-ho
		h.G = subParts(h.G, hg)
		// The hold's parts leave the reserved amount and the balance
		// together: the pools are as they were, and the hold's balance
		// part never counts as free balance for the rest of the cost.
		a.Reserved -= hgs + hb + ho
		a.Balance -= hb + ho
		a.holdLots(hg, -1)
		a.spendLots(hg)
		if h.Per == a.Period {
			a.QRes, a.ORes = a.QRes-hq, a.ORes-ho
			a.QUsed, a.OUsed = a.QUsed+hq, a.OUsed+ho
		}
	}
	p := a.Split(cost - hq - hgs - hb - ho)
	if hq+hgs+hb+ho+p.Amount() != cost {
		return ch, false
	}
	a.spendLots(p.G)
	a.QUsed, a.OUsed = a.QUsed+p.Q, a.OUsed+p.O
	q, b, o := hq+p.Q, hb+p.B, ho+p.O
	g := append(hg, p.G...)
	gs := partsSum(g)
	a.Balance -= p.B + p.O
	a.TotalUsed += cost
	if a.QUsed > qUsed {
		ch.Events = a.quotaCrossed(ch.Events, qUsed)
	}
	if gs+b+o > 0 {
		ch.Events = a.LowBalance(ch.Events)
	}
	if a.OUsed > oUsed {
		ch.Events = a.overageCrossed(ch.Events, oUsed)
	}
	ch.Parts = Hold{Q: q, B: b, O: o, G: g, Per: a.Period}
	if cost > 0 {
		ch.Entry = &Entry{Type: meter.EntryUsage, Amount: -(gs + b + o), BalanceAfter: a.Balance, Quota: q, Overage: o, Lots: g}
	}
	return ch, true
}

// subParts is ps less the parts cut (a prefix of ps, as cutParts gives).
func subParts(ps, cut []LotPart) []LotPart {
	var out []LotPart
	for i, p := range ps {
		if i < len(cut) {
			p.N -= cut[i].N
		}
		if p.N > 0 {
			out = append(out, p)
		}
	}
	return out
}
