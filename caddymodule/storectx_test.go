package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// stallingStore's Reserve is a store round trip that never answers: it
// waits on its context's Done (wait), or polls its Err, as an in-memory
// carve that is slow would.
type stallingStore struct {
	*benchStore
	wait bool
}

func (s stallingStore) Reserve(ctx context.Context, _ meter.ReserveRequest) (meter.Reservation, error) {
	if s.wait {
		<-ctx.Done()
		return meter.Reservation{}, meter.Unavailable(ctx.Err())
	}
	for ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	return meter.Reservation{}, meter.Unavailable(ctx.Err())
}

// A reservation's context (polledStoreCtx, a polled clock) ends at the
// store timeout whether the store waits on Done or polls Err: the request
// is refused as metering_unavailable, and never reaches the upstream.
func TestReserveBoundedByStoreTimeout(t *testing.T) {
	for _, wait := range []bool{true, false} {
		name := map[bool]string{true: "done", false: "polled"}[wait]
		t.Run(name, func(t *testing.T) {
			h, st := benchHandler(t)
			h.app.store = meter.Validated(timedStore{stallingStore{st, wait}})
			h.app.StoreTimeout = caddy.Duration(50 * time.Millisecond)
			var reached atomic.Bool
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				reached.Store(true)
				return upstreamOK.ServeHTTP(w, r)
			})
			w := httptest.NewRecorder()
			start := time.Now()
			if err := h.ServeHTTP(w, benchRequest(pdftest.Pages(1)), next); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("answered after %v", took)
			}
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), meter.ECodeMeteringUnavailable) {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			if reached.Load() || st.n.Load() != 0 {
				t.Fatal("a refused request reached the upstream or was committed")
			}
		})
	}
}
