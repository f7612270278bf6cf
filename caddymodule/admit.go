package caddymodule

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/creditgate/creditgate/meter"
)

// admit runs the checks of an authenticated request that need no
// measure: it publishes the key's mode, counts a test key's request
// against the route's test_limit (rq.testUsed), and refuses a declared
// body over max_body.
func (h *Handler) admit(w http.ResponseWriter, rq *request, id identity) error {
	r := rq.r
	setMode(r, id.key.Mode)
	if id.key.Mode == meter.ModeTest && !rq.dry {
		// Counted before measuring: a refused test request costs no work.
		var err error
		if rq.testUsed, err = h.takeTest(id.key.AccountID); err != nil {
			return err
		}
	}
	// Every route, priced by the body or not, refuses a declared length
	// over max_body before reading or forwarding a byte of it, and stops a
	// body that grows past it (chunked) where it is not spooled.
	if r.ContentLength > h.MaxBody {
		return unread{bodyTooLarge(h.MaxBody)}
	}
	spooled := h.needs.Pages || h.needs.JSON || r.Header.Get(HeaderIdempotencyKey) != ""
	if !spooled && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, h.MaxBody)
	}
	return nil
}

// lingerRead bounds how long refuseUnread reads and drops a refused body
// after its answer: long enough for a client sending a moderately oversized
// body at LAN speed to finish and read the answer, short enough that a
// huge or silent one holds nothing (dropped bytes cost no memory).
const lingerRead = time.Second

// refuseUnread refuses a request whose body will not be read, and closes
// its connection. Left to itself, the server would first try to drain up
// to 256 KiB of the body (Caddy's body wrapper keeps net/http from seeing
// it is too large), and a client that declared a length and sends nothing
// would hold the answer until Caddy's read timeout. Closing at once could
// instead reset a client that is still sending before it reads the answer.
// So, as net/http's own lingering close does: the answer is sent with its
// length, the write side is closed, and what the client still sends is
// read and dropped for a moment (HTTP/1; HTTP/2 resets only the stream).
func (rq *request) refuseUnread(w http.ResponseWriter, err error) {
	var buf bytes.Buffer
	rec := caddyhttp.NewResponseRecorder(w, &buf, func(int, http.Header) bool { return true })
	rq.refuse(rec, err)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Connection", "close")
	if rec.WriteResponse() != nil {
		return
	}
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	conn, rw, herr := rc.Hijack()
	if herr != nil {
		return
	}
	defer conn.Close()
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(lingerRead))
	_, _ = io.Copy(io.Discard, rw)
}
