package caddymodule

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

// HeaderIdempotencyKey is the request header of the IETF draft "The
// Idempotency-Key HTTP Header Field".
const HeaderIdempotencyKey = "Idempotency-Key"

// defaultIdempotencyMaxResponse is Handler.IdempotencyMaxResponse's default.
const defaultIdempotencyMaxResponse = 64 << 10

// maxIdempotencyResponse bounds idempotency_max_response: a response is
// kept in the store, JSON-encoded, within meter.MaxResponseLen.
const maxIdempotencyResponse = 512 << 10

// fingerprint binds an Idempotency-Key to its request: what makes the
// upstream do other work is the method, the route and URI (path and
// query), the Content-Type (a multipart boundary lives there) and the
// exact bytes of the body, so a reuse of the key that differs in any of
// them is another request (ECodeIdempotencyKeyReused). Length-prefixed
// fields, so no two requests share one by moving a separator.
func fingerprint(account string, r *http.Request, route string, body *usage.Body) (string, error) {
	h := sha256.New()
	for _, f := range []string{account, r.Method, route, r.URL.RequestURI(), r.Header.Get("Content-Type")} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	if body != nil {
		// The bytes the upstream receives: the spooled body it is sent.
		if _, err := io.Copy(h, body.Reader()); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// storedResponse is what a charged idempotent request keeps for its
// replays, as CommitRequest.Response: the status, the headers but the
// hop-by-hop and money ones, and the body.
type storedResponse struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
}

// hopHeaders are not replayed: they describe one connection (RFC 9110
// 7.6.1), or the body's framing, which the replay sets itself.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Date"}

// encodeResponse is what rq keeps of an answer for its replays: as the
// client gets it, so without the headers the route prices (settle removes
// them).
func (rq *request) encodeResponse(status int, hdr http.Header, body []byte) []byte {
	h := hdr.Clone()
	for _, name := range rq.h.needs.ResponseHeaders {
		h.Del(name)
	}
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	rq.h.money.strip(h)
	raw, err := json.Marshal(storedResponse{Status: status, Header: h, Body: body})
	if err != nil || len(raw) > meter.MaxResponseLen {
		return nil // not kept: a replay is then refused, never re-run free
	}
	return raw
}

// replay answers a request whose Idempotency-Key names a charged request:
// with the response its commit stored, and the money headers of that
// charge, without calling the upstream. A charge whose response was not
// kept (larger than idempotency_max_response) is refused: a replay is
// never free work.
func (rq *request) replay(w http.ResponseWriter) {
	var sr storedResponse
	if rq.res.Response == nil || json.Unmarshal(rq.res.Response, &sr) != nil || sr.Status < 200 {
		rq.quote.Total = 0 // nothing is charged now; the original charge is in the details
		rq.refuse(w, meter.Errorf(meter.ECodeIdempotencyResponseNotStored,
			"the request with this Idempotency-Key was charged, but its response was too large to keep for a replay; use a new key to run it again").
			With("charged", rq.res.Amount).With("reservation", rq.res.ID))
		return
	}
	observeOutcome(outcomeReplayed, nil)
	h := w.Header()
	for k, v := range sr.Header {
		h[k] = v
	}
	rq.h.money.strip(h)
	h.Set(HeaderReplayed, "true")
	rq.h.money.set(h, rq.res.Amount, rq.res.Available)
	setQuotaHeaders(h, rq.res.Quota)
	body := sr.Body
	if rq.h.Billing != nil && isJSON(h.Get("Content-Type")) && h.Get("Content-Encoding") == "" {
		// The billing object of the original charge, merged again.
		if merged, ok := mergeMember(body, rq.h.Billing.Field, rq.h.Billing.chargeObject(rq.res.Amount,
			rq.res.Available+rq.res.Amount)); ok {
			body = merged
		}
	}
	if rq.r.Method != http.MethodHead && sr.Status != http.StatusNoContent && sr.Status != http.StatusNotModified {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(sr.Status)
	if rq.r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// idempotencyMaxArg parses `idempotency_max_response <size>|off`.
func idempotencyMaxArg(d *caddyfile.Dispenser) (int64, error) {
	v, err := oneArg(d)
	if err != nil || v == "off" {
		return -1, err
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n == 0 || n > maxIdempotencyResponse {
		return 0, d.Errf("meter: idempotency_max_response %q: expected a size from 1B to %dKiB, or off",
			v, maxIdempotencyResponse>>10)
	}
	return int64(n), nil
}
