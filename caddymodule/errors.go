package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// statusOf maps a domain error code to its HTTP status: the one place
// where codes meet HTTP.
func statusOf(code string) int {
	switch code {
	case meter.ECodeBadRequest, meter.ECodeInvalid, meter.ECodeInvalidSignature:
		return http.StatusBadRequest
	case meter.ECodeInvalidAPIKey:
		return http.StatusUnauthorized
	case meter.ECodeInsufficientCredits, meter.ECodeOverageLimitReached, meter.ECodeCreditsOwed:
		return http.StatusPaymentRequired
	case meter.ECodeQuotaExceeded, meter.ECodeRateLimited, meter.ECodeTestLimitExceeded:
		return http.StatusTooManyRequests
	case meter.ECodeIdempotencyKeyReused:
		return http.StatusUnprocessableEntity
	case meter.ECodeIdempotencyResponseNotStored:
		return http.StatusConflict
	case meter.ECodeAccountNotFound, meter.ECodeNotFound, meter.ECodeJobNotFound, meter.ECodeGrantNotFound:
		return http.StatusNotFound
	case meter.ECodeAccountExists, meter.ECodeIdempotencyConflict, meter.ECodeRefundNotAllowed, meter.ECodeReviewResolved,
		meter.ECodeReservationSettled, meter.ECodeReservationNotFound, meter.ECodeJobFinished:
		return http.StatusConflict
	case meter.ECodeJobExpired:
		return http.StatusGone
	case meter.ECodeAccountDisabled, meter.ECodeTestKeyNotAllowed, meter.ECodeForbidden:
		return http.StatusForbidden
	case meter.ECodeBodyTooLarge, meter.ECodePageLimitExceeded, meter.ECodeTooManyPages:
		return http.StatusRequestEntityTooLarge
	case meter.ECodeUnsupportedMediaType, meter.ECodeUnsupportedContent, meter.ECodeUnsupportedEncoding:
		return http.StatusUnsupportedMediaType
	case meter.ECodeUnreadableDocument:
		return http.StatusUnprocessableEntity
	case meter.ECodeMeteringUnavailable, meter.ECodeServerBusy:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody renders err as the one error shape of the API:
// {"error": {"code": "...", "message": "...", ...details}}. Errors that are
// not *meter.Error are internal and their text is never shown.
func errorBody(err error) (int, map[string]any) {
	var e *meter.Error
	if !errors.As(err, &e) {
		e = &meter.Error{Code: meter.ECodeInternal, Message: "internal error"}
	}
	obj := make(map[string]any, len(e.Details)+2)
	for k, v := range e.Details {
		obj[k] = v
	}
	obj["code"] = e.Code
	obj["message"] = e.Message
	return statusOf(e.Code), map[string]any{"error": obj}
}

// writeError writes err as a JSON error response.
func writeError(w http.ResponseWriter, err error) {
	status, body := errorBody(err)
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	if status == http.StatusTooManyRequests {
		// A quota refusal says when the quota resets, a rate limit when a
		// request may pass again.
		var e *meter.Error
		if errors.As(err, &e) {
			if secs, ok := e.Details["retry_after"].(int64); ok {
				w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			}
			if t, ok := e.Details["resets_at"].(time.Time); ok {
				secs := int64(time.Until(t).Seconds()) + 1
				if secs < 1 {
					secs = 1
				}
				w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			}
		}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
