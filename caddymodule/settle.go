package caddymodule

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
	quote pricing.Quote
	res   meter.Reservation
}

// requestID is Caddy's request UUID (the one its access log shows). It is
// read once, up front: the placeholder is created lazily in a map that
// reverse_proxy reads from its own goroutines.
func requestID(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		return repl.ReplaceAll("{http.request.uuid}", "")
	}
	return ""
}

// settle commits the reservation when the upstream succeeded (2xx, and the
// client is still there to receive it) and voids it otherwise, then writes
// the money headers into hdr before they are sent.
func (rq *request) settle(status int, hdr http.Header) {
	ok := status >= 200 && status < 300 && rq.r.Context().Err() == nil
	log := rq.h.logger.With(
		zap.String("account", rq.key.AccountID),
		zap.String("reservation", rq.res.ID),
		zap.String("request_id", rq.reqID),
		zap.Int("status", status),
	)
	var (
		st  meter.Settlement
		err error
	)
	if ok {
		st, err = rq.commit()
	} else {
		st, err = rq.void()
	}
	if err != nil {
		// The reservation stays held and expires after its TTL, uncharged.
		// We cannot return this error: the upstream's answer is on its way.
		log.Error("settling reservation failed; it will expire uncharged", zap.Bool("commit", ok), zap.Error(err))
		hdr.Set(HeaderCost, "0")
		return
	}
	if st.Late {
		log.Warn("reservation expired before settle; charged from available credits",
			zap.Stringer("charged", st.Charged), zap.Stringer("quoted", rq.quote.Total))
	}
	log.Debug("settled", zap.Bool("commit", ok), zap.Stringer("charged", st.Charged), zap.String("entry", st.EntryID))
	setMoneyHeaders(hdr, st.Charged, st.Available)
}

// commit debits the quote, retrying a transient store failure briefly:
// Commit is idempotent per reservation, so a retry never charges twice.
func (rq *request) commit() (meter.Settlement, error) {
	c := meter.CommitRequest{
		AccountID:     rq.key.AccountID,
		ReservationID: rq.res.ID,
		Amount:        rq.quote.Total,
		Description:   rq.r.Method + " " + rq.r.URL.Path,
		Route:         rq.route,
		RequestID:     rq.reqID,
	}
	var (
		st  meter.Settlement
		err error
	)
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := rq.h.app.storeCtx(rq.r.Context())
		st, err = rq.h.app.store.Commit(ctx, c)
		cancel()
		if err == nil || meter.ErrorCode(err) != meter.ECodeMeteringUnavailable {
			return st, err
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
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
	available, known := meter.Credits(0), false
	var e *meter.Error
	if errors.As(err, &e) {
		if a, ok := e.Details["available"].(meter.Credits); ok {
			available, known = a, true
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
	if meter.ErrorCode(err) == meter.ECodeInternal {
		rq.h.logger.Error("metering request failed", zap.String("account", rq.key.AccountID), zap.Error(err))
	}
	w.Header().Set(HeaderCost, "0")
	if rq.quote.Total > 0 {
		// The cost the request would have had.
		w.Header().Set(HeaderCost, rq.quote.Total.String())
	}
	if known {
		w.Header().Set(HeaderRemaining, available.String())
	}
	writeError(w, err)
}

// forwardTest serves a test key: priced like a live request, forwarded
// with the upstream told it is a test, and never charged. x-request-cost
// is what a live key would have been charged.
func (rq *request) forwardTest(w http.ResponseWriter, next caddyhttp.Handler) error {
	ctx, cancel := rq.h.app.storeCtx(rq.r.Context())
	acct, err := rq.h.app.store.Account(ctx, rq.key.AccountID)
	cancel()
	if err != nil {
		rq.refuse(w, err)
		return nil
	}
	rq.r.Header.Set(UpstreamTest, "true")
	rq.r.Header.Set(UpstreamAccount, rq.key.AccountID)
	w.Header().Set(HeaderTest, "true")
	setMoneyHeaders(w.Header(), rq.quote.Total, acct.Available)
	return next.ServeHTTP(w, rq.r)
}

// settleWriter settles the reservation when the response status is known,
// before any header reaches the client, so the money headers can be set.
type settleWriter struct {
	*caddyhttp.ResponseWriterWrapper
	rq      *request
	settled bool
}

func (sw *settleWriter) WriteHeader(status int) {
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// Informational responses (100 Continue, 103 Early Hints) say
		// nothing of the outcome.
		sw.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	if !sw.settled {
		sw.settled = true
		sw.rq.settle(status, sw.Header())
	}
	sw.ResponseWriterWrapper.WriteHeader(status)
}

func (sw *settleWriter) Write(b []byte) (int, error) {
	if !sw.settled {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriterWrapper.Write(b)
}

// ReadFrom is overridden because the wrapper's would bypass WriteHeader.
func (sw *settleWriter) ReadFrom(r io.Reader) (int64, error) {
	if !sw.settled {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError is found by http.ResponseController before it unwraps us, so
// a flush cannot send headers without settling first.
func (sw *settleWriter) FlushError() error {
	if !sw.settled {
		sw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(sw.ResponseWriterWrapper.ResponseWriter).Flush()
}
