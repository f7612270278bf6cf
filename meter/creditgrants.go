package meter

import (
	"context"
	"time"
)

// Credit grants: credits given (not bought) that may expire, spent before
// the paid balance. The spending order is quota, then credit grants
// (highest Priority first, then the soonest expiry, then the oldest), then
// the paid balance, then the overage. An account's Balance includes what
// its grants have left; Account.Grants shows each grant's remaining and
// expiry (docs/money-model.md, "Credit grants").
const (
	// EntryGrant is a credit grant's ledger entry (its amount joins the
	// balance), EntryExpiration what it had left when it expired, and
	// EntryGrantVoid what it had left when it was voided.
	EntryGrant      = "grant"
	EntryExpiration = "expiration"
	EntryGrantVoid  = "grant_void"

	// Grant states: GrantActive while spendable; an ended grant is listed
	// while a reservation still holds part of it.
	GrantActive  = "active"
	GrantExpired = "expired"
	GrantVoided  = "voided"

	// ECodeGrantNotFound: no active credit grant of that id (404).
	ECodeGrantNotFound = "grant_not_found"

	// MaxGrantPriority bounds CreditGrantRequest.Priority either way.
	MaxGrantPriority = 1_000_000
)

// CreditGrant is one credit grant of an account.
type CreditGrant struct {
	ID        string  `json:"id"`
	AccountID string  `json:"account"`
	Amount    Credits `json:"amount"`
	// Remaining is what is left of it, Held included; it is part of the
	// account's balance.
	Remaining Credits `json:"remaining"`
	// Held is the part reservations hold.
	Held        Credits    `json:"held"`
	Priority    int64      `json:"priority"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Description string     `json:"description,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	State       string     `json:"state"`
}

// CreditGrantRequest asks for a credit grant.
type CreditGrantRequest struct {
	AccountID string
	Amount    Credits
	// ExpiresAt is when it expires (by the store's clock); zero: never. It
	// must be in the future.
	ExpiresAt time.Time
	// Priority orders grants: higher is spent first (default 0).
	Priority    int64
	Description string
	// IdempotencyKey, when set, makes a retried grant recorded once: a
	// retry returns the first grant.
	IdempotencyKey string
}

// Validate checks a credit grant request.
func (g CreditGrantRequest) Validate() error {
	if err := ValidateAccountID(g.AccountID); err != nil {
		return err
	}
	switch {
	case g.Amount <= 0 || g.Amount > MaxCredits:
		return invalid("a credit grant's amount must be positive and at most the maximum")
	case g.Priority < -MaxGrantPriority || g.Priority > MaxGrantPriority:
		return invalid("priority must be within ±%d", MaxGrantPriority)
	}
	if err := checkLen("description", g.Description, MaxTextLen); err != nil {
		return err
	}
	return checkLen("idempotency key", g.IdempotencyKey, MaxIdemLen)
}

// GrantStore is the optional side of a Store that keeps credit grants
// (find it with StoreAs). Every operation of the store expires the
// account's grants due by its clock first, so an expired grant is never
// spent and never shown as remaining.
type GrantStore interface {
	// CreateCreditGrant adds a grant with a grant entry. A request whose
	// ExpiresAt is not after the store's now is ECodeInvalid.
	CreateCreditGrant(ctx context.Context, g CreditGrantRequest) (CreditGrant, error)
	// VoidCreditGrant ends an active grant now: what it has left, less
	// what reservations hold, leaves with a grant_void entry (the held
	// part when they release it). ECodeGrantNotFound otherwise.
	VoidCreditGrant(ctx context.Context, accountID, grantID string) (CreditGrant, error)
	// CreditGrants lists the account's grants in spending order: the
	// active ones, and ended ones a reservation still holds part of.
	CreditGrants(ctx context.Context, accountID string) ([]CreditGrant, error)
}
