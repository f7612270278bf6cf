package meter

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// MaxCredits bounds every amount and balance: 2^53 milli-credits, where
// the doubles of Redis's Lua stop being exact. Both stores accept and
// refuse the same amounts.
const MaxCredits = Credits(1 << 53)

// Limits of caller-chosen strings kept in a store.
const (
	MaxRefLen  = 128 // reservation ids
	MaxIdemLen = 255 // idempotency keys
	MaxTextLen = 1024
	// MaxFingerprintLen bounds ReserveRequest.Fingerprint: the gateway's
	// is a hex SHA-256 (64).
	MaxFingerprintLen = 128
	// MaxResponseLen bounds CommitRequest.Response: responses are kept in
	// the store for as long as their key.
	MaxResponseLen = 1 << 20
)

// fingerprintOK reports whether fp holds only what a fingerprint may
// ([0-9A-Za-z_.:-]): the stores keep it next to separators of their own.
// A loop, not a regexp: it runs on every reservation.
func fingerprintOK(fp string) bool {
	for i := 0; i < len(fp); i++ {
		switch c := fp[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// The checks below are the ones every Store applies before touching its
// data, so that both stores refuse the same requests with the same codes.

func invalid(format string, args ...any) error { return Errorf(ECodeInvalid, format, args...) }

// CheckAmount checks a non-negative amount of credits.
func CheckAmount(what string, c Credits) error {
	if c < 0 || c > MaxCredits {
		return invalid("%s must be between 0 and %s credits", what, MaxCredits)
	}
	return nil
}

func checkLen(what, s string, n int) error {
	if len(s) > n {
		return invalid("%s is longer than %d bytes", what, n)
	}
	return nil
}

// Validate checks a reservation request.
func (r ReserveRequest) Validate() error {
	if err := ValidateAccountID(r.AccountID); err != nil {
		return err
	}
	if err := CheckAmount("reservation amount", r.Amount); err != nil {
		return err
	}
	if r.Minimum < 0 || r.Minimum > r.Amount {
		return invalid("a reservation's minimum must be between 0 and its amount")
	}
	if r.ID == "" || len(r.ID) > MaxRefLen {
		return invalid("reservation id must be 1 to %d bytes", MaxRefLen)
	}
	if strings.HasPrefix(r.ID, KeptReplyPrefix) {
		return invalid("reservation ids must not start with %q", KeptReplyPrefix)
	}
	if strings.HasPrefix(r.ID, JobHoldPrefix) {
		// The holds of jobs (see jobs.go) live among reservations.
		return invalid("reservation ids starting with %q are reserved for jobs", JobHoldPrefix)
	}
	if r.TTL <= 0 {
		return invalid("reservation TTL must be positive")
	}
	if err := checkLen("idempotency key", r.IdempotencyKey, MaxIdemLen); err != nil {
		return err
	}
	if len(r.Fingerprint) > MaxFingerprintLen || !fingerprintOK(r.Fingerprint) {
		return invalid("fingerprint must be at most %d letters, digits or _.:-", MaxFingerprintLen)
	}
	return checkPeriod(r.Period)
}

// Validate checks a commit request. An impossible reservation id is
// reported as not found, like an unknown one.
func (c CommitRequest) Validate() error {
	if err := ValidateAccountID(c.AccountID); err != nil {
		return err
	}
	if err := CheckAmount("commit amount", c.Amount); err != nil {
		return err
	}
	if c.ReservationID == "" || len(c.ReservationID) > MaxRefLen || strings.HasPrefix(c.ReservationID, KeptReplyPrefix) {
		return Errorf(ECodeReservationNotFound, "reservation not found")
	}
	for _, f := range [...]struct{ what, v string }{
		{"description", c.Description}, {"route", c.Route}, {"request id", c.RequestID},
	} {
		if err := checkLen(f.what, f.v, MaxTextLen); err != nil {
			return err
		}
	}
	if strings.ContainsRune(c.Route, 0) {
		return invalid("route must not contain NUL")
	}
	if c.Pages < 0 {
		return invalid("pages must not be negative")
	}
	if len(c.Response) > MaxResponseLen {
		return invalid("a stored response is at most %d bytes", MaxResponseLen)
	}
	return nil
}

// Validate checks a grant.
func (g Grant) Validate() error {
	if err := ValidateAccountID(g.AccountID); err != nil {
		return err
	}
	switch {
	case g.Type != EntryPurchase && g.Type != EntryAdjustment:
		return invalid("grant type must be %q or %q", EntryPurchase, EntryAdjustment)
	case g.Amount == 0:
		return invalid("grant amount must not be 0")
	case g.Type == EntryPurchase && g.Amount < 0:
		return invalid("a purchase must be positive; use an adjustment to remove credits")
	case g.Amount > MaxCredits || g.Amount < -MaxCredits:
		return invalid("grant amount out of range")
	}
	if err := checkLen("description", g.Description, MaxTextLen); err != nil {
		return err
	}
	return checkLen("idempotency key", g.IdempotencyKey, MaxIdemLen)
}

// Validate checks a refund's account, amount and description; the entry
// id's form is the store's.
func (r Refund) Validate() error {
	if err := ValidateAccountID(r.AccountID); err != nil {
		return err
	}
	if err := CheckAmount("refund amount", r.Amount); err != nil {
		return err
	}
	return checkLen("description", r.Description, MaxTextLen)
}

// Validate checks a key record before it is stored.
func (k Key) Validate() error {
	if err := ValidateAccountID(k.AccountID); err != nil {
		return err
	}
	if !sha256Hex.MatchString(k.Hash) {
		return invalid("key hash must be a lowercase hex SHA-256 (see meter.HashKey)")
	}
	if k.Mode != ModeLive && k.Mode != ModeTest {
		return invalid("key mode must be %q or %q", ModeLive, ModeTest)
	}
	if len(k.Prefix) > 32 || len(k.Last4) > 8 {
		return invalid("key prefix or last4 too long")
	}
	return nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// IsKeyHash reports whether h has the form of HashKey's result.
func IsKeyHash(h string) bool { return sha256Hex.MatchString(h) }

// LedgerEntryID matches the ledger entry ids of every store: "<ms>-<seq>",
// which sort by time (Redis stream ids).
var LedgerEntryID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// Validate checks a ledger query and returns its effective limit (0 means
// 50; at most 1000).
func (q LedgerQuery) Validate() (limit int, err error) {
	if err := ValidateAccountID(q.AccountID); err != nil {
		return 0, err
	}
	if q.Limit < 0 {
		return 0, invalid("limit must not be negative")
	}
	if q.Before != "" && !LedgerEntryID.MatchString(q.Before) {
		return 0, invalid("cursor %q is not a ledger entry id", q.Before)
	}
	if q.Offset < 0 || q.Offset > MaxLedgerOffset {
		return 0, invalid("offset must be between 0 and %d: page further with the cursor", MaxLedgerOffset)
	}
	return q.PageLimit(), nil
}

// PageLimit is the number of entries a page of the query holds: 50 when
// the limit is unset, at most 1000. The stores call it on a query the
// wrapper (Validated) has checked.
func (q LedgerQuery) PageLimit() int {
	switch {
	case q.Limit <= 0:
		return 50
	case q.Limit > 1000:
		return 1000
	}
	return q.Limit
}

// ValidateAmounts checks the quota and overage amounts of settings.
func (s Settings) ValidateAmounts() error {
	if s.MonthlyQuota < 0 || s.OverageCap < 0 || s.MonthlyQuota > MaxCredits || s.OverageCap > MaxCredits {
		return invalid("monthly_quota and overage_cap must be between 0 and %s credits", MaxCredits)
	}
	return nil
}

// Validate checks settings set on an account (or a plan, which has no
// creation time: time.Now): the one place settings rules are written. The
// rates' names are checked against the gateway's routes by the caller
// (pricing.Scope.Check), which knows them.
func (s Settings) Validate(created time.Time) error {
	for k, v := range s.Rates {
		if k == "" || v < 0 {
			return invalid("rates: %q must be a named, non-negative number of credits", k)
		}
	}
	switch {
	case s.PageLimit < 0:
		return invalid("page_limit must not be negative")
	case s.RetentionDays < 0 || s.RetentionDays > 3650:
		return invalid("retention_days must be between 0 (the default, 30) and 3650")
	case s.MonthlyQuota < 0, s.OverageCap < 0, s.LowBalanceThreshold < 0:
		return invalid("monthly_quota, overage_cap and low_balance_threshold must not be negative")
	}
	if err := s.ValidateAmounts(); err != nil {
		return err
	}
	if s.WebhookURL != "" || s.WebhookSecret != "" {
		if err := CheckWebhook(s.WebhookURL, s.WebhookSecret); err != nil {
			return invalid("settings: %v (webhook_url and webhook_secret go together)", err)
		}
	}
	_, err := s.PeriodAt(time.Now(), created) // checks time_zone and period_anchor
	return err
}

// CheckWebhook checks a webhook endpoint and its secret.
func CheckWebhook(rawURL, secret string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook URL %q: expected an http:// or https:// URL", rawURL)
	}
	_, err = WebhookKey(secret)
	return err
}

// WebhookKey decodes a "whsec_<base64>" webhook signing secret (Standard
// Webhooks).
func WebhookKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 16 {
		return nil, errors.New("webhook secret: expected whsec_ and the base64 of at least 16 random bytes")
	}
	return key, nil
}
