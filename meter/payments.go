package meter

import (
	"context"
	"math/big"
	"slices"
	"strings"
	"time"
)

// EntryReversal is the ledger entry that takes back the credits of a
// refunded payment (negative; see PaymentStore.Reverse).
const EntryReversal = "reversal"

// Payment is a purchase paid outside the gateway (a Stripe Checkout
// session): Credits added to the account once per Key, whoever delivers
// it how many times.
type Payment struct {
	AccountID string
	// Key identifies the purchase (the Checkout session id): a second
	// Purchase with it answers the first one and adds nothing.
	Key string
	// PaymentIntentID is the provider's payment (pi_...), recorded on the
	// ledger entry and the key a refund finds the purchase by.
	PaymentIntentID string
	// ExternalID is the provider's event that made the purchase
	// (evt_...), recorded on the ledger entry.
	ExternalID string
	Credits    Credits
	// AmountPaid is what the customer paid, in the currency's smallest
	// unit: refunds take back credits in proportion to it.
	AmountPaid  int64
	Currency    string
	Description string
}

// Validate checks a payment.
func (p Payment) Validate() error {
	if err := ValidateAccountID(p.AccountID); err != nil {
		return err
	}
	switch {
	case p.Key == "" || p.PaymentIntentID == "":
		return invalid("a payment needs a key and a payment intent id")
	case p.Credits <= 0 || p.Credits > MaxCredits:
		return invalid("a payment's credits must be positive and at most the maximum")
	case p.AmountPaid < 0:
		return invalid("a payment's amount must not be negative")
	}
	for _, f := range []struct{ what, v string }{{"payment key", p.Key}, {"payment intent id", p.PaymentIntentID},
		{"external id", p.ExternalID}, {"currency", p.Currency}} {
		if err := checkLen(f.what, f.v, MaxIdemLen); err != nil {
			return err
		}
	}
	return checkLen("description", p.Description, MaxTextLen)
}

// PaymentRecord is what a store keeps of a Payment, forever (a purchase's
// ledger entry may be trimmed; its refunds still need the record).
type PaymentRecord struct {
	Key             string  `json:"key"`
	AccountID       string  `json:"account"`
	PaymentIntentID string  `json:"payment_intent_id"`
	ExternalID      string  `json:"external_id,omitempty"`
	Credits         Credits `json:"credits"`
	AmountPaid      int64   `json:"amount_paid"`
	Currency        string  `json:"currency,omitempty"`
	// EntryID is the purchase's ledger entry.
	EntryID string `json:"entry_id"`
	// Reversed is the credits taken back by refunds so far, and
	// AmountRefunded the refunded amount they answer (cumulative, as
	// Stripe's charge.amount_refunded).
	Reversed       Credits   `json:"reversed"`
	AmountRefunded int64     `json:"amount_refunded"`
	CreatedAt      time.Time `json:"created_at"`
}

// PurchaseResult is the outcome of PaymentStore.Purchase.
type PurchaseResult struct {
	Entry  LedgerEntry
	Record PaymentRecord
	// Replayed: the Key was recorded before; nothing was added now.
	Replayed bool
}

// ReversalTarget is the credits that a refund of refunded (cumulative) out
// of paid takes back of credits bought: in proportion, rounded down (a
// customer keeps the fraction of a milli-credit), all of them for a full
// refund. Exact for any int64 inputs.
func ReversalTarget(credits Credits, paid, refunded int64) Credits {
	if refunded <= 0 || credits <= 0 {
		return 0
	}
	if paid <= 0 || refunded >= paid {
		return credits
	}
	n := new(big.Int).Mul(big.NewInt(int64(credits)), big.NewInt(refunded))
	return Credits(n.Quo(n, big.NewInt(paid)).Int64())
}

// Reversal takes back the credits of a refunded payment up to Target
// (cumulative): a store adds only Target minus what was reversed before,
// so a refund delivered again, or an older cumulative amount arriving
// late, takes nothing more.
type Reversal struct {
	AccountID       string
	PaymentIntentID string
	Target          Credits
	AmountRefunded  int64
	ExternalID      string
	Description     string
}

// Validate checks a reversal.
func (r Reversal) Validate() error {
	if err := ValidateAccountID(r.AccountID); err != nil {
		return err
	}
	switch {
	case r.PaymentIntentID == "":
		return invalid("a reversal needs a payment intent id")
	case r.Target < 0 || r.Target > MaxCredits || r.AmountRefunded < 0:
		return invalid("a reversal's target and amount must not be negative")
	}
	for _, f := range []struct{ what, v string }{{"payment intent id", r.PaymentIntentID}, {"external id", r.ExternalID}} {
		if err := checkLen(f.what, f.v, MaxIdemLen); err != nil {
			return err
		}
	}
	return checkLen("description", r.Description, MaxTextLen)
}

// ReversalResult is the outcome of PaymentStore.Reverse: Entry is empty
// when there was nothing more to take back.
type ReversalResult struct {
	Entry  LedgerEntry
	Record PaymentRecord
	Taken  Credits
}

// Review item kinds, reasons and states.
const (
	ReviewPurchase = "purchase"
	ReviewRefund   = "refund"

	ReasonUnknownAccount  = "unknown_account"
	ReasonNoAccount       = "no_account"
	ReasonNoCreditMapping = "no_credit_mapping"
	ReasonUnknownPayment  = "unknown_payment"
	ReasonNoPaymentIntent = "no_payment_intent"

	ReviewPending   = "pending"
	ReviewApplied   = "applied"
	ReviewDismissed = "dismissed"
)

// ReviewItem is a payment event the gateway could not apply by itself
// (no known account, no credit mapping, a refund of an unknown payment),
// kept for an operator to apply to an account or dismiss.
type ReviewItem struct {
	// ID is "cs:"+session id for a purchase (both events of one session
	// make one item), "re:"+charge id+":"+amount refunded for a refund.
	ID              string    `json:"id"`
	Kind            string    `json:"kind"`
	Reason          string    `json:"reason"`
	EventID         string    `json:"event_id"`
	EventType       string    `json:"event_type"`
	SessionID       string    `json:"session_id,omitempty"`
	PaymentIntentID string    `json:"payment_intent_id,omitempty"`
	AccountHint     string    `json:"account_hint,omitempty"`
	Credits         Credits   `json:"credits,omitempty"`
	Amount          int64     `json:"amount"`
	AmountRefunded  int64     `json:"amount_refunded,omitempty"`
	Currency        string    `json:"currency,omitempty"`
	Status          string    `json:"status"`
	ReceivedAt      time.Time `json:"received_at"`
	ResolvedAt      time.Time `json:"resolved_at,omitzero"`
	AppliedTo       string    `json:"applied_to,omitempty"`
	Note            string    `json:"note,omitempty"`
}

// PaymentStore keeps payments made outside the gateway and the events
// held for review. Both stores implement it beside Store.
type PaymentStore interface {
	// Purchase adds p.Credits with a purchase entry carrying the payment
	// intent and event ids, and records the payment, in one atomic step,
	// once per p.Key and account; ECodeAccountNotFound.
	Purchase(ctx context.Context, p Payment) (PurchaseResult, error)
	// Payment finds the record of a payment intent; ECodeNotFound.
	Payment(ctx context.Context, paymentIntentID string) (PaymentRecord, error)
	// Reverse takes back what r.Target adds to the credits reversed
	// before, with a reversal entry, in one atomic step. The balance may
	// go below zero: the account then owes the credits it spent.
	// ECodeNotFound when the account has no such payment.
	Reverse(ctx context.Context, r Reversal) (ReversalResult, error)
	// HoldForReview keeps it (Status pending) unless an item with its ID
	// exists; it returns the stored item and whether it is new.
	HoldForReview(ctx context.Context, it ReviewItem) (ReviewItem, bool, error)
	// ReviewItem returns one held item; ECodeNotFound.
	ReviewItem(ctx context.Context, id string) (ReviewItem, error)
	// ReviewItems lists held items with the status ("" for all), oldest
	// first, at most limit.
	ReviewItems(ctx context.Context, status string, limit int) ([]ReviewItem, error)
	// ResolveReview moves a pending item to status (applied, to account,
	// or dismissed). Resolving it again the same way answers the item
	// (a retried apply); any other change is ECodeConflict. ECodeNotFound.
	ResolveReview(ctx context.Context, id, status, account, note string) (ReviewItem, error)
}

// ECodeReviewResolved: a review item was applied or dismissed already
// (409).
const ECodeReviewResolved = "review_resolved"

// SortReview orders items oldest first (then by id) and keeps at most
// limit (0 means 100, at most 1000).
func SortReview(items []ReviewItem, limit int) []ReviewItem {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	slices.SortFunc(items, func(a, b ReviewItem) int {
		if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(items) > limit {
		items = items[:limit]
	}
	return items
}

// Resolve moves a pending item to status at now: the rule both stores
// apply. done reports that it was resolved the same way before (nothing
// to write); another change of a resolved item is ECodeReviewResolved.
func Resolve(it *ReviewItem, status, account, note string, now time.Time) (done bool, err error) {
	switch status {
	case ReviewApplied:
		if err := ValidateAccountID(account); err != nil {
			return false, err
		}
	case ReviewDismissed:
		account = ""
	default:
		return false, invalid("a review item is resolved as %q or %q", ReviewApplied, ReviewDismissed)
	}
	if err := checkLen("note", note, MaxTextLen); err != nil {
		return false, err
	}
	if it.Status != ReviewPending {
		if it.Status == status && it.AppliedTo == account {
			return true, nil
		}
		return false, Errorf(ECodeReviewResolved, "review item %q is already %s", it.ID, it.Status)
	}
	it.Status, it.AppliedTo, it.Note, it.ResolvedAt = status, account, note, now
	return false, nil
}

// ECodeInvalidSignature: a payment provider's event whose signature does
// not verify or whose timestamp is outside the tolerance (400).
const ECodeInvalidSignature = "invalid_signature"
