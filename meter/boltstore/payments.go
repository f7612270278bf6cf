package boltstore

import (
	"context"
	"errors"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// Payments (meter.PaymentStore). An account's bucket gets, with its first
// payment,
//
//	payments/  "p:"+key -> the payment's record (JSON, meter.PaymentRecord);
//	           "i:"+payment intent -> key
//
// and two top-level buckets, created on first use, hold what names no
// account: "payment_intents" (payment intent -> account, written in the
// transaction of the purchase) and "payment_review" (item id -> JSON,
// meter.ReviewItem).
var (
	bPayments       = []byte("payments")
	bPaymentIntents = []byte("payment_intents")
	bPaymentReview  = []byte("payment_review")
)

// Purchase adds a payment's credits once per key, with the record of the
// payment and its intent's index, in one transaction.
func (s *Store) Purchase(ctx context.Context, p meter.Payment) (meter.PurchaseResult, error) {
	var out meter.PurchaseResult
	err := s.update(ctx, p.AccountID, func(o *op) error {
		if rec, err := o.payment([]byte("p:" + p.Key)); err != nil || rec != nil {
			if rec == nil {
				return err
			}
			out.Record, out.Replayed = *rec, true
			out.Entry, err = o.entryByID(rec.EntryID)
			return err
		}
		me, evs, err := o.a.Grant(meter.EntryPurchase, int64(p.Credits))
		if err != nil {
			return err
		}
		e := modelEntry(me)
		e.Description, e.PaymentIntent, e.ExternalID = p.Description, p.PaymentIntentID, p.ExternalID
		id, err := o.appendEntry(e)
		if err == nil {
			err = o.emit(evs)
		}
		if err != nil {
			return internalErr(err)
		}
		out.Entry = e.ledgerEntry(o.id, id)
		out.Record = meter.PaymentRecord{Key: p.Key, AccountID: o.id, PaymentIntentID: p.PaymentIntentID,
			ExternalID: p.ExternalID, Credits: p.Credits, AmountPaid: p.AmountPaid, Currency: p.Currency,
			EntryID: id.String(), CreatedAt: msTime(o.now)}
		if err := o.putPayment(&out.Record); err != nil {
			return internalErr(err)
		}
		idx, err := o.tx.CreateBucketIfNotExists(bPaymentIntents)
		if err == nil {
			err = idx.Put([]byte(p.PaymentIntentID), []byte(o.id))
		}
		return orInternal(err)
	})
	return out, err
}

// Payment finds a payment intent's record.
func (s *Store) Payment(ctx context.Context, pi string) (meter.PaymentRecord, error) {
	var out meter.PaymentRecord
	var acct []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bPaymentIntents); b != nil {
			acct = b.Get([]byte(pi))
		}
		return nil
	})
	if err != nil {
		return out, dbErr(err)
	}
	if acct == nil {
		return out, meter.Errorf(meter.ECodeNotFound, "no payment %q", pi)
	}
	err = s.view(ctx, string(acct), func(o *op) error {
		rec, err := o.paymentOfIntent(pi)
		if rec != nil {
			out = *rec
		}
		return err
	})
	return out, err
}

// Reverse takes back what r.Target adds to the credits reversed before.
// The balance may go below zero (see meter.PaymentStore).
func (s *Store) Reverse(ctx context.Context, r meter.Reversal) (meter.ReversalResult, error) {
	var out meter.ReversalResult
	err := s.update(ctx, r.AccountID, func(o *op) error {
		rec, err := o.paymentOfIntent(r.PaymentIntentID)
		if err != nil {
			return err
		}
		target := min(r.Target, rec.Credits)
		delta := int64(target - rec.Reversed)
		out.Record = *rec
		if delta <= 0 {
			return nil
		}
		me, evs := o.a.Reverse(delta)
		e := modelEntry(me)
		e.Description, e.PaymentIntent, e.ExternalID = r.Description, r.PaymentIntentID, r.ExternalID
		id, err := o.appendEntry(e)
		if err == nil {
			err = o.emit(evs)
		}
		if err != nil {
			return internalErr(err)
		}
		rec.Reversed = target
		rec.AmountRefunded = max(rec.AmountRefunded, r.AmountRefunded)
		out.Entry, out.Record, out.Taken = e.ledgerEntry(o.id, id), *rec, meter.Credits(delta)
		return orInternal(o.putPayment(rec))
	})
	return out, err
}

func (o *op) payment(k []byte) (*meter.PaymentRecord, error) {
	b := o.sub(bPayments)
	if b == nil {
		return nil, nil
	}
	raw := b.Get(k)
	if raw == nil {
		return nil, nil
	}
	rec := new(meter.PaymentRecord)
	if err := decodeJSON(raw, rec); err != nil {
		return nil, internalErr(err)
	}
	return rec, nil
}

func (o *op) paymentOfIntent(pi string) (*meter.PaymentRecord, error) {
	var key []byte
	if b := o.sub(bPayments); b != nil {
		key = b.Get([]byte("i:" + pi))
	}
	if key != nil {
		rec, err := o.payment(append([]byte("p:"), key...))
		if rec != nil || err != nil {
			return rec, err
		}
	}
	return nil, meter.Errorf(meter.ECodeNotFound, "account %q has no payment %q", o.id, pi)
}

func (o *op) putPayment(rec *meter.PaymentRecord) error {
	raw, err := encode(rec)
	if err != nil {
		return err
	}
	b, err := o.jobBucket(bPayments) // creates it, marks the op dirty
	if err == nil {
		err = b.Put([]byte("p:"+rec.Key), raw)
	}
	if err == nil {
		err = b.Put([]byte("i:"+rec.PaymentIntentID), []byte(rec.Key))
	}
	return err
}

// entryByID returns a ledger entry, or an empty one if it was trimmed.
func (o *op) entryByID(s string) (meter.LedgerEntry, error) {
	id, ok := parseLedgerID(s)
	if !ok {
		return meter.LedgerEntry{}, nil
	}
	e, err := o.getEntry(id)
	if err != nil || e == nil {
		return meter.LedgerEntry{ID: s, AccountID: o.id}, orInternal(err)
	}
	return e.ledgerEntry(o.id, id), nil
}

// HoldForReview keeps an item unless one with its id exists.
func (s *Store) HoldForReview(ctx context.Context, it meter.ReviewItem) (meter.ReviewItem, bool, error) {
	if err := ctx.Err(); err != nil {
		return it, false, meter.Unavailable(err)
	}
	if it.ID == "" || len(it.ID) > meter.MaxIdemLen {
		return it, false, meter.Errorf(meter.ECodeInvalid, "a review item needs an id of at most %d bytes", meter.MaxIdemLen)
	}
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bPaymentReview)
		if err != nil {
			return err
		}
		if raw := b.Get([]byte(it.ID)); raw != nil {
			return decodeJSON(raw, &it)
		}
		it.Status, it.ReceivedAt, created = meter.ReviewPending, msTime(s.now().UnixMilli()), true
		raw, err := encode(it)
		if err != nil {
			return err
		}
		return b.Put([]byte(it.ID), raw)
	})
	return it, created, storeErr(err)
}

// ReviewItem returns one held item.
func (s *Store) ReviewItem(ctx context.Context, id string) (meter.ReviewItem, error) {
	var it meter.ReviewItem
	if err := ctx.Err(); err != nil {
		return it, meter.Unavailable(err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		var raw []byte
		if b := tx.Bucket(bPaymentReview); b != nil {
			raw = b.Get([]byte(id))
		}
		if raw == nil {
			return meter.Errorf(meter.ECodeNotFound, "no review item %q", id)
		}
		return decodeJSON(raw, &it)
	})
	return it, storeErr(err)
}

// ReviewItems lists held items, oldest first.
func (s *Store) ReviewItems(ctx context.Context, status string, limit int) ([]meter.ReviewItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, meter.Unavailable(err)
	}
	out := []meter.ReviewItem{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPaymentReview)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, raw []byte) error {
			var it meter.ReviewItem
			if err := decodeJSON(raw, &it); err != nil {
				return err
			}
			if status == "" || it.Status == status {
				out = append(out, it)
			}
			return nil
		})
	})
	return meter.SortReview(out, limit), storeErr(err)
}

// ResolveReview applies or dismisses a pending item (see
// meter.PaymentStore).
func (s *Store) ResolveReview(ctx context.Context, id, status, account, note string) (meter.ReviewItem, error) {
	if err := ctx.Err(); err != nil {
		return meter.ReviewItem{}, meter.Unavailable(err)
	}
	var it meter.ReviewItem
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bPaymentReview)
		if err != nil {
			return err
		}
		raw := b.Get([]byte(id))
		if raw == nil {
			return meter.Errorf(meter.ECodeNotFound, "no review item %q", id)
		}
		if err := decodeJSON(raw, &it); err != nil {
			return err
		}
		done, err := meter.Resolve(&it, status, account, note, msTime(s.now().UnixMilli()))
		if err != nil || done {
			return err
		}
		raw, err = encode(it)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), raw)
	})
	return it, storeErr(err)
}

// storeErr passes domain errors and maps bbolt's to internal or
// unavailable ones.
func storeErr(err error) error {
	var me *meter.Error
	if err == nil || errors.As(err, &me) {
		return err
	}
	if e := dbErr(err); e != err {
		return e
	}
	return internalErr(err)
}

// orInternal is internalErr that keeps nil.
func orInternal(err error) error {
	if err == nil {
		return nil
	}
	return internalErr(err)
}

var _ meter.PaymentStore = (*Store)(nil)
