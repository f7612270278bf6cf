package ledger

import (
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// grantsAcct has a quota of 5, a paid balance of 10, an overage cap of 3
// and three grants: a (4, expires at 100), b (2, priority 1, at 200) and
// c (3, at 50): spent b, c, a.
func grantsAcct(t *testing.T) *Account {
	t.Helper()
	a := acct(10, 5, 3)
	for _, l := range []Lot{{ID: "a", Granted: k(4), Expires: 100, Created: 1}, {ID: "b", Granted: k(2), Priority: 1, Expires: 200, Created: 2},
		{ID: "c", Granted: k(3), Expires: 50, Created: 3}} {
		e, _, err := a.AddLot(l)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != meter.EntryGrant || e.Amount != l.Granted || e.BalanceAfter != a.Balance {
			t.Fatalf("grant entry %+v", e)
		}
	}
	if a.Balance != k(19) {
		t.Fatalf("balance %d, want 19 credits (10 paid + 9 granted)", a.Balance)
	}
	return a
}

func lefts(a *Account) map[string][2]int64 {
	m := map[string][2]int64{}
	for _, l := range a.Lots {
		m[l.ID] = [2]int64{l.Left, l.Held}
	}
	return m
}

// A charge takes the quota, then the grants by priority, soonest expiry,
// age, then the paid balance, then the overage; the usage entry names
// each grant's part and its amount is all that left the balance.
func TestLotsSpendingOrder(t *testing.T) {
	a := grantsAcct(t)
	h, err := a.Reserve(k(7), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Hold{Q: k(5), G: []LotPart{{"b", k(2)}}, Per: 1}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("hold %+v, want %+v", h, want)
	}
	h2, err := a.Reserve(k(18), 0)
	if err != nil {
		t.Fatal(err)
	}
	want = Hold{G: []LotPart{{"c", k(3)}, {"a", k(4)}}, B: k(10), O: k(1), Per: 1}
	if !reflect.DeepEqual(h2, want) {
		t.Fatalf("hold %+v, want %+v", h2, want)
	}
	if a.Available() != k(2) || a.Reserved != k(20) {
		t.Fatalf("available %d reserved %d", a.Available(), a.Reserved)
	}
	st := a.Settle(h2, false, k(16), false) // 16 of 18: c 3, a 4, balance 9
	e := st.Entry
	if e.Amount != -k(16) || e.Quota != 0 || e.Overage != 0 || !reflect.DeepEqual(e.Lots, []LotPart{{"c", k(3)}, {"a", k(4)}}) {
		t.Fatalf("entry %+v", e)
	}
	if a.Balance != k(3) || a.Reserved != k(2) {
		t.Fatalf("balance %d reserved %d", a.Balance, a.Reserved)
	}
	a.Release(h) // b's 2 back
	if got := lefts(a); got["b"] != [2]int64{k(2), 0} || got["a"] != [2]int64{0, 0} {
		t.Fatalf("lots %v", got)
	}
	// 3 in the balance: b's 2 and 1 paid.
	if _, ga, room, _ := a.Pools(); ga != k(2) || room != k(1) {
		t.Fatalf("grants %d paid room %d", ga, room)
	}
}

// At its expiry a grant's free part leaves with an expiration entry; a
// hold keeps what it took until it settles or releases, and what it
// releases expires at the next EndLots. An expired grant is never spent.
func TestLotsExpire(t *testing.T) {
	a := grantsAcct(t)
	h, err := a.Reserve(k(5+2+2), 0) // quota 5, b 2, c 2 of 3
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := a.EndLots(49); es != nil {
		t.Fatalf("before the expiry: %+v", es)
	}
	es, _ := a.EndLots(50) // c: 1 free leaves, 2 held stay
	want := []Entry{{Type: meter.EntryExpiration, Amount: -k(1), BalanceAfter: k(18), Lots: []LotPart{{"c", k(1)}}}}
	if !reflect.DeepEqual(es, want) {
		t.Fatalf("expiry %+v, want %+v", es, want)
	}
	if h := a.Split(k(7)); !reflect.DeepEqual(h.G, []LotPart{{"a", k(4)}}) {
		t.Fatalf("an expired grant was spent: %+v", h)
	}
	st := a.Settle(h, false, k(8), false) // c's last 1 of 2 released
	if !reflect.DeepEqual(st.Entry.Lots, []LotPart{{"b", k(2)}, {"c", k(1)}}) || st.Entry.Amount != -k(3) {
		t.Fatalf("settle entry %+v", st.Entry)
	}
	es, _ = a.EndLots(51)
	if len(es) != 1 || es[0].Amount != -k(1) || es[0].BalanceAfter != k(14) || a.lot("c") != nil {
		t.Fatalf("released part of an expired grant: %+v, lots %v", es, lefts(a))
	}
	if a.Balance != k(14) { // 10 paid + a 4
		t.Fatalf("balance %d", a.Balance)
	}
}

// A refund gives back the paid part first, then each grant's part to its
// grant while it is active; an ended grant's part gives nothing.
func TestLotsRefund(t *testing.T) {
	a := grantsAcct(t)
	a.QuotaLimit = 0
	h, _ := a.Reserve(k(12), 0) // b 2, c 3, a 4, paid 3
	st := a.Settle(h, false, k(12), false)
	took := -st.Entry.Amount - k(9)
	if took != k(3) {
		t.Fatalf("paid part %d", took)
	}
	a.EndLots(50) // c has expired
	e, _, err := a.Refund("1", took, st.Entry.Lots, 0)
	if err != nil {
		t.Fatal(err)
	}
	if e.Amount != k(9) || !reflect.DeepEqual(e.Lots, []LotPart{{"b", k(2)}, {"a", k(4)}}) {
		t.Fatalf("refund %+v", e)
	}
	if got := lefts(a); got["b"] != [2]int64{k(2), 0} || got["a"] != [2]int64{k(4), 0} || a.Balance != k(16) {
		t.Fatalf("lots %v balance %d", got, a.Balance)
	}
	a.EndLots(200)
	if _, _, err := a.Refund("1", 0, []LotPart{{"b", 1}}, 0); meter.ErrorCode(err) != meter.ECodeRefundNotAllowed {
		t.Fatalf("refund to an expired grant only: %v", err)
	}
}

// Void takes what is free now; what a hold releases later leaves then,
// as grant_void. Grant credits never pay a debt.
func TestLotsVoidAndDebt(t *testing.T) {
	a := grantsAcct(t)
	a.QuotaLimit = 0
	h, _ := a.Reserve(k(1), 0) // b 1
	es, _, err := a.VoidLot("b")
	if err != nil || len(es) != 1 || es[0].Type != meter.EntryGrantVoid || es[0].Amount != -k(1) {
		t.Fatalf("void %+v %v", es, err)
	}
	if _, _, err := a.VoidLot("b"); meter.ErrorCode(err) != meter.ECodeGrantNotFound {
		t.Fatalf("void twice: %v", err)
	}
	a.Release(h)
	es, _ = a.EndLots(1)
	if len(es) != 1 || es[0].Type != meter.EntryGrantVoid || a.lot("b") != nil || a.Balance != k(17) {
		t.Fatalf("after the release %+v balance %d", es, a.Balance)
	}
	a.Balance -= k(10 + 3 + 1) // paid balance -4 beyond the cap of 3
	if a.Owes() != k(1) || a.Available() != 0 {
		t.Fatalf("owes %d available %d: grants must not pay a debt", a.Owes(), a.Available())
	}
}

// A job's charge takes its hold's grant parts first, then the pools in
// order.
func TestLotsChargeJob(t *testing.T) {
	a := grantsAcct(t)
	a.QuotaLimit = 0
	h := a.HoldAll(k(4)) // b 2, c 2
	ch, ok := a.ChargeJob(&h, k(3))
	if !ok || !reflect.DeepEqual(ch.Parts.G, []LotPart{{"b", k(2)}, {"c", k(1)}}) || ch.Entry.Amount != -k(3) {
		t.Fatalf("charge %+v", ch)
	}
	if !reflect.DeepEqual(h.G, []LotPart{{"c", k(1)}}) || a.Reserved != k(1) || a.Balance != k(16) {
		t.Fatalf("hold left %+v reserved %d balance %d", h, a.Reserved, a.Balance)
	}
}

// A negative adjustment takes paid credits only, and a reversal's
// shortfall is what the paid balance cannot give: grant credits pay
// neither.
func TestLotsNotPaid(t *testing.T) {
	a := grantsAcct(t) // paid 10, grants 9
	if _, _, err := a.Grant(meter.EntryAdjustment, -k(11)); meter.ErrorCode(err) != meter.ECodeInsufficientCredits {
		t.Fatalf("an adjustment took grant credits: %v", err)
	}
	if _, _, err := a.Grant(meter.EntryAdjustment, -k(10)); err != nil || a.Balance != k(9) {
		t.Fatalf("adjustment of the paid 10: %v, balance %d", err, a.Balance)
	}
	e, _ := a.Reverse(k(3))
	if e.Shortfall != k(3) || a.Owes() != 0 { // the cap of 3 covers it
		t.Fatalf("reversal %+v owes %d", e, a.Owes())
	}
	e, _ = a.Reverse(k(1))
	if e.Shortfall != k(1) || a.Owes() != k(1) || a.Available() != 0 {
		t.Fatalf("reversal %+v owes %d available %d", e, a.Owes(), a.Available())
	}
}
