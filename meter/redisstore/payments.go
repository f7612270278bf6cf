package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// Payments (meter.PaymentStore). Each account has a payments hash in its
// slot (see payment_purchase.lua), written with the purchase in one
// script. Two keys of their own slots name no account:
//
//	<prefix>:payment_intents  hash: payment intent -> account, written
//	                          after the purchase (every time it is
//	                          applied, replays included)
//	<prefix>:payment_review   hash: item id -> JSON (meter.ReviewItem)
var (
	paymentPurchaseScript = newScript("payment_purchase.lua")
	paymentReverseScript  = newScript("payment_reverse.lua")
)

func (s *Store) paymentsKey(id string) string   { return s.prefix + ":{" + id + "}:payments" }
func (s *Store) paymentIntentsKey() string      { return s.prefix + ":payment_intents" }
func (s *Store) paymentReviewKey() string       { return s.prefix + ":payment_review" }
func (s *Store) paymentKeys(id string) []string { return append(s.accountKeys(id), s.paymentsKey(id)) }

// paymentFields is the immutable part of a payment's record, the JSON
// the script stores as it is.
type paymentFields struct {
	PaymentIntentID string `json:"pi"`
	ExternalID      string `json:"x,omitempty"`
	Credits         int64  `json:"c"`
	AmountPaid      int64  `json:"a"`
	Currency        string `json:"cu,omitempty"`
}

// Purchase adds a payment's credits once per key (one script), then
// indexes its payment intent. An index write that fails fails the call:
// the caller's retry replays the purchase and writes it again.
func (s *Store) Purchase(ctx context.Context, p meter.Payment) (meter.PurchaseResult, error) {
	raw, err := json.Marshal(paymentFields{PaymentIntentID: p.PaymentIntentID, ExternalID: p.ExternalID,
		Credits: int64(p.Credits), AmountPaid: p.AmountPaid, Currency: p.Currency})
	if err != nil {
		return meter.PurchaseResult{}, err
	}
	r, err := s.runKeys(ctx, paymentPurchaseScript, p.AccountID, s.paymentKeys(p.AccountID),
		p.Key, int64(p.Credits), p.Description, p.PaymentIntentID, p.ExternalID, string(raw))
	if err != nil {
		return meter.PurchaseResult{}, err
	}
	out := meter.PurchaseResult{Replayed: r.intOf("replayed") == 1}
	if r.intOf("events") > 0 {
		s.indexEvents(ctx, p.AccountID)
	}
	if err := r.check(); err != nil {
		return out, err
	}
	if out.Replayed {
		if out.Record, err = s.paymentRecord(ctx, p.AccountID, p.Key); err != nil {
			return out, err
		}
	} else {
		out.Record = meter.PaymentRecord{Key: p.Key, AccountID: p.AccountID, PaymentIntentID: p.PaymentIntentID,
			ExternalID: p.ExternalID, Credits: p.Credits, AmountPaid: p.AmountPaid, Currency: p.Currency,
			EntryID: r.strOf("entry_id"), CreatedAt: msTime(r.intOf("created_ms"))}
	}
	out.Entry = meter.LedgerEntry{ID: r.strOf("entry_id"), AccountID: p.AccountID, Type: meter.EntryPurchase,
		Amount: out.Record.Credits, BalanceAfter: meter.Credits(r.intOf("balance_after")), Description: p.Description,
		PaymentIntentID: out.Record.PaymentIntentID, ExternalID: out.Record.ExternalID, CreatedAt: entryTime(r.strOf("entry_id"))}
	if err := s.c.HSet(ctx, s.paymentIntentsKey(), out.Record.PaymentIntentID, p.AccountID).Err(); err != nil {
		return out, storeErr(err)
	}
	return out, nil
}

// paymentRecord reads the record of an account's payment key; ECodeNotFound.
func (s *Store) paymentRecord(ctx context.Context, acct, key string) (meter.PaymentRecord, error) {
	v, err := s.c.HMGet(ctx, s.paymentsKey(acct), "p:"+key, "e:"+key, "c:"+key, "r:"+key, "x:"+key).Result()
	if err != nil {
		return meter.PaymentRecord{}, storeErr(err)
	}
	str := func(i int) string { x, _ := v[i].(string); return x }
	if str(0) == "" {
		return meter.PaymentRecord{}, meter.Errorf(meter.ECodeNotFound, "account %q has no payment %q", acct, key)
	}
	var f paymentFields
	if err := json.Unmarshal([]byte(str(0)), &f); err != nil {
		return meter.PaymentRecord{}, err
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	return meter.PaymentRecord{Key: key, AccountID: acct, PaymentIntentID: f.PaymentIntentID, ExternalID: f.ExternalID,
		Credits: meter.Credits(f.Credits), AmountPaid: f.AmountPaid, Currency: f.Currency, EntryID: str(1), CreatedAt: msTime(num(2)),
		Reversed: meter.Credits(num(3)), AmountRefunded: num(4)}, nil
}

// Payment finds a payment intent's record.
func (s *Store) Payment(ctx context.Context, pi string) (meter.PaymentRecord, error) {
	acct, err := s.c.HGet(ctx, s.paymentIntentsKey(), pi).Result()
	if errors.Is(err, redis.Nil) {
		return meter.PaymentRecord{}, meter.Errorf(meter.ECodeNotFound, "no payment %q", pi)
	}
	if err != nil {
		return meter.PaymentRecord{}, storeErr(err)
	}
	key, err := s.c.HGet(ctx, s.paymentsKey(acct), "i:"+pi).Result()
	if errors.Is(err, redis.Nil) {
		return meter.PaymentRecord{}, meter.Errorf(meter.ECodeNotFound, "no payment %q", pi)
	}
	if err != nil {
		return meter.PaymentRecord{}, storeErr(err)
	}
	return s.paymentRecord(ctx, acct, key)
}

// Reverse takes back what r.Target adds to the credits reversed before,
// in one script. The balance may go below zero (see meter.PaymentStore).
func (s *Store) Reverse(ctx context.Context, rv meter.Reversal) (meter.ReversalResult, error) {
	r, err := s.runKeys(ctx, paymentReverseScript, rv.AccountID, s.paymentKeys(rv.AccountID),
		rv.PaymentIntentID, int64(rv.Target), rv.AmountRefunded, rv.Description, rv.ExternalID)
	if err != nil {
		return meter.ReversalResult{}, err
	}
	if r.intOf("events") > 0 {
		s.indexEvents(ctx, rv.AccountID)
	}
	var out meter.ReversalResult
	out.Taken = meter.Credits(r.intOf("taken"))
	if id := r.strOf("entry_id"); id != "" {
		out.Entry = meter.LedgerEntry{ID: id, AccountID: rv.AccountID, Type: meter.EntryReversal, Amount: -out.Taken,
			BalanceAfter: meter.Credits(r.intOf("balance_after")), Description: rv.Description, PaymentIntentID: rv.PaymentIntentID,
			ExternalID: rv.ExternalID, Shortfall: meter.Credits(r.intOf("shortfall")), CreatedAt: entryTime(id)}
	}
	if err := r.check(); err != nil {
		return out, err
	}
	out.Record, err = s.paymentRecord(ctx, rv.AccountID, r.strOf("key"))
	return out, err
}

// HoldForReview keeps an item unless one with its id exists (HSETNX).
func (s *Store) HoldForReview(ctx context.Context, it meter.ReviewItem) (meter.ReviewItem, bool, error) {
	if it.ID == "" || len(it.ID) > meter.MaxIdemLen {
		return it, false, meter.Errorf(meter.ECodeInvalid, "a review item needs an id of at most %d bytes", meter.MaxIdemLen)
	}
	now, err := s.c.Time(ctx).Result()
	if err != nil {
		return it, false, storeErr(err)
	}
	it.Status, it.ReceivedAt = meter.ReviewPending, now.UTC().Truncate(1e6)
	raw, err := json.Marshal(it)
	if err != nil {
		return it, false, err
	}
	created, err := s.c.HSetNX(ctx, s.paymentReviewKey(), it.ID, raw).Result()
	if err != nil || created {
		return it, created, storeErr0(err)
	}
	got, err := s.reviewItem(ctx, it.ID)
	return got, false, err
}

// ReviewItem returns one held item.
func (s *Store) ReviewItem(ctx context.Context, id string) (meter.ReviewItem, error) {
	return s.reviewItem(ctx, id)
}

func (s *Store) reviewItem(ctx context.Context, id string) (meter.ReviewItem, error) {
	var it meter.ReviewItem
	raw, err := s.c.HGet(ctx, s.paymentReviewKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return it, meter.Errorf(meter.ECodeNotFound, "no review item %q", id)
	}
	if err != nil {
		return it, storeErr(err)
	}
	return it, json.Unmarshal([]byte(raw), &it)
}

// ReviewItems lists held items, oldest first. The queue holds what an
// operator has to look at: it is read whole.
func (s *Store) ReviewItems(ctx context.Context, status string, limit int) ([]meter.ReviewItem, error) {
	all, err := s.c.HVals(ctx, s.paymentReviewKey()).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	out := []meter.ReviewItem{}
	for _, raw := range all {
		var it meter.ReviewItem
		if err := json.Unmarshal([]byte(raw), &it); err != nil {
			return nil, err
		}
		if status == "" || it.Status == status {
			out = append(out, it)
		}
	}
	return meter.SortReview(out, limit), nil
}

// ResolveReview applies or dismisses a pending item: an optimistic
// transaction on the queue's hash, so two operators resolve it once.
func (s *Store) ResolveReview(ctx context.Context, id, status, account, note string) (meter.ReviewItem, error) {
	var it meter.ReviewItem
	key := s.paymentReviewKey()
	for range 10 {
		err := s.c.Watch(ctx, func(tx *redis.Tx) error {
			var err error
			if it, err = s.reviewItem(ctx, id); err != nil {
				return err
			}
			now, err := tx.Time(ctx).Result()
			if err != nil {
				return err
			}
			done, err := meter.Resolve(&it, status, account, note, now.UTC().Truncate(1e6))
			if err != nil || done {
				return err
			}
			raw, err := json.Marshal(it)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return p.HSet(ctx, key, id, raw).Err() })
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			var me *meter.Error
			if err != nil && !errors.As(err, &me) {
				err = storeErr(err)
			}
			return it, err
		}
	}
	return it, meter.Unavailable(errors.New("redisstore: review item changed under ten attempts"))
}

// storeErr0 is storeErr that keeps nil.
func storeErr0(err error) error {
	if err == nil {
		return nil
	}
	return storeErr(err)
}

var _ meter.PaymentStore = (*Store)(nil)
