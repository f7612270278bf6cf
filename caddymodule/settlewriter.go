package caddymodule

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

// settleWriter settles the reservation when the response status is known,
// before any header reaches the client, so the money headers can be set.
// When a rule prices the response body (output pages), a 2xx body is
// spooled instead, counted, settled, and only then sent; an upstream that
// fails mid-body is then a clean 502, not a charged half response.
//
// A request with an Idempotency-Key has its 2xx answer captured in memory
// up to idempotency_max_response, so that the commit stores it for
// replays in its own atomic step; a larger answer is committed without it
// as soon as it outgrows the limit, then streams on.
type settleWriter struct {
	*caddyhttp.ResponseWriterWrapper
	rq      *request
	settled bool

	buffering bool
	status    int
	pw        *io.PipeWriter
	spooled   chan spoolResult

	capturing bool
	captured  bytes.Buffer
}

type spoolResult struct {
	body *usage.Body
	err  error
}

func newSettleWriter(w http.ResponseWriter, rq *request) *settleWriter {
	return &settleWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, rq: rq}
}

func (sw *settleWriter) WriteHeader(status int) {
	if sw.buffering || sw.capturing {
		return
	}
	if sw.settled || status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// Informational responses (100 Continue, 103 Early Hints) say
		// nothing of the outcome; they carry no money header either.
		if !sw.settled {
			sw.rq.h.money.strip(sw.Header())
		}
		sw.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	if status >= 200 && status < 300 && sw.buffers() {
		sw.startBuffering(status)
		return
	}
	if status >= 200 && status < 300 && sw.captures() {
		sw.capturing, sw.status = true, status
		return
	}
	sw.settled = true
	sw.rq.settle(status, sw.Header(), pricing.Response{})
	sw.ResponseWriterWrapper.WriteHeader(status)
}

// buffers says whether a 2xx answer is held back until it is complete:
// its pages are priced, or a job id or a billing object is read from it
// or merged into it.
func (sw *settleWriter) buffers() bool {
	rq := sw.rq
	return rq.h.needs.OutputPages || rq.settler.readsAnswer() ||
		rq.h.Billing != nil && isJSON(sw.Header().Get("Content-Type"))
}

// captures says whether a 2xx answer that is not buffered is captured
// for the replays of its Idempotency-Key: unless it says it is too large.
func (sw *settleWriter) captures() bool {
	limit := sw.rq.h.IdempotencyMaxResponse
	if sw.rq.fp == "" || limit < 0 {
		return false
	}
	n, err := strconv.ParseInt(sw.Header().Get("Content-Length"), 10, 64)
	return err != nil || n <= limit
}

// capture holds b back while the answer fits the limit; past it, the
// request is settled without a stored response and what was held goes.
func (sw *settleWriter) capture(b []byte) (int, error) {
	if int64(sw.captured.Len()+len(b)) <= sw.rq.h.IdempotencyMaxResponse {
		return sw.captured.Write(b)
	}
	sw.capturing, sw.settled = false, true
	sw.rq.settle(sw.status, sw.Header(), pricing.Response{})
	sw.ResponseWriterWrapper.WriteHeader(sw.status)
	if _, err := sw.ResponseWriterWrapper.Write(sw.captured.Bytes()); err != nil {
		return 0, err
	}
	sw.captured = bytes.Buffer{}
	return sw.ResponseWriterWrapper.Write(b)
}

// finishCaptured settles a captured answer with it stored, then sends it.
func (sw *settleWriter) finishCaptured(err error) error {
	sw.capturing, sw.settled = false, true
	hdr := sw.Header()
	if err != nil {
		// Nothing has reached the client: fail cleanly and charge nothing.
		sw.rq.settle(http.StatusBadGateway, hdr, pricing.Response{})
		return err
	}
	sw.rq.stored = sw.rq.encodeResponse(sw.status, hdr, sw.captured.Bytes())
	sw.rq.settle(sw.status, hdr, pricing.Response{})
	sw.ResponseWriterWrapper.WriteHeader(sw.status)
	_, _ = sw.ResponseWriterWrapper.Write(sw.captured.Bytes())
	return nil
}

// startBuffering spools what the upstream writes, bounded like a request
// body (max_body, memory_threshold, temp_dir).
func (sw *settleWriter) startBuffering(status int) {
	sw.buffering, sw.status = true, status
	pr, pw := io.Pipe()
	sw.pw, sw.spooled = pw, make(chan spoolResult, 1)
	opts := sw.rq.h.uopts
	opts.SizeHint, _ = strconv.ParseInt(sw.Header().Get("Content-Length"), 10, 64)
	go func() {
		b, err := usage.Spool(pr, opts)
		// Unblock the writer when Spool stopped early (too large).
		pr.CloseWithError(io.ErrClosedPipe)
		sw.spooled <- spoolResult{b, err}
	}()
}

func (sw *settleWriter) Write(b []byte) (int, error) {
	if !sw.settled && !sw.buffering && !sw.capturing {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.buffering {
		return sw.pw.Write(b)
	}
	if sw.capturing {
		return sw.capture(b)
	}
	return sw.ResponseWriterWrapper.Write(b)
}

// ReadFrom is overridden because the wrapper's would bypass WriteHeader.
func (sw *settleWriter) ReadFrom(r io.Reader) (int64, error) {
	if !sw.settled && !sw.buffering && !sw.capturing {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.buffering {
		return io.Copy(sw.pw, r)
	}
	if sw.capturing {
		return io.Copy(writerOnly{sw}, r)
	}
	return sw.ResponseWriterWrapper.ReadFrom(r)
}

// writerOnly hides ReadFrom, so io.Copy goes through Write.
type writerOnly struct{ io.Writer }

// FlushError is found by http.ResponseController before it unwraps us, so
// a flush cannot send headers without settling first.
func (sw *settleWriter) FlushError() error {
	if sw.buffering || sw.capturing {
		return nil
	}
	if !sw.settled {
		sw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(sw.ResponseWriterWrapper.ResponseWriter).Flush()
}

// finish settles what the next handler left unsettled and sends a
// buffered response. err is the next handler's error.
func (sw *settleWriter) finish(err error) error {
	if sw.buffering {
		return sw.finishBuffered(err)
	}
	if sw.capturing {
		return sw.finishCaptured(err)
	}
	if !sw.settled {
		// Nothing was written: an error (upstream down, timeout, client
		// gone) voids; a handler that wrote nothing at all answered 200.
		status := http.StatusOK
		if err != nil {
			status = http.StatusBadGateway
		}
		sw.settled = true
		sw.rq.settle(status, sw.Header(), pricing.Response{})
	}
	return err
}

func (sw *settleWriter) finishBuffered(err error) error {
	sw.pw.CloseWithError(err) // nil: the body is complete
	res := <-sw.spooled
	if res.body != nil {
		defer res.body.Close()
	}
	hdr := sw.Header()
	sw.settled = true
	if err != nil || res.err != nil {
		// Nothing has reached the client: fail cleanly and charge nothing.
		sw.rq.settle(http.StatusBadGateway, hdr, pricing.Response{})
		if err == nil {
			sw.rq.h.logger.Warn("upstream response could not be buffered", zap.Error(res.err))
			err = caddyhttp.Error(http.StatusBadGateway, res.err)
		}
		return err
	}
	if size := res.body.Size(); size <= maxMergeBody && (sw.rq.settler.readsAnswer() || sw.rq.h.Billing != nil) {
		sw.rq.body = make([]byte, size)
		if _, err := io.ReadFull(res.body.Reader(), sw.rq.body); err != nil {
			sw.rq.body = nil
		}
	}
	if limit := sw.rq.h.IdempotencyMaxResponse; sw.rq.fp != "" && res.body.Size() <= limit {
		// The upstream's answer, kept with the commit for replays (a
		// billing object is merged again when it is replayed).
		b := make([]byte, res.body.Size())
		if _, err := io.ReadFull(res.body.Reader(), b); err == nil {
			sw.rq.stored = sw.rq.encodeResponse(sw.status, hdr, b)
		}
	}
	if sw.rq.h.needs.OutputPages && !sw.rq.settler.readsAnswer() {
		out := pricing.Response{}
		ctx, cancel := context.WithTimeout(sw.rq.r.Context(), sw.rq.h.uopts.CountTimeout)
		info, cerr := usage.ScanPDF(ctx, res.body.ReaderAt(), res.body.Size(), sw.rq.h.uopts.PDF)
		cancel()
		if cerr != nil {
			// The client gets what it asked for; it is charged the reserved
			// estimate (see README: output pages).
			sw.rq.h.logger.Warn("could not count the pages of the upstream's response; charging the estimate",
				zap.String("reservation", sw.rq.res.ID), zap.Error(cerr))
			sw.rq.settleQuoted(sw.status, hdr)
		} else {
			out.OutputPages = info.Pages
			sw.rq.settle(sw.status, hdr, out)
		}
	} else {
		sw.rq.settle(sw.status, hdr, pricing.Response{})
	}
	if sw.rq.merge != nil && sw.rq.body != nil && isJSON(hdr.Get("Content-Type")) && hdr.Get("Content-Encoding") == "" {
		if merged, ok := mergeMember(sw.rq.body, sw.rq.h.Billing.Field, sw.rq.merge); ok {
			hdr.Set("Content-Length", strconv.Itoa(len(merged)))
			sw.ResponseWriterWrapper.WriteHeader(sw.status)
			_, _ = sw.ResponseWriterWrapper.Write(merged)
			return nil
		}
	}
	sw.ResponseWriterWrapper.WriteHeader(sw.status)
	_, werr := io.Copy(sw.ResponseWriterWrapper.ResponseWriter, res.body.Reader())
	if werr != nil && sw.rq.r.Context().Err() == nil {
		sw.rq.h.logger.Debug("sending buffered response", zap.Error(werr))
	}
	return nil
}
