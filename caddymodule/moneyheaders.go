package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/creditgate/creditgate/meter"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// moneyHeaders are the response headers that only the gateway sets: an
// upstream's values are removed on every path (settle, replays, and
// moneyWriter for the paths that forward without settling).
var moneyHeaders = []string{HeaderCost, HeaderRemaining, HeaderReplayed, HeaderTest,
	HeaderQuotaRemaining, HeaderQuotaReset}

// stripMoneyHeaders removes the money headers from h, under their
// default names.
func stripMoneyHeaders(h http.Header) {
	for _, name := range moneyHeaders {
		h.Del(name)
	}
}

// moneyNames are the names of the cost and remaining-credits response
// headers: X-Request-Cost and X-Remaining-Credits unless the meter global
// option or the handler says otherwise (cost_header, remaining_header).
type moneyNames struct{ cost, remaining string }

var defaultMoneyNames = moneyNames{HeaderCost, HeaderRemaining}

// with returns n with the names that are set replacing its own.
func (n moneyNames) with(cost, remaining string) moneyNames {
	if cost != "" {
		n.cost = http.CanonicalHeaderKey(cost)
	}
	if remaining != "" {
		n.remaining = http.CanonicalHeaderKey(remaining)
	}
	return n
}

// set writes the cost and remaining-credits headers.
func (n moneyNames) set(h http.Header, cost, remaining meter.Credits) {
	h.Set(n.cost, cost.String())
	h.Set(n.remaining, remaining.String())
}

// strip removes the money headers from h, under their default and their
// configured names: an upstream's value never reaches the client under
// either (PSPDFKit's upstream sets the x-pspdfkit-request-cost a provider
// may name its cost header).
func (n moneyNames) strip(h http.Header) {
	stripMoneyHeaders(h)
	h.Del(n.cost)
	h.Del(n.remaining)
}

// reservedResponseHeaders may not be the money headers' names: the
// gateway's other headers, and those that frame or route the answer.
var reservedResponseHeaders = []string{HeaderReplayed, HeaderTest, HeaderQuotaRemaining, HeaderQuotaReset,
	HeaderDryRun, "Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Connection",
	"Set-Cookie", "Location", "Retry-After", "Date", "Trailer", "Upgrade"}

// checkMoneyNames refuses names that are not header names, that collide,
// or that other headers own. The defaults are accepted as themselves.
func checkMoneyNames(cost, remaining string) error {
	for _, v := range []struct{ opt, name string }{{"cost_header", cost}, {"remaining_header", remaining}} {
		if v.name == "" {
			continue
		}
		if !validHeaderName(v.name) {
			return fmt.Errorf("%s %q is not a header name", v.opt, v.name)
		}
		canon := http.CanonicalHeaderKey(v.name)
		for _, r := range reservedResponseHeaders {
			if canon == r {
				return fmt.Errorf("%s %q: that header is not the gateway's to rename into", v.opt, v.name)
			}
		}
		if strings.HasPrefix(canon, "X-Meter-") {
			return fmt.Errorf("%s %q: X-Meter-* headers are the gateway's own", v.opt, v.name)
		}
	}
	if cost != "" && strings.EqualFold(cost, remaining) {
		return fmt.Errorf("cost_header and remaining_header are both %q", cost)
	}
	return nil
}

// validHeaderName reports whether s is an HTTP token of at most 128
// characters (RFC 9110 5.1).
func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

// moneyWriter makes the money headers of a response the gateway's own on
// a path that forwards without settling (a test key, say): when the next
// handler sends its headers, whatever it set under those names is
// removed, then set writes the gateway's values. Informational (1xx)
// responses are stripped too.
//
//	return next.ServeHTTP(newMoneyWriter(w, names, func(h http.Header) {
//		names.set(h, cost, available)
//	}), r)
type moneyWriter struct {
	*caddyhttp.ResponseWriterWrapper
	names moneyNames
	set   func(http.Header)
	wrote bool
}

func newMoneyWriter(w http.ResponseWriter, names moneyNames, set func(http.Header)) *moneyWriter {
	return &moneyWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, names: names, set: set}
}

func (mw *moneyWriter) WriteHeader(status int) {
	if !mw.wrote {
		mw.names.strip(mw.Header())
		if status >= 200 || status == http.StatusSwitchingProtocols {
			mw.wrote = true
			if mw.set != nil {
				mw.set(mw.Header())
			}
		}
	}
	mw.ResponseWriterWrapper.WriteHeader(status)
}

func (mw *moneyWriter) Write(b []byte) (int, error) {
	if !mw.wrote {
		mw.WriteHeader(http.StatusOK)
	}
	return mw.ResponseWriterWrapper.Write(b)
}

// ReadFrom is overridden because the wrapper's would bypass WriteHeader.
func (mw *moneyWriter) ReadFrom(r io.Reader) (int64, error) {
	if !mw.wrote {
		mw.WriteHeader(http.StatusOK)
	}
	return mw.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError is found by http.ResponseController before it unwraps us, so
// a flush cannot send the headers without the gateway's.
func (mw *moneyWriter) FlushError() error {
	if !mw.wrote {
		mw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(mw.ResponseWriterWrapper.ResponseWriter).Flush()
}
