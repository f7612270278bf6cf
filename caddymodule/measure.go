package caddymodule

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/creditgate/creditgate/internal/clockctx"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

// maxJSONBody bounds a JSON body read for pricing: it is parsed in memory.
const maxJSONBody = 16 << 20

// measureBody reads what pricing needs into in. When the body is read, it is
// spooled once, measured, and put back on the request so the upstream
// receives exactly the bytes the client sent.
func (h *Handler) measureBody(r *http.Request, in *pricing.Input) (*usage.Body, error) {
	// A request with an Idempotency-Key is spooled on every route: its
	// fingerprint digests the body the upstream will receive.
	if !h.needs.Pages && !h.needs.JSON && r.Header.Get(HeaderIdempotencyKey) == "" {
		return nil, nil
	}
	opts := h.uopts
	opts.SizeHint = r.ContentLength
	body, err := usage.Spool(r.Body, opts)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(body.Reader())
	r.ContentLength = body.Size()
	r.TransferEncoding = nil
	if body.Size() > 0 {
		r.Header.Set("Content-Length", strconv.FormatInt(body.Size(), 10))
	}
	ct := r.Header.Get("Content-Type")
	if h.needs.JSON && isJSON(ct) {
		if body.Size() > maxJSONBody {
			return body, meter.Errorf(meter.ECodeBodyTooLarge, "a JSON body priced by its content may be at most %d bytes", maxJSONBody).With("max_body", maxJSONBody)
		}
		// The body and its parsed form live in memory: admit about 4x its
		// size against the same budget as page counting.
		release, err := h.uopts.Budget.Hold(r.Context(), 4*body.Size())
		if err != nil {
			return body, err
		}
		body.OnClose(release)
		in.JSON = make([]byte, body.Size())
		if _, err := io.ReadFull(body.Reader(), in.JSON); err != nil {
			return body, err
		}
	}
	// A multipart request on a route priced by JSON carries it in a part:
	// the multipart walk that counts the files hands it over.
	jsonPart := h.needs.JSON && h.needs.JSONPart != "" && isMultipart(ct)
	if jsonPart {
		opts.JSONPart, opts.PartOnly = h.needs.JSONPart, !h.needs.Pages
	}
	if jsonPart || h.needs.Pages && (h.Job == nil || h.Job.declared == nil || !isJSON(ct)) {
		// Measuring polls ctx, and waits on it only for memory: clockctx
		// makes the timer then, not on every request.
		ctx := clockctx.WithTimeout(r.Context(), h.uopts.CountTimeout)
		opts.PDF.MaxPages = h.uopts.MaxPages // not for the upstream's output pages
		in.Usage, err = usage.MeasureEncoded(ctx, ct, r.Header.Get("Content-Encoding"), body, opts)
		ctx.Stop()
		u := in.Usage
		body.OnClose(u.Release)
		in.JSON = u.TypedJSONPart()
		if !h.needs.Pages {
			in.Usage = usage.Usage{} // only the part was read
		}
		if err == nil && h.needs.Pages && in.Usage.Unpriced > 0 && h.Unpriced != unpricedCharge {
			err = unpricedError(in.Usage)
		}
	}
	return body, err
}

// isJSON reports whether a Content-Type is JSON (application/json or any
// +json type).
func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(contentType), ";")
	mt = strings.TrimSpace(mt)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// isMultipart reports whether a Content-Type is multipart/*.
func isMultipart(contentType string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "multipart/")
}

func bodyTooLarge(max int64) error {
	return meter.Errorf(meter.ECodeBodyTooLarge, "request body is larger than the limit of %d bytes", max).With("max_body", max)
}
