package ledger

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// k is n credits in milli-credits.
func k(n float64) int64 { return int64(n * 1000) }

// acct is an account in period 1 (ending at 2) with a quota, an overage
// cap and a balance.
func acct(balance, quota, overageCap float64) *Account {
	return &Account{Balance: k(balance), Period: 1, PeriodEnd: 2, QuotaLimit: k(quota), OverageCap: k(overageCap)}
}

// The pools give in order: quota, balance (what is not held), overage;
// never more than each has, and the overage never takes the balance,
// once held credits leave, below -cap.
func TestSplitOrder(t *testing.T) {
	tests := []struct {
		name    string
		a       *Account
		x       float64
		q, b, o float64
	}{
		{"quota first", acct(10, 5, 3), 4, 4, 0, 0},
		{"then the balance", acct(10, 5, 3), 8, 5, 3, 0},
		{"then the overage", acct(10, 5, 3), 17, 5, 10, 2},
		{"short of all pools", acct(10, 5, 3), 30, 5, 10, 3},
		{"no period: balance only", &Account{Balance: k(10), QuotaLimit: k(5), OverageCap: k(3)}, 12, 0, 10, 0},
		{"held balance is not free", &Account{Balance: k(10), Reserved: k(8), Period: 1}, 5, 0, 2, 0},
		{"a debt shrinks the overage", &Account{Balance: k(-2), Period: 1, OverageCap: k(3)}, 5, 0, 0, 1},
		{"owing beyond the cap: nothing", &Account{Balance: k(-4), Period: 1, QuotaLimit: k(5), OverageCap: k(3)}, 5, 0, 0, 0},
		{"quota used and held", &Account{Balance: k(1), Period: 1, QuotaLimit: k(5), QUsed: k(3), QRes: k(1)}, 5, 1, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.a.Split(k(tc.x))
			q, b, o := h.Q, h.B, h.O
			if q != k(tc.q) || b != k(tc.b) || o != k(tc.o) {
				t.Errorf("split %v: %d %d %d; want %v %v %v", tc.x, q, b, o, tc.q, tc.b, tc.o)
			}
		})
	}
}

// A hold the pools cannot cover is refused with the first reason that
// applies, and changes nothing; with a minimum, all the pools give is
// held.
func TestReserve(t *testing.T) {
	tests := []struct {
		name        string
		a           *Account
		amount, min float64
		code        string
		held        Hold
	}{
		{"covered", acct(10, 5, 3), 12, 0, "", Hold{Q: k(5), B: k(7), Per: 1}},
		{"insufficient", &Account{Balance: k(3)}, 4, 0, meter.ECodeInsufficientCredits, Hold{}},
		{"overage cap", acct(10, 0, 3), 14, 0, meter.ECodeOverageLimitReached, Hold{}},
		{"quota only, used", &Account{Period: 1, QuotaLimit: k(5), QUsed: k(5)}, 1, 0, meter.ECodeQuotaExceeded, Hold{}},
		{"owes", &Account{Balance: k(-4), Period: 1, OverageCap: k(3)}, 1, 0, meter.ECodeCreditsOwed, Hold{}},
		{"minimum met: all the pools give", acct(10, 0, 0), 15, 5, "", Hold{B: k(10), Per: 1}},
		{"minimum not met", acct(4, 0, 0), 15, 5, meter.ECodeInsufficientCredits, Hold{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := *tc.a
			h, err := tc.a.Reserve(k(tc.amount), k(tc.min))
			if tc.code != "" {
				if meter.ErrorCode(err) != tc.code {
					t.Fatalf("error %v; want %s", err, tc.code)
				}
				if !reflect.DeepEqual(*tc.a, before) {
					t.Errorf("a refusal changed the account: %+v", *tc.a)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(h, tc.held) {
				t.Fatalf("hold %+v, %v; want %+v", h, err, tc.held)
			}
			if tc.a.Reserved != before.Reserved+h.B+h.O || tc.a.QRes != before.QRes+h.Q || tc.a.ORes != before.ORes+h.O {
				t.Errorf("pools %+v after holding %+v", *tc.a, h)
			}
		})
	}
}

func TestRefusalDetails(t *testing.T) {
	a := &Account{Balance: k(3), Reserved: k(1)}
	_, err := a.Reserve(k(4), 0)
	var me *meter.Error
	if !errors.As(err, &me) || !reflect.DeepEqual(me.Details, map[string]any{"required": meter.Credits(k(4)), "available": meter.Credits(k(2))}) {
		t.Fatalf("refusal %#v", err)
	}
}

// Settle charges the hold's own parts (quota, balance, overage), releases
// the rest; uncapped it takes the excess from the pools and the shortfall
// from the balance all the same; late it takes all from the pools.
func TestSettle(t *testing.T) {
	tests := []struct {
		name      string
		a         *Account
		hold      float64 // reserved first, in period 1
		late      bool
		amount    float64
		uncapped  bool
		charged   float64
		short     float64
		entry     *Entry
		events    []string
		balance   float64
		available float64
	}{
		{"capped at the hold", acct(10, 0, 0), 4, false, 6, false, 4, 0,
			&Entry{Type: "usage", Amount: -k(4), BalanceAfter: k(6)}, nil, 6, 6},
		{"less than the hold: the rest released", acct(10, 0, 0), 4, false, 1, false, 1, 0,
			&Entry{Type: "usage", Amount: -k(1), BalanceAfter: k(9)}, nil, 9, 9},
		{"quota only: entry of 0 from the balance", acct(10, 5, 0), 4, false, 4, false, 4, 0,
			&Entry{Type: "usage", Amount: 0, BalanceAfter: k(10), Quota: k(4)}, nil, 10, 10},
		{"uncapped beyond every pool: a shortfall", acct(2, 0, 1), 2, false, 6, true, 6, 3,
			&Entry{Type: "usage", Amount: -k(6), BalanceAfter: -k(4), Overage: k(1), Shortfall: k(3)},
			[]string{meter.EventOverageLimitReached, meter.EventShortfall}, -4, -4},
		{"late: from the pools now", acct(10, 0, 0), 4, true, 3, false, 3, 0,
			&Entry{Type: "usage", Amount: -k(3), BalanceAfter: k(7), Late: true}, nil, 7, 7},
		{"nothing charged: no entry", acct(10, 0, 0), 4, false, 0, false, 0, 0, nil, nil, 10, 10},
		{"one debit crossing quota and overage fires each once", acct(3, 2, 2), 7, false, 7, false, 7, 0,
			&Entry{Type: "usage", Amount: -k(5), BalanceAfter: -k(2), Quota: k(2), Overage: k(2)},
			[]string{meter.EventQuotaExhausted, meter.EventOverageLimitReached}, -2, -2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			h, err := a.Reserve(k(tc.hold), 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.late {
				a.Release(h) // expired
			}
			st := a.Settle(h, tc.late, k(tc.amount), tc.uncapped)
			if st.Charged != k(tc.charged) || st.Short != k(tc.short) {
				t.Errorf("charged %d short %d; want %v %v", st.Charged, st.Short, tc.charged, tc.short)
			}
			if !reflect.DeepEqual(st.Entry, tc.entry) {
				t.Errorf("entry %+v; want %+v", st.Entry, tc.entry)
			}
			var evs []string
			for _, e := range st.Events {
				evs = append(evs, e.Type)
			}
			if !reflect.DeepEqual(evs, tc.events) {
				t.Errorf("events %v; want %v", evs, tc.events)
			}
			if a.Balance != k(tc.balance) || a.Balance-a.Reserved != k(tc.available) || a.Reserved != 0 || a.QRes != 0 || a.ORes != 0 {
				t.Errorf("account %+v; want balance %v available %v, nothing held", *a, tc.balance, tc.available)
			}
		})
	}
}

// A hold made before the period rolled is charged all the same, but its
// parts count in no period's use.
func TestSettleAcrossARoll(t *testing.T) {
	a := acct(10, 5, 0)
	h, _ := a.Reserve(k(7), 0) // 5 quota, 2 balance
	a.Roll(3, 4)
	st := a.Settle(h, false, k(7), false)
	if st.Charged != k(7) || st.Current || a.QUsed != 0 || a.Balance != k(8) || a.Reserved != 0 {
		t.Errorf("settlement %+v, account %+v", st, *a)
	}
}

// The low-balance event fires once when the balance goes below the
// threshold and re-arms at or above it.
func TestLowBalance(t *testing.T) {
	a := &Account{Balance: k(10), Threshold: k(5)}
	var got []string
	for _, amt := range []float64{-3, -3, -1, 4, -2} {
		_, evs, err := a.Grant(meter.EntryAdjustment, k(amt))
		if amt > 0 {
			_, evs, err = a.Grant(meter.EntryPurchase, k(amt))
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(len(evs)))
	}
	// 7: above; 4: fires; 3: already fired; 7: re-arms; 5: at, not below.
	if want := []string{"0", "1", "0", "0", "0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events per grant %v; want %v", got, want)
	}
}

// Pages are charged whole, class by class, within the budget.
func TestPagesWithin(t *testing.T) {
	n, cost, blocked := PagesWithin(k(5), []Pages{{Rate: k(2), Owed: 2}, {Rate: 0, Owed: 7}, {Rate: k(1), Owed: 3}})
	if !reflect.DeepEqual(n, []int64{2, 7, 1}) || cost != k(5) || !blocked {
		t.Errorf("pages %v cost %d blocked %v", n, cost, blocked)
	}
}

// A job's charge beyond its hold takes the hold's parts, then the rest
// from the pools as they were (the hold's balance part is not free
// balance a second time).
func TestChargeJobBeyondItsHold(t *testing.T) {
	a := acct(10, 0, 6)
	h, _ := a.Reserve(k(1.5), 0)
	if _, err := a.Reserve(k(7), 0); err != nil {
		t.Fatal(err)
	}
	ch, ok := a.ChargeJob(&h, k(6))
	if !ok || ch.Parts.B != k(3) || ch.Parts.O != k(3) || a.OUsed != k(3) || a.Balance != k(4) || a.Reserved != k(7) || h.Amount() != 0 {
		t.Errorf("charge %+v ok %v, account %+v", ch, ok, *a)
	}
}

// Invariants of random operations on the model alone: the ledger sums to
// the balance; Reserved is the balance and overage parts of the holds,
// QRes and ORes the quota and overage parts of this period's; no
// operation leaves a part negative.
func TestInvariants(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for run := 0; run < 200; run++ {
		a := &Account{Threshold: k(float64(rng.Intn(5)))}
		sum := int64(0)
		e, _, _ := a.Grant(meter.EntryPurchase, k(float64(rng.Intn(20)+1)))
		sum += e.Amount
		var holds []Hold
		for step := 0; step < 100; step++ {
			switch rng.Intn(6) {
			case 0:
				a.Roll(a.Period+1, a.Period+2)
			case 1:
				a.QuotaLimit, a.OverageCap = k(float64(rng.Intn(6))), k(float64(rng.Intn(4)))
			case 2, 3:
				if h, err := a.Reserve(k(float64(rng.Intn(8))), 0); err == nil {
					holds = append(holds, h)
				}
			case 4:
				if len(holds) > 0 {
					i := rng.Intn(len(holds))
					st := a.Settle(holds[i], false, k(float64(rng.Intn(9))), rng.Intn(4) == 0)
					if st.Entry != nil {
						sum += st.Entry.Amount
					}
					if p := st.Parts; p.Q < 0 || p.B < 0 || p.O < 0 || st.Short < 0 {
						t.Fatalf("run %d step %d: negative part %+v", run, step, st)
					}
					holds = append(holds[:i], holds[i+1:]...)
				}
			default:
				if e, _, err := a.Grant(meter.EntryPurchase, k(float64(rng.Intn(5)+1))); err == nil {
					sum += e.Amount
				}
			}
			var res, qres, ores int64
			for _, h := range holds {
				res += h.B + h.O
				if h.Per == a.Period {
					qres, ores = qres+h.Q, ores+h.O
				}
			}
			if sum != a.Balance || res != a.Reserved || qres != a.QRes || ores != a.ORes {
				t.Fatalf("run %d step %d: ledger %d reserved %d/%d/%d; account %+v", run, step, sum, res, qres, ores, *a)
			}
		}
	}
}
