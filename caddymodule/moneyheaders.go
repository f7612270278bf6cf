package caddymodule

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// moneyHeaders are the response headers that only the gateway sets: an
// upstream's values are removed on every path (settle, replays, and
// moneyWriter for the paths that forward without settling).
var moneyHeaders = []string{HeaderCost, HeaderRemaining, HeaderReplayed, HeaderTest,
	HeaderQuotaRemaining, HeaderQuotaReset}

// stripMoneyHeaders removes the money headers from h.
func stripMoneyHeaders(h http.Header) {
	for _, name := range moneyHeaders {
		h.Del(name)
	}
}

// moneyWriter makes the money headers of a response the gateway's own on
// a path that forwards without settling (a test key, say): when the next
// handler sends its headers, whatever it set under those names is
// removed, then set writes the gateway's values. Informational (1xx)
// responses are stripped too.
//
//	return next.ServeHTTP(newMoneyWriter(w, func(h http.Header) {
//		setMoneyHeaders(h, cost, available)
//	}), r)
type moneyWriter struct {
	*caddyhttp.ResponseWriterWrapper
	set   func(http.Header)
	wrote bool
}

func newMoneyWriter(w http.ResponseWriter, set func(http.Header)) *moneyWriter {
	return &moneyWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, set: set}
}

func (mw *moneyWriter) WriteHeader(status int) {
	if !mw.wrote {
		stripMoneyHeaders(mw.Header())
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
