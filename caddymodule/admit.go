package caddymodule

import (
	"net/http"

	"github.com/creditgate/creditgate/meter"
)

// admit runs the checks of an authenticated request that need no
// measure: it publishes the key's mode, counts a test key's request
// against the route's test_limit, and refuses a declared body over
// max_body. It returns the account's test requests today (test keys) and
// false when it answered the request itself.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, rq *request, id identity, dryRun bool) (int, bool) {
	setMode(r, id.key.Mode)
	testUsed := 0
	if id.key.Mode == meter.ModeTest && !dryRun {
		// Counted before measuring: a refused test request costs no work.
		var err error
		if testUsed, err = h.takeTest(id.key.AccountID); err != nil {
			rq.refuse(w, err)
			return 0, false
		}
	}
	// Every route, priced by the body or not, refuses a declared length
	// over max_body before reading or forwarding a byte of it, and stops a
	// body that grows past it (chunked) where it is not spooled.
	if r.ContentLength > h.MaxBody {
		// Closing the connection is what sends the 413 now: otherwise the
		// server first tries to drain the unread body, and a client that
		// declared a length and sends nothing holds the answer until
		// Caddy's read timeout.
		w.Header().Set("Connection", "close")
		rq.refuse(w, bodyTooLarge(h.MaxBody))
		return 0, false
	}
	if !h.needs.Pages && !h.needs.JSON && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, h.MaxBody)
	}
	return testUsed, true
}
