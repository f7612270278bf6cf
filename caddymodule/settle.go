package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
)

// request is the metering state of one request.
type request struct {
	h     *Handler
	key   meter.Key
	r     *http.Request
	route string
	reqID string
	// traced: the request has a span (see startSpan).
	traced bool
	in     pricing.Input
	quote  pricing.Quote
	// outcome is outcomeCharged or outcomeVoided once settled.
	outcome string
	// chargeQuote makes settle charge the quote instead of the final price
	// (the response could not be measured).
	chargeQuote bool
	res         meter.Reservation
	// job is the job a submission created (job routes).
	job *meter.Job
	// body is the upstream's 2xx answer when it was buffered and small
	// enough to read (job ids, billing objects); merge is the billing
	// object to add to it.
	body  []byte
	merge object
	// fp is the fingerprint of a request with an Idempotency-Key; stored
	// is the response kept with its commit (see settleWriter).
	fp     string
	stored []byte
	// free is the account of a zero-cost request, forwarded without a
	// reservation (see freeSettlement).
	free *meter.Account
	// settler holds and settles the price (see settlement).
	settler settlement
	// dry: a dry run (X-Meter-Dry-Run), priced and answered, never
	// forwarded; testUsed: a test key's requests today (see admit).
	dry      bool
	testUsed int
}

// requestID is Caddy's request UUID (the one its access log shows). It is
// read once, up front: the placeholder is created lazily in a map that
// reverse_proxy reads from its own goroutines.
func requestID(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// GetString, not ReplaceAll: no placeholder to parse.
		id, _ := repl.GetString("http.request.uuid")
		return id
	}
	return ""
}

// settle settles rq by its settlement strategy once the upstream's
// status is known, before the response headers leave (step 6). The money
// headers are the gateway's alone, on every path: the upstream's go first.
// out is what the rules priced on the response read: the output pages,
// counted by the caller, and hdr's priced headers (removed from hdr).
func (rq *request) settle(status int, hdr http.Header, out pricing.Response) {
	rq.h.money.strip(hdr)
	_, span := startSpan(rq.r.Context(), rq.traced, spanSettle, func() []attribute.KeyValue {
		return []attribute.KeyValue{attrAccount.String(rq.key.AccountID)}
	})
	charged, err := rq.settler.settle(rq, status, hdr, out)
	if span.IsRecording() {
		span.SetAttributes(attrOutcome.String(rq.outcome), attrCharged.String(charged.String()))
	}
	endSpan(span, err)
}

// pricedHeaders moves the response headers the rules price from hdr
// into out.
func (rq *request) pricedHeaders(hdr http.Header, out *pricing.Response) {
	if len(rq.h.needs.ResponseHeaders) == 0 {
		return
	}
	out.Header = make(http.Header, len(rq.h.needs.ResponseHeaders))
	for _, name := range rq.h.needs.ResponseHeaders {
		if v := hdr.Values(name); len(v) > 0 {
			out.Header[http.CanonicalHeaderKey(name)] = v
		}
		hdr.Del(name)
	}
}

// settle commits the reservation when the upstream succeeded (2xx, and
// the client is still there to receive it) and voids it otherwise.
func (reservation) settle(rq *request, status int, hdr http.Header, out pricing.Response) (meter.Credits, error) {
	ok := status >= 200 && status < 300 && rq.r.Context().Err() == nil
	log := rq.logger(status)
	rq.pricedHeaders(hdr, &out)
	var (
		st  meter.Settlement
		err error
	)
	if ok {
		final, ferr := rq.h.rules.Final(rq.in, out)
		if rq.chargeQuote {
			final, ferr = rq.quote, nil
		}
		if ferr != nil {
			// The upstream did the work; what it reported is unusable. Charge
			// what was quoted and reserved, and say so.
			log.Warn("pricing the response failed; charging the quote", zap.Error(ferr))
			final = rq.quote
		}
		if final.Total > rq.res.Amount && !rq.h.needs.Uncapped {
			log.Warn("final price exceeds the reservation; charging the reserved amount",
				zap.Stringer("final", final.Total), zap.Stringer("reserved", rq.res.Amount))
		}
		pages := rq.in.Usage.Pages
		if rq.h.needs.OutputPages && !rq.chargeQuote && ferr == nil {
			// An output-priced request is billed for the pages it produced.
			pages = out.OutputPages
		}
		st, err = rq.commit(final.Total, pages)
	} else {
		st, err = rq.void()
	}
	if f := rq.h.app.forget; f != nil {
		// Settled, or given up on: this request calls no more.
		f.Forget(rq.key.AccountID, rq.res.ID)
	}
	rq.outcome = outcomeVoided
	if ok && err == nil {
		rq.outcome = outcomeCharged
		meterMetrics.debited.Add(creditsFloat(st.Charged))
		if rq.h.Billing != nil {
			rq.merge = rq.h.Billing.chargeObject(st.Charged, st.Available+st.Charged)
		}
	}
	observeOutcome(rq.outcome, err)
	if err != nil {
		// The reservation stays held and expires after its TTL, uncharged,
		// unless the store applied the call and only its answer was lost
		// (or, for a request carved from a lease, its group call lands
		// later): the ledger says which. We cannot return this error: the
		// upstream's answer is on its way.
		log.Error("settling reservation failed; uncharged unless the store applied it (see the ledger)",
			zap.Bool("commit", ok), zap.Error(err))
		hdr.Set(rq.h.money.cost, "0")
		return st.Charged, err
	}
	if st.Late {
		log.Warn("reservation expired before settle; charged from available credits",
			zap.Stringer("charged", st.Charged), zap.Stringer("quoted", rq.quote.Total))
	}
	if st.Shortfall > 0 {
		// Recorded in the ledger entry and a credits.shortfall event; the
		// account's requests are refused (credits_owed) until it pays.
		log.Warn("output charged beyond what the account could pay",
			zap.Stringer("charged", st.Charged), zap.Stringer("shortfall", st.Shortfall))
	}
	// One line per settlement, at debug level: Caddy's access log already
	// has a line per request, and both carry the request id.
	if ce := rq.h.logger.Check(zap.DebugLevel, "settled"); ce != nil {
		ce.Write(zap.String("account", rq.key.AccountID), zap.String("reservation", rq.res.ID),
			zap.String("request_id", rq.reqID), zap.Int("status", status), zap.Bool("commit", ok),
			zap.Stringer("charged", st.Charged), zap.String("entry", st.EntryID))
	}
	rq.h.money.set(hdr, st.Charged, st.Available)
	setQuotaHeaders(hdr, st.Quota)
	return st.Charged, nil
}

// logger returns a logger with the request's money fields. It is built
// only on the paths that log at warn level or above, not per request.
func (rq *request) logger(status int) lazyLogger {
	return lazyLogger{rq: rq, status: status}
}

type lazyLogger struct {
	rq     *request
	status int
}

func (l lazyLogger) with() *zap.Logger {
	return l.rq.h.logger.With(
		zap.String("account", l.rq.key.AccountID),
		zap.String("reservation", l.rq.res.ID),
		zap.String("request_id", l.rq.reqID),
		zap.Int("status", l.status),
	)
}

func (l lazyLogger) Warn(msg string, f ...zap.Field)  { l.with().Warn(msg, f...) }
func (l lazyLogger) Error(msg string, f ...zap.Field) { l.with().Error(msg, f...) }

// settleQuoted settles a success at the quoted (reserved) price.
func (rq *request) settleQuoted(status int, hdr http.Header) {
	rq.chargeQuote = true
	rq.settle(status, hdr, pricing.Response{})
}

// commit debits the quote, retrying a transient store failure briefly
// (meter.SettleRetry): Commit is idempotent per reservation, so a retry
// never charges twice.
func (rq *request) commit(amount meter.Credits, pages int) (meter.Settlement, error) {
	c := meter.CommitRequest{
		AccountID:     rq.key.AccountID,
		ReservationID: rq.res.ID,
		Amount:        amount,
		Description:   rq.r.Method + " " + rq.r.URL.Path,
		Route:         rq.route,
		RequestID:     rq.reqID,
		Pages:         pages,
		Response:      rq.stored,
		// The hold of an output-priced route is an estimate: the real
		// count is charged in full (see pricing's Needs.Uncapped).
		Uncapped: rq.h.needs.Uncapped,
	}
	var st meter.Settlement
	// The retries outlive the client, as the settle does (see storeCtx):
	// their waits watch a context that never ends.
	err := meter.SettleRetry.Do(context.Background(), func() (err error) {
		ctx, cancel := rq.h.app.storeCtx(rq.r.Context())
		defer cancel()
		st, err = rq.h.app.store.Commit(ctx, c)
		return err
	})
	return st, err
}

func (rq *request) void() (meter.Settlement, error) {
	ctx, cancel := rq.h.app.storeCtx(rq.r.Context())
	defer cancel()
	return rq.h.app.store.Void(ctx, rq.key.AccountID, rq.res.ID)
}

// refuse answers a request that will not be forwarded, with the cost it
// would have had and what the account has available.
func (rq *request) refuse(w http.ResponseWriter, err error) {
	if meter.ErrorCode(err) == meter.ECodeRateLimited {
		// Answered from memory: the store is not asked for the balance.
		observeOutcome(outcomeRefused, err)
		w.Header().Set(rq.h.money.cost, "0")
		writeError(w, err)
		return
	}
	available, known := meter.Credits(0), false
	var e *meter.Error
	if errors.As(err, &e) {
		if a, ok := e.Details["available"].(meter.Credits); ok {
			available, known = a, true
		}
		if reset, ok := e.Details["resets_at"].(time.Time); ok {
			limit, _ := e.Details["limit"].(meter.Credits)
			used, _ := e.Details["used"].(meter.Credits)
			setQuotaHeaders(w.Header(), meter.QuotaState{Limit: limit, Used: used, Remaining: max(0, limit-used), ResetsAt: reset})
		}
	}
	if !known && meter.ErrorCode(err) != meter.ECodeMeteringUnavailable {
		ctx, cancel := rq.h.app.storeCtx(rq.r.Context())
		acct, aerr := rq.h.app.store.Account(ctx, rq.key.AccountID)
		cancel()
		if aerr == nil {
			available, known = acct.Available, true
		}
	}
	observeOutcome(outcomeRefused, err)
	if meter.ErrorCode(err) == meter.ECodeInternal {
		rq.h.logger.Error("metering request failed", zap.String("account", rq.key.AccountID), zap.Error(err))
	}
	w.Header().Set(rq.h.money.cost, "0")
	if rq.quote.Total > 0 {
		// The cost the request would have had.
		w.Header().Set(rq.h.money.cost, rq.quote.Total.String())
	}
	if known {
		w.Header().Set(rq.h.money.remaining, available.String())
	}
	writeError(w, err)
}
