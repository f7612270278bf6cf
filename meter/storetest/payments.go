package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// PaymentsStore is a store with payments, as both stores are.
type PaymentsStore interface {
	meter.Store
	meter.PaymentStore
}

// validatedPayments is a PaymentsStore behind the input checks, as the
// app uses it (meter.Validated, meter.ValidatedPayments).
type validatedPayments struct {
	meter.Store
	meter.PaymentStore
}

// RunPayments is the conformance suite of meter.PaymentStore. It runs
// through meter.Validated and meter.ValidatedPayments, as the app does.
func RunPayments(t *testing.T, newStore func(t *testing.T) PaymentsStore) {
	raw := newStore(t)
	var s PaymentsStore = validatedPayments{meter.Validated(raw), meter.ValidatedPayments(raw)}
	pay := func(id, key string, credits float64, paid int64) meter.Payment {
		return meter.Payment{AccountID: id, Key: key, PaymentIntentID: "pi_" + key, ExternalID: "evt_" + key,
			Credits: c(credits), AmountPaid: paid, Currency: "usd", Description: "Stripe purchase"}
	}
	t.Run("a purchase applies once per key", func(t *testing.T) {
		id := newAccount(t, s, 0)
		key := newID("cs")
		var wg sync.WaitGroup
		results := make([]meter.PurchaseResult, 8)
		errs := make([]error, 8)
		for i := range results {
			wg.Go(func() {
				p := pay(id, key, 100, 1000)
				p.ExternalID = newID("evt") // another event of the same session
				results[i], errs[i] = s.Purchase(ctx, p)
			})
		}
		wg.Wait()
		fresh := 0
		for i, r := range results {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if !r.Replayed {
				fresh++
			}
			if r.Entry.ID != results[0].Entry.ID || r.Record.EntryID != r.Entry.ID || r.Entry.Amount != c(100) ||
				r.Entry.PaymentIntentID != "pi_"+key || r.Record.Credits != c(100) || r.Record.AmountPaid != 1000 {
				t.Errorf("result %d: %+v", i, r)
			}
		}
		if fresh != 1 {
			t.Errorf("%d purchases applied, want 1", fresh)
		}
		expect(t, s, id, c(100), 0, entry{"purchase", c(100), c(100), false})
		es := oldestFirst(t, s, id)
		if es[0].PaymentIntentID != "pi_"+key || es[0].ExternalID == "" || es[0].Description != "Stripe purchase" {
			t.Errorf("entry %+v", es[0])
		}
		rec, err := s.Payment(ctx, "pi_"+key)
		if err != nil || rec.AccountID != id || rec.Key != key || rec.EntryID != es[0].ID || rec.Credits != c(100) ||
			rec.Currency != "usd" || rec.Reversed != 0 {
			t.Errorf("Payment: %+v, %v", rec, err)
		}
		a, _ := s.Account(ctx, id)
		if a.TotalPurchased != c(100) {
			t.Errorf("total purchased %s", a.TotalPurchased)
		}
	})
	t.Run("unknown account and unknown payment", func(t *testing.T) {
		_, err := s.Purchase(ctx, pay(newID("nobody"), newID("cs"), 1, 1))
		wantCode(t, err, meter.ECodeAccountNotFound)
		_, err = s.Payment(ctx, "pi_"+newID("none"))
		wantCode(t, err, meter.ECodeNotFound)
		id := newAccount(t, s, c(1))
		_, err = s.Reverse(ctx, meter.Reversal{AccountID: id, PaymentIntentID: "pi_none", Target: c(1)})
		wantCode(t, err, meter.ECodeNotFound)
		expect(t, s, id, c(1), 0, entry{"purchase", c(1), c(1), false})
	})
	t.Run("invalid payments", func(t *testing.T) {
		id := newAccount(t, s, 0)
		for _, p := range []meter.Payment{pay(id, "", 1, 1), pay(id, "k", 0, 1), pay(id, "k", -1, 1), pay(id, "k", 1, -1)} {
			_, err := s.Purchase(ctx, p)
			wantCode(t, err, meter.ECodeInvalid)
		}
		expect(t, s, id, 0, 0)
	})
	t.Run("partial then full refund reverse exactly, once per amount", func(t *testing.T) {
		id := newAccount(t, s, 0)
		key := newID("cs")
		if _, err := s.Purchase(ctx, pay(id, key, 100, 2000)); err != nil {
			t.Fatal(err)
		}
		rev := func(refunded int64) meter.ReversalResult {
			t.Helper()
			rec, err := s.Payment(ctx, "pi_"+key)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Reverse(ctx, meter.Reversal{AccountID: id, PaymentIntentID: "pi_" + key,
				Target: meter.ReversalTarget(rec.Credits, rec.AmountPaid, refunded), AmountRefunded: refunded,
				ExternalID: newID("evt"), Description: "refund"})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := rev(500); r.Taken != c(25) || r.Entry.Amount != -c(25) || r.Record.Reversed != c(25) ||
			r.Record.AmountRefunded != 500 || r.Entry.PaymentIntentID != "pi_"+key {
			t.Errorf("first partial: %+v", r)
		}
		if r := rev(500); r.Taken != 0 || r.Entry.ID != "" { // redelivered
			t.Errorf("again: %+v", r)
		}
		if r := rev(300); r.Taken != 0 { // an older cumulative amount, late
			t.Errorf("older: %+v", r)
		}
		if r := rev(2000); r.Taken != c(75) || r.Record.Reversed != c(100) {
			t.Errorf("full: %+v", r)
		}
		if r := rev(5000); r.Taken != 0 {
			t.Errorf("beyond: %+v", r)
		}
		expect(t, s, id, 0, 0, entry{"purchase", c(100), c(100), false},
			entry{"reversal", -c(25), c(75), false}, entry{"reversal", -c(75), 0, false})
		a, _ := s.Account(ctx, id)
		if a.TotalPurchased != 0 {
			t.Errorf("total purchased %s, want 0", a.TotalPurchased)
		}
	})
	t.Run("a reversal of spent credits takes the balance below zero", func(t *testing.T) {
		id := newAccount(t, s, 0)
		key := newID("cs")
		if _, err := s.Purchase(ctx, pay(id, key, 10, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: -c(8), Type: meter.EntryAdjustment}); err != nil {
			t.Fatal(err)
		}
		r, err := s.Reverse(ctx, meter.Reversal{AccountID: id, PaymentIntentID: "pi_" + key, Target: c(10), AmountRefunded: 1000})
		if err != nil || r.Taken != c(10) || r.Entry.BalanceAfter != -c(8) || r.Entry.Shortfall != c(8) {
			t.Fatalf("%+v, %v", r, err)
		}
		expect(t, s, id, -c(8), 0, entry{"purchase", c(10), c(10), false},
			entry{"adjustment", -c(8), c(2), false}, entry{"reversal", -c(10), -c(8), false})
		_, err = s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: newRID(), Amount: c(1), TTL: time.Minute})
		wantCode(t, err, meter.ECodeCreditsOwed)
		// A new purchase pays the debt first.
		if _, err := s.Purchase(ctx, pay(id, newID("cs"), 10, 1000)); err != nil {
			t.Fatal(err)
		}
		a, _ := s.Account(ctx, id)
		if a.Balance != c(2) {
			t.Errorf("balance after buying back %s, want 2", a.Balance)
		}
	})
	t.Run("review queue", func(t *testing.T) {
		idA, idB := newID("cs:rv"), newID("cs:rv")
		it, created, err := s.HoldForReview(ctx, meter.ReviewItem{ID: idA, Kind: meter.ReviewPurchase,
			Reason: meter.ReasonUnknownAccount, EventID: "evt_1", AccountHint: "ghost", Amount: 1000})
		if err != nil || !created || it.Status != meter.ReviewPending || it.ReceivedAt.IsZero() {
			t.Fatalf("%+v %v %v", it, created, err)
		}
		again, created, err := s.HoldForReview(ctx, meter.ReviewItem{ID: idA, Kind: meter.ReviewPurchase, EventID: "evt_2"})
		if err != nil || created || again.EventID != "evt_1" {
			t.Errorf("again: %+v %v %v", again, created, err)
		}
		if _, _, err := s.HoldForReview(ctx, meter.ReviewItem{ID: idB, Kind: meter.ReviewPurchase}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReviewItem(ctx, idA); err != nil || got.AccountHint != "ghost" || got.Amount != 1000 {
			t.Errorf("ReviewItem: %+v, %v", got, err)
		}
		_, err = s.ReviewItem(ctx, newID("none"))
		wantCode(t, err, meter.ECodeNotFound)
		items, err := s.ReviewItems(ctx, meter.ReviewPending, 1000)
		if err != nil || !hasItem(items, idA) || !hasItem(items, idB) {
			t.Fatalf("items %+v, %v", items, err)
		}
		got, err := s.ResolveReview(ctx, idA, meter.ReviewApplied, "acct-1", "paid by acct-1")
		if err != nil || got.Status != meter.ReviewApplied || got.AppliedTo != "acct-1" || got.ResolvedAt.IsZero() {
			t.Errorf("apply: %+v, %v", got, err)
		}
		if _, err := s.ResolveReview(ctx, idA, meter.ReviewApplied, "acct-1", ""); err != nil {
			t.Errorf("the same apply again: %v", err)
		}
		_, err = s.ResolveReview(ctx, idA, meter.ReviewApplied, "acct-2", "")
		wantCode(t, err, meter.ECodeReviewResolved)
		_, err = s.ResolveReview(ctx, idA, meter.ReviewDismissed, "", "")
		wantCode(t, err, meter.ECodeReviewResolved)
		if got, err := s.ResolveReview(ctx, idB, meter.ReviewDismissed, "", "spam"); err != nil || got.Status != meter.ReviewDismissed {
			t.Errorf("dismiss: %+v, %v", got, err)
		}
		_, err = s.ResolveReview(ctx, newID("none"), meter.ReviewDismissed, "", "")
		wantCode(t, err, meter.ECodeNotFound)
		_, err = s.ResolveReview(ctx, idB, "approved", "", "")
		wantCode(t, err, meter.ECodeInvalid)
		items, _ = s.ReviewItems(ctx, meter.ReviewPending, 1000)
		if hasItem(items, idA) || hasItem(items, idB) {
			t.Errorf("resolved items still pending: %+v", items)
		}
	})
}

func hasItem(items []meter.ReviewItem, id string) bool {
	for _, it := range items {
		if it.ID == id {
			return true
		}
	}
	return false
}

// BenchPurchase measures a purchase with its payment record (the step a
// paid Checkout session costs the store), each on a new key.
func BenchPurchase(b *testing.B, s PaymentsStore) {
	id := newID("bench")
	if _, err := s.CreateAccount(ctx, id, 0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		key := fmt.Sprintf("cs_%s_%d", id, i)
		if _, err := s.Purchase(ctx, meter.Payment{AccountID: id, Key: key, PaymentIntentID: "pi_" + key,
			Credits: c(1), AmountPaid: 100, Currency: "usd"}); err != nil {
			b.Fatal(err)
		}
	}
}
