package meter

import (
	"errors"
	"fmt"
)

// Error codes are stable strings that clients can switch on. The HTTP
// adapter maps each to a status code in one place.
const (
	ECodeInvalidAPIKey        = "invalid_api_key"
	ECodeInsufficientCredits  = "insufficient_credits"
	ECodeBodyTooLarge         = "body_too_large"
	ECodeUnreadableDocument   = "unreadable_document"
	ECodeBadRequest           = "bad_request"
	ECodeMeteringUnavailable  = "metering_unavailable"
	ECodeIdempotencyConflict  = "idempotency_conflict"
	ECodeAccountNotFound      = "account_not_found"
	ECodeAccountExists        = "account_exists"
	ECodeReservationNotFound  = "reservation_not_found"
	ECodeReservationSettled   = "reservation_settled"
	ECodeInvalid              = "invalid"
	ECodeInternal             = "internal"
	ECodeNotFound             = "not_found"
	ECodeAccountDisabled      = "account_disabled"
	ECodePageLimitExceeded    = "page_limit_exceeded"
	ECodeQuotaExceeded        = "quota_exceeded"
	ECodeOverageLimitReached  = "overage_limit_reached"
	ECodeRefundNotAllowed     = "refund_not_allowed"
	ECodeServerBusy           = "server_busy"
	ECodeUnsupportedMediaType = "unsupported_media_type"
	// ECodeUnsupportedContent: a page-priced route got content it cannot
	// price (no PDF or image) and refuses it (415).
	ECodeUnsupportedContent = "unsupported_content"
	// ECodeUnsupportedEncoding: a Content-Encoding the gateway cannot
	// decode to count the body (415).
	ECodeUnsupportedEncoding = "unsupported_encoding"
	// ECodeTestKeyNotAllowed: a test key asked for what moves money
	// outside of a request (resuming a job).
	ECodeTestKeyNotAllowed = "test_key_not_allowed"
	// ECodeTestLimitExceeded: a test key's account made its route's
	// test_limit of test requests today.
	ECodeTestLimitExceeded = "test_limit_exceeded"
	// ECodeForbidden: the console refused a cross-origin form submission.
	ECodeForbidden = "forbidden"
)

// Refusals of the idempotency contract and of unpaid requests.
const (
	// ECodeIdempotencyKeyReused: the Idempotency-Key was used for another
	// request (another fingerprint) of the account (422).
	ECodeIdempotencyKeyReused = "idempotency_key_reused"
	// ECodeIdempotencyResponseNotStored: the key's request was charged, but
	// its response was too large to keep, so it cannot be replayed (409).
	ECodeIdempotencyResponseNotStored = "idempotency_response_not_stored"
	// ECodeRateLimited: too many zero-cost requests of one account on
	// one gateway (429, with Retry-After).
	ECodeRateLimited = "rate_limited"
	// ECodeCreditsOwed: an output-priced request was charged more than the
	// account could pay (a ledger entry's shortfall); its requests are
	// refused until credits bought bring the balance back.
	ECodeCreditsOwed = "credits_owed"
)

// ECodeTooManyPages: a request with more pages than its route's max_pages
// (413), refused before it is forwarded.
const ECodeTooManyPages = "too_many_pages"

// Error is a domain error with a stable code, a message safe to show to
// a client, and optional details that are rendered next to them.
type Error struct {
	Code    string
	Message string
	Details map[string]any
	// Err is the underlying cause; it is never shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// With returns a copy of e with one more detail.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = value
	return &c
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// ECodeInternal otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ECodeInternal
}

// Unavailable wraps a store failure (connection refused, timeout) so that
// the gateway fails closed with a 503 without showing the cause.
func Unavailable(err error) *Error {
	return &Error{Code: ECodeMeteringUnavailable, Message: "metering is temporarily unavailable", Err: err}
}

// IdempotencyKeyReused is the refusal of a Reserve whose idempotency key
// is held or committed for another request: both stores say the same.
func IdempotencyKeyReused() *Error {
	return Errorf(ECodeIdempotencyKeyReused,
		"this Idempotency-Key was already used for a different request (method, path, content type or body); use a new key")
}

// CreditsOwed is the refusal of an account that owes the shortfall of an
// output-priced commit (see LedgerEntry.Shortfall): owes credits more than
// its overage cap lets it owe.
func CreditsOwed(required, available, owes Credits) error {
	e := Errorf(ECodeCreditsOwed, "this account owes %s credits for output it could not pay; buy credits to continue", owes)
	e.Details = map[string]any{"required": required, "available": available, "owed": owes}
	return e
}
