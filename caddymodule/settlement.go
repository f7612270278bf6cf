package caddymodule

import (
	"context"
	"net/http"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

// settlement is how a live request holds its price before the upstream
// and settles it once the upstream's status is known. Handler.reserve
// picks one per request (settlementFor); nothing after it asks which.
type settlement interface {
	// hold holds what rq costs and sets rq.res; it returns the amount
	// asked for (the reserve span's cost).
	hold(ctx context.Context, rq *request, id identity, period meter.Period, body *usage.Body) (meter.Credits, error)
	// settle charges or releases the hold once the upstream's status is
	// known, and writes the money headers into hdr. It sets rq.outcome
	// and returns what was charged.
	settle(rq *request, status int, hdr http.Header, out pricing.Response) (meter.Credits, error)
	// readsAnswer says whether a 2xx answer is read whole before it is
	// settled (a job's id is in it).
	readsAnswer() bool
}

// settlementFor picks rq's settlement: a job submission route holds the
// job's estimate; a request priced 0 that the response cannot add to holds
// nothing (an uncapped route's estimate of 0, reserve input and no
// document, still settles what the upstream produced); any other holds
// its quote under a reservation.
func (h *Handler) settlementFor(rq *request) settlement {
	switch {
	case h.Job != nil:
		return jobSettlement{}
	case rq.quote.Total == 0 && !h.needs.Uncapped:
		return freeSettlement{}
	default:
		return reservation{}
	}
}

// reservation holds the quote under a reservation with a TTL, commits the
// final price on a 2xx to a client still there and voids it otherwise.
type reservation struct{}

func (reservation) readsAnswer() bool { return false }

func (reservation) hold(ctx context.Context, rq *request, id identity, period meter.Period, body *usage.Body) (meter.Credits, error) {
	h := rq.h
	idem := rq.r.Header.Get(HeaderIdempotencyKey)
	if idem != "" {
		var err error
		if rq.fp, err = fingerprint(id.key.AccountID, rq.r, rq.route, body); err != nil {
			return rq.quote.Total, err
		}
	}
	req := meter.ReserveRequest{
		AccountID:      id.key.AccountID,
		ID:             meter.NewID("rsv"),
		Amount:         rq.quote.Total,
		TTL:            time.Duration(h.ReservationTTL),
		IdempotencyKey: idem,
		Fingerprint:    rq.fp,
		Period:         period,
	}
	// When the route accepts a smaller hold (at_least), an account that
	// cannot hold the whole estimate holds all its pools give, if that
	// covers the smallest charge, in the same atomic step: a concurrent
	// request of the account then finds nothing left. The commit charges
	// the real count from the hold and the pools.
	if m := rq.quote.Minimum; m > 0 && m < req.Amount {
		req.Minimum = m
	}
	sctx := h.app.polledStoreCtx(ctx)
	res, err := h.app.store.Reserve(sctx, req)
	sctx.Stop()
	if err != nil {
		return req.Amount, err
	}
	rq.res = res
	if !res.Replayed {
		rq.r.Header.Set(UpstreamReservation, res.ID)
		rq.r.Header.Set(UpstreamAccount, id.key.AccountID)
	}
	return req.Amount, nil
}

// freeSettlement forwards a zero-cost request without a reservation,
// within the app's zero_cost_rate; it charges nothing.
type freeSettlement struct{}

func (freeSettlement) readsAnswer() bool { return false }

func (freeSettlement) hold(ctx context.Context, rq *request, id identity, _ meter.Period, _ *usage.Body) (meter.Credits, error) {
	h := rq.h
	if err := h.app.zeroCost.take(id.key.AccountID); err != nil {
		return 0, err
	}
	sctx, cancel := h.app.storeCtx(ctx)
	acct, err := h.app.store.Account(sctx, id.key.AccountID)
	cancel()
	if err != nil {
		return 0, err
	}
	rq.free = &acct
	rq.r.Header.Set(UpstreamAccount, id.key.AccountID)
	return 0, nil
}

func (freeSettlement) settle(rq *request, _ int, hdr http.Header, out pricing.Response) (meter.Credits, error) {
	rq.pricedHeaders(hdr, &out)
	rq.outcome = outcomeFree
	observeOutcome(outcomeFree, nil)
	if rq.h.Billing != nil {
		rq.merge = rq.h.Billing.chargeObject(0, rq.free.Available)
	}
	rq.h.money.set(hdr, 0, rq.free.Available)
	setQuotaHeaders(hdr, rq.free.Quota)
	return 0, nil
}
