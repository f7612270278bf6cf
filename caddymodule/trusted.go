package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
)

// meterHeaderPrefix starts the name of every request header the gateway
// sets for the upstream (X-Meter-Account, X-Meter-Reservation,
// X-Meter-Test, X-Meter-Job...). The upstream trusts them, so a client's
// are removed by prefix, not from a list: a header added later is covered
// without anyone remembering to list it.
const meterHeaderPrefix = "X-Meter-"

// stripMeterHeaders removes every X-Meter-* request header. Each meter
// handler calls it first, before any path that can reach next, after
// reading the few it takes from the client (X-Meter-Dry-Run) or the
// upstream (X-Meter-Job-Token on progress reports).
func stripMeterHeaders(h http.Header) {
	for name := range h {
		if isMeterHeader(name) {
			delete(h, name)
		}
	}
}

// isMeterHeader reports whether name starts with X-Meter-, in any case
// (HTTP/2 and some clients keep names out of canonical form).
func isMeterHeader(name string) bool {
	return len(name) >= len(meterHeaderPrefix) && strings.EqualFold(name[:len(meterHeaderPrefix)], meterHeaderPrefix)
}

// checkKeyHeader refuses an API key header the gateway would strip.
func checkKeyHeader(name string) error {
	if isMeterHeader(name) {
		return fmt.Errorf("key_header %q: X-Meter-* request headers are the gateway's own and removed from every request; choose another name", name)
	}
	return nil
}
