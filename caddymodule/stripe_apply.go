package caddymodule

import (
	"context"
	"strconv"
	"strings"

	"github.com/stripe/stripe-go/v82"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

// checkout turns a paid Checkout session into a purchase, once per
// session: checkout.session.completed and async_payment_succeeded of one
// session, and every redelivery of either, share its key.
func (s *Stripe) checkout(ctx context.Context, ev stripe.Event, cs *stripe.CheckoutSession) (map[string]any, error) {
	if cs.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid {
		// An asynchronous payment (bank debit) completes the session
		// unpaid; its async_payment_succeeded event comes later, paid.
		return result(stripeUnpaid, "session", cs.ID, "payment_status", string(cs.PaymentStatus)), nil
	}
	item := meter.ReviewItem{ID: "cs:" + cs.ID, Kind: meter.ReviewPurchase, EventID: ev.ID, EventType: string(ev.Type),
		SessionID: cs.ID, Amount: cs.AmountTotal, Currency: string(cs.Currency)}
	if cs.PaymentIntent != nil {
		item.PaymentIntentID = cs.PaymentIntent.ID
	}
	account := s.accountOf(cs)
	item.AccountHint = account
	credits, mapped := s.creditsOf(cs)
	if mapped {
		item.Credits = credits
	}
	switch {
	case account == "":
		item.Reason = meter.ReasonNoAccount
	case meter.ValidateAccountID(account) != nil:
		item.Reason = meter.ReasonUnknownAccount
	case !mapped:
		item.Reason = meter.ReasonNoCreditMapping
	case item.PaymentIntentID == "":
		// A subscription's session pays an invoice, not a payment intent:
		// nothing a refund could find it by.
		item.Reason = meter.ReasonNoPaymentIntent
	}
	if item.Reason != "" {
		return s.hold(ctx, item)
	}
	res, err := s.store.Purchase(ctx, meter.Payment{AccountID: account, Key: cs.ID, PaymentIntentID: item.PaymentIntentID,
		ExternalID: ev.ID, Credits: credits, AmountPaid: cs.AmountTotal, Currency: item.Currency,
		Description: "Stripe Checkout " + cs.ID})
	if meter.ErrorCode(err) == meter.ECodeAccountNotFound {
		item.Reason = meter.ReasonUnknownAccount
		return s.hold(ctx, item)
	}
	if err != nil {
		return nil, err
	}
	outcome := stripeApplied
	if res.Replayed {
		outcome = stripeReplayed
	}
	s.logger.Info("stripe purchase", zap.String("account", account), zap.String("session", cs.ID),
		zap.String("event", ev.ID), zap.String("credits", credits.String()), zap.Bool("replayed", res.Replayed))
	return result(outcome, "account", account, "entry", res.Entry.ID, "credits", credits), nil
}

// accountOf reads the account from the configured sources, in order.
func (s *Stripe) accountOf(cs *stripe.CheckoutSession) string {
	for _, src := range s.Account {
		v := cs.ClientReferenceID
		if k, ok := strings.CutPrefix(src, "metadata."); ok {
			v = cs.Metadata[k]
		}
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// creditsOf reads the credits from the session's metadata (when
// configured and present), else from the amount table. A session event
// carries no line items (they need an API call to expand), so the table
// is keyed on what the event does carry: amount_total and currency.
func (s *Stripe) creditsOf(cs *stripe.CheckoutSession) (meter.Credits, bool) {
	if s.CreditsMetadata != "" {
		if v, ok := cs.Metadata[s.CreditsMetadata]; ok {
			c, err := meter.ParseCredits(v)
			return c, err == nil && c > 0 && c <= meter.MaxCredits
		}
	}
	for _, a := range s.Amounts {
		if a.Amount == cs.AmountTotal && a.Currency == string(cs.Currency) {
			return a.Credits, true
		}
	}
	return 0, false
}

// refund takes back, in proportion to the amount refunded, the credits
// of the payment the charge belongs to.
func (s *Stripe) refund(ctx context.Context, ev stripe.Event, ch *stripe.Charge) (map[string]any, error) {
	if ch.PaymentIntent == nil || ch.PaymentIntent.ID == "" {
		return result(stripeIgnored, "reason", "the charge has no payment intent"), nil
	}
	pi := ch.PaymentIntent.ID
	rec, err := s.store.Payment(ctx, pi)
	if meter.ErrorCode(err) == meter.ECodeNotFound {
		return s.hold(ctx, meter.ReviewItem{ID: "re:" + ch.ID + ":" + strconv.FormatInt(ch.AmountRefunded, 10),
			Kind: meter.ReviewRefund, Reason: meter.ReasonUnknownPayment, EventID: ev.ID, EventType: string(ev.Type),
			PaymentIntentID: pi, Amount: ch.Amount, AmountRefunded: ch.AmountRefunded, Currency: string(ch.Currency)})
	}
	if err != nil {
		return nil, err
	}
	rv, err := reversePayment(ctx, s.store, rec, ch.Amount, ch.AmountRefunded, ev.ID)
	if err != nil {
		return nil, err
	}
	outcome := stripeApplied
	if rv.Taken == 0 {
		outcome = stripeReplayed
	}
	return result(outcome, "account", rec.AccountID, "entry", rv.Entry.ID, "reversed", rv.Taken,
		"reversed_total", rv.Record.Reversed), nil
}

// reversePayment takes back what refunded (cumulative) of the charged
// amount bought of the record's credits and has not been taken back. The
// share is taken on the charge's own amount (same currency as its
// refunds by construction), the session's amount_total when the charge
// has none.
func reversePayment(ctx context.Context, ps meter.PaymentStore, rec meter.PaymentRecord, charged, refunded int64,
	eventID string) (meter.ReversalResult, error) {
	if charged <= 0 {
		charged = rec.AmountPaid
	}
	return ps.Reverse(ctx, meter.Reversal{AccountID: rec.AccountID, PaymentIntentID: rec.PaymentIntentID,
		Target: meter.ReversalTarget(rec.Credits, charged, refunded), AmountRefunded: refunded,
		ExternalID: eventID, Description: "Stripe refund of " + rec.PaymentIntentID})
}

// hold keeps an event for review and answers 200, so that Stripe stops
// retrying it: an operator applies or dismisses it.
func (s *Stripe) hold(ctx context.Context, it meter.ReviewItem) (map[string]any, error) {
	got, created, err := s.store.HoldForReview(ctx, it)
	if err != nil {
		return nil, err
	}
	if created {
		s.logger.Warn("stripe event held for review", zap.String("item", it.ID), zap.String("reason", it.Reason),
			zap.String("event", it.EventID))
	}
	return result(stripeHeld, "review", got.ID, "reason", got.Reason, "status", got.Status), nil
}
