package meter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Mode is the mode of an API key.
type Mode string

// Key modes. Test keys are priced like live keys but never move money.
const (
	ModeLive Mode = "live"
	ModeTest Mode = "test"
)

// Account is a customer's credit account. All amounts are Credits
// (milli-credits).
type Account struct {
	ID string `json:"id"`
	// Balance is the prepaid balance: the sum of the account's ledger.
	Balance Credits `json:"balance"`
	// Reserved is the sum of the account's active (unexpired) reservations.
	Reserved Credits `json:"reserved"`
	// Available is Balance minus Reserved: what a new request can spend.
	Available Credits   `json:"available"`
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the settings last changed (CreateAccount, then
	// each UpdateSettings).
	UpdatedAt time.Time `json:"updated_at"`
	// Settings are the account's own overrides of the gateway's defaults.
	Settings Settings `json:"settings"`
	// TotalPurchased and TotalUsed are lifetime sums: purchases (and
	// positive adjustments), and usage net of refunds.
	TotalPurchased Credits `json:"total_purchased"`
	TotalUsed      Credits `json:"total_used"`
	// Quota and Overage are the state of the current period, as of the
	// last store call that carried a period (see ReserveRequest.Period).
	Quota   QuotaState   `json:"quota"`
	Overage OverageState `json:"overage"`
	// Grants are the credit grants in the balance, in spending order, on
	// stores that keep them (GrantStore).
	Grants []CreditGrant `json:"grants,omitempty"`
}

// QuotaState is the monthly free quota of the current period.
type QuotaState struct {
	Limit     Credits   `json:"limit"`
	Used      Credits   `json:"used"`
	Reserved  Credits   `json:"reserved"`
	Remaining Credits   `json:"remaining"`
	ResetsAt  time.Time `json:"resets_at,omitempty"`
}

// OverageState is the postpaid overage of the current period.
type OverageState struct {
	Cap       Credits `json:"cap"`
	Used      Credits `json:"used"`
	Reserved  Credits `json:"reserved"`
	Remaining Credits `json:"remaining"`
}

// Settings are per-account overrides, set through the admin API.
type Settings struct {
	// Plan names the account's plan (see Plan): its settings apply where
	// the account's own are not set. Default: none (accounts created
	// without one get the app's default_plan).
	Plan string `json:"plan,omitempty"`
	// Enabled, when false, refuses every request of the account with 403
	// account_disabled. Default (unset): enabled.
	Enabled *bool `json:"enabled,omitempty"`
	// Rates override the routes' rates by name: "<route>.<rate>" for one
	// route ("convert.pages"), or "<rate>" where only one route has that
	// rate (a per_page rule's line name, "pages" by default, a page class,
	// a tier "pages.5"). See pricing.Scope.
	Rates map[string]Credits `json:"rates,omitempty"`
	// PageLimit is the most pages one request may carry; more gets 413
	// page_limit_exceeded. 0: no limit.
	PageLimit int `json:"page_limit,omitempty"`
	// MonthlyQuota is the free credits of each period, used before the
	// prepaid balance; unused quota does not roll over. 0: none.
	MonthlyQuota Credits `json:"monthly_quota,omitempty"`
	// QuotaUnit names the quota's unit in messages ("scans"). Default
	// "credits".
	QuotaUnit string `json:"quota_unit,omitempty"`
	// OverageCap is the postpaid credits allowed each period once quota and
	// prepaid balance are spent: the balance may go that far below zero. 0:
	// no overage.
	OverageCap Credits `json:"overage_cap,omitempty"`
	// LowBalanceThreshold: crossing it downwards raises a low-balance
	// event. 0: none.
	LowBalanceThreshold Credits `json:"low_balance_threshold,omitempty"`
	// TimeZone is the IANA time zone of the account's periods. Default UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// PeriodAnchor is AnchorMonthStart (default) or AnchorAnniversary.
	PeriodAnchor string `json:"period_anchor,omitempty"`
	// RetentionDays is how many days the upstream keeps the account's job
	// results, shown in its profile; the gateway keeps finished job records
	// that long too. 0: the gateway's default (30).
	RetentionDays int `json:"retention_days,omitempty"`
	// WebhookURL receives the account's webhook events, besides the
	// gateway's own webhooks. Default: none.
	WebhookURL string `json:"webhook_url,omitempty"`
	// WebhookSecret signs what WebhookURL receives: "whsec_" and the
	// base64 of the key (Standard Webhooks). Required with WebhookURL.
	WebhookSecret string `json:"webhook_secret,omitempty"`
}

// IsEnabled reports whether the account may make requests.
func (s Settings) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// Key is the stored record of an API key. The secret itself is never
// stored: Hash is its SHA-256.
type Key struct {
	// ID is KeyID(Hash).
	ID        string    `json:"id"`
	Hash      string    `json:"-"`
	AccountID string    `json:"account"`
	Mode      Mode      `json:"mode"`
	Prefix    string    `json:"prefix"`
	Last4     string    `json:"last4"`
	CreatedAt time.Time `json:"created_at"`
	// RevokedAt is when the key was revoked (zero: active).
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// HashKey returns the hex SHA-256 of an API key secret, the form in which
// keys are stored and looked up.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Ledger entry types.
const (
	EntryPurchase   = "purchase"
	EntryUsage      = "usage"
	EntryRefund     = "refund"
	EntryAdjustment = "adjustment"
)

// KeyID is the public id of a key: the first 16 hex digits of its hash.
// It names the key in listings and revocations without revealing it.
func KeyID(hash string) string {
	if len(hash) < 16 {
		return hash
	}
	return "key_" + hash[:16]
}

// LedgerEntry is one movement of an account's balance. Amount is signed
// (usage is negative); BalanceAfter is the balance right after it, written
// in the same atomic step as the balance change.
type LedgerEntry struct {
	ID            string  `json:"id"`
	AccountID     string  `json:"account"`
	Type          string  `json:"type"`
	Amount        Credits `json:"amount"`
	BalanceAfter  Credits `json:"balance_after"`
	Description   string  `json:"description,omitempty"`
	Route         string  `json:"route,omitempty"`
	RequestID     string  `json:"request_id,omitempty"`
	ReservationID string  `json:"reservation_id,omitempty"`
	// Late is set on a usage entry whose reservation had expired before it
	// was settled (see Store.Commit).
	Late bool `json:"late,omitempty"`
	// Quota and Overage are the parts of a usage entry taken from the
	// period's free quota and from the overage (Amount is the part taken
	// from the balance, overage included: it may take it below zero).
	Quota   Credits `json:"quota,omitempty"`
	Overage Credits `json:"overage,omitempty"`
	// Shortfall is the part of a usage entry's Amount that the account
	// could not pay from any pool: an output-priced commit charged it in
	// full and the balance went below what the account may owe (see
	// CommitRequest.Uncapped). Until bought back, ECodeCreditsOwed.
	Shortfall Credits `json:"shortfall,omitempty"`
	// Granted is the part of Amount taken from (a refund: given back to;
	// grant, expiration, grant_void: of) credit grants, and GrantIDs the
	// grants it names, comma-separated.
	Granted  Credits `json:"granted,omitempty"`
	GrantIDs string  `json:"grant_ids,omitempty"`
	// Pages is the pages a usage entry paid for.
	Pages int `json:"pages,omitempty"`
	// RefundOf names the usage entry a refund refunds.
	RefundOf string `json:"refund_of,omitempty"`
	// PaymentIntentID is the payment a purchase or reversal entry belongs
	// to (DocExtract's payment_intent_id), and ExternalID the payment
	// provider's event that made it (see PaymentStore).
	PaymentIntentID string `json:"payment_intent_id,omitempty"`
	ExternalID      string `json:"external_id,omitempty"`
	// JobID is the job a usage entry charged pages of (creditgate's id,
	// also in ReservationID), and UpstreamJobID the upstream's id of it
	// when known at the charge: the job id DocExtract's usage entries
	// carry. Empty on other entries.
	JobID         string    `json:"job_id,omitempty"`
	UpstreamJobID string    `json:"upstream_job_id,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// ReserveRequest asks to hold Amount of an account's available credits.
type ReserveRequest struct {
	AccountID string
	// ID is the reservation id, chosen by the caller (unique).
	ID     string
	Amount Credits
	// TTL after which an unsettled reservation is released by the store.
	TTL time.Duration
	// IdempotencyKey, when set, makes a retried request with the same key
	// on the same account not charged twice: see Reservation.Replayed.
	IdempotencyKey string
	// Fingerprint identifies the request the IdempotencyKey was sent with
	// (the gateway's digest of method, route and body; see MaxFingerprintLen).
	// While the key is held or committed, a Reserve with the same key and
	// another fingerprint is ECodeIdempotencyKeyReused.
	Fingerprint string
	// Period is the account's current quota period (Settings.PeriodAt on
	// the gateway's clock). When its ID is newer than the store's, the
	// period's quota and overage start afresh; an older one (a gateway
	// whose clock lags) is read as the store's current period.
	Period Period
	// Minimum, when above 0 and below Amount, lets an account whose pools
	// cannot give Amount hold all they can give, if that is at least
	// Minimum (Reservation.Amount says how much was held): Amount is an
	// estimate, and the commit charges the real cost (CommitRequest.
	// Uncapped). A refusal then names Minimum as what was required.
	Minimum Credits
}

// Reservation is the answer to a successful Reserve.
type Reservation struct {
	ID        string
	AccountID string
	Amount    Credits
	// Replayed is true when the idempotency key names a request that was
	// already charged: nothing was reserved now, and ID, Amount are the
	// original reservation and what it was charged.
	Replayed bool
	// Response is, on a replay, what the original commit stored
	// (CommitRequest.Response); nil when it stored none.
	Response []byte
	// Balance and Available after the reservation.
	Balance   Credits
	Available Credits
	// Quota is the quota state after the reservation.
	Quota QuotaState
	// Overage is the overage state after the reservation.
	Overage OverageState
}

// CommitRequest settles a reservation as used.
type CommitRequest struct {
	AccountID     string
	ReservationID string
	// Amount is the actual cost; at most the reserved amount is debited,
	// unless Uncapped.
	Amount Credits
	// Uncapped charges Amount in full even above the hold (the hold was an
	// estimate: output pages): the excess is taken from the pools in the
	// usual order in the same atomic step, and what they cannot give is
	// charged to the balance all the same, recorded as the entry's
	// Shortfall with an EventShortfall.
	Uncapped    bool
	Description string
	Route       string
	RequestID   string
	// Pages is recorded in the ledger entry and the usage by route.
	Pages int
	// Response, when the reservation holds an idempotency key, is stored
	// in the same atomic step as the charge, for as long as the key is
	// kept, and returned by a Reserve that replays the key (see
	// Reservation.Response). Opaque to the store; at most MaxResponseLen.
	Response []byte
}

// Settlement is the outcome of Commit or Void.
type Settlement struct {
	// Charged is what was charged from every pool: quota, balance and
	// overage (0 for a void). The ledger entry's Amount is the balance and
	// overage parts only.
	Charged   Credits
	Balance   Credits
	Available Credits
	// EntryID is the ledger entry of the debit, if any.
	EntryID string
	// Late is true when the reservation had already expired: the charge was
	// taken from what the account had available, up to Amount.
	Late bool
	// Shortfall is the part of Charged the pools could not give (see
	// CommitRequest.Uncapped).
	Shortfall Credits
	// Quota is the quota state after the settlement.
	Quota QuotaState
	// Overage is the overage state after the settlement.
	Overage OverageState
}

// Grant adds (or with a negative amount, removes) credits outside of a
// request: purchases and adjustments.
type Grant struct {
	AccountID   string
	Amount      Credits
	Type        string // EntryPurchase or EntryAdjustment
	Description string
	// IdempotencyKey, when set, makes a retried grant recorded once.
	IdempotencyKey string
}

// LedgerQuery selects ledger entries of one account, newest first.
type LedgerQuery struct {
	AccountID string
	// Limit is the maximum number of entries (0 means 50, at most 1000).
	Limit int
	// Type keeps only entries of this type ("" keeps all).
	Type string
	// From and To keep entries created in [From, To) (zero: unbounded).
	From, To time.Time
	// Before is a cursor: only entries older than this entry id.
	Before string
	// Offset skips this many of the selected entries first (after the
	// cursor, if any): the page DocExtract's clients ask for with
	// ?offset=. At most MaxLedgerOffset, since each page reads the
	// entries it skips.
	Offset int
}

// MaxLedgerOffset bounds LedgerQuery.Offset: a client pages further with
// the cursor, which costs nothing to skip.
const MaxLedgerOffset = 10000

// Refund gives back (part of) a usage entry's balance debit, at most once
// per entry and never more than it took.
type Refund struct {
	AccountID string
	// EntryID is the usage entry refunded.
	EntryID string
	// Amount to refund; 0 refunds the whole entry.
	Amount      Credits
	Description string
}

// RouteUsage is one route's usage over a period.
type RouteUsage struct {
	Route    string  `json:"route"`
	Requests int64   `json:"requests"`
	Pages    int64   `json:"pages"`
	Credits  Credits `json:"credits"`
}

// Store is the persistence of accounts, keys, reservations and the ledger:
// every entity's interface. Every method that moves credits is atomic and
// writes its ledger entry in the same step. Implementations return *Error
// values with the codes above for domain refusals, and Unavailable(err)
// when the backend cannot be reached. A consumer depends on the smallest
// of these interfaces it uses.
type Store interface {
	AccountStore
	KeyStore
	MoneyStore
	LedgerStore
	UsageStore
	EventStore
	JobStore
	PlanStore
	// Close releases the store's resources.
	Close() error
}

// AccountReader reads an account: what most consumers need of the accounts.
type AccountReader interface {
	// Account returns an account's balances and settings.
	// ECodeAccountNotFound.
	Account(ctx context.Context, id string) (Account, error)
}

// AccountStore keeps accounts and their settings.
type AccountStore interface {
	AccountReader
	// CreateAccount creates an account, with initial credits recorded as a
	// purchase when positive. ECodeAccountExists if it exists.
	CreateAccount(ctx context.Context, id string, initial Credits) (Account, error)
	// UpdateSettings replaces an account's settings; its limits in force
	// become the settings' own (see PlanStore.ApplySettings).
	UpdateSettings(ctx context.Context, id string, s Settings) (Account, error)
	// ListAccounts returns account ids in order, after a cursor id.
	ListAccounts(ctx context.Context, after string, limit int) ([]string, error)
}

// KeyStore keeps API keys, by the SHA-256 of their secret.
type KeyStore interface {
	// AddKey stores a key record (its Hash, never the secret).
	AddKey(ctx context.Context, k Key) error
	// LookupKey finds a key by the SHA-256 of its secret.
	// ECodeInvalidAPIKey when there is none.
	LookupKey(ctx context.Context, hash string) (Key, error)
	// ListKeys returns an account's keys, revoked ones included, oldest
	// first (see SortKeys).
	ListKeys(ctx context.Context, account string) ([]Key, error)
	// RevokeKey revokes a key by its KeyID; LookupKey stops finding it.
	// ECodeNotFound when the account has no such key.
	RevokeKey(ctx context.Context, account, keyID string) (Key, error)
}

// MoneyStore moves credits: every method is atomic and writes its
// ledger entry in the same step.
type MoneyStore interface {
	// Grant adds or removes credits with a ledger entry.
	Grant(ctx context.Context, g Grant) (LedgerEntry, error)
	// Reserve holds credits. ECodeInsufficientCredits (details required,
	// available) when the available balance cannot cover it,
	// ECodeIdempotencyConflict when a request with the same idempotency key
	// is still in flight, ECodeIdempotencyKeyReused when the key is held
	// or committed for a request of another fingerprint.
	Reserve(ctx context.Context, r ReserveRequest) (Reservation, error)
	// Commit debits min(Amount, reserved) (Amount when Uncapped) and
	// releases the rest. Committing
	// the same reservation again returns the first settlement and charges
	// nothing more. A reservation that expired before its commit is charged
	// from the available balance, up to Amount, and marked Late.
	Commit(ctx context.Context, c CommitRequest) (Settlement, error)
	// Void releases a reservation and charges nothing. Voiding an expired
	// or voided reservation is a no-op; a committed one is
	// ECodeReservationSettled.
	Void(ctx context.Context, accountID, reservationID string) (Settlement, error)
	// Refund gives back (part of) what a usage entry took from the balance
	// (-entry.Amount), once per entry, with a refund entry.
	// ECodeNotFound if there is no such usage entry, ECodeRefundNotAllowed
	// if it was refunded already or the amount exceeds what it took.
	Refund(ctx context.Context, r Refund) (LedgerEntry, error)
}

// LedgerStore reads and trims the ledger.
type LedgerStore interface {
	// Ledger lists entries, newest first.
	Ledger(ctx context.Context, q LedgerQuery) ([]LedgerEntry, error)
	// LedgerTotal counts the entries q selects, ignoring its Limit,
	// Offset and cursor: the "total" of a page. It reads every entry in
	// range (a type filter decodes each), so its cost grows with the
	// ledger the account keeps (its retention).
	LedgerTotal(ctx context.Context, q LedgerQuery) (int, error)
	// TrimLedger removes ledger entries older than before and returns how
	// many; balances never depend on the ledger's history.
	TrimLedger(ctx context.Context, account string, before time.Time) (int64, error)
}

// UsageStore reads usage by route, counted when requests and jobs are charged.
type UsageStore interface {
	// Usage returns an account's usage by route in a period (the zero
	// Period: usage counted while the account had no period), most
	// credits first.
	Usage(ctx context.Context, account string, period Period) ([]RouteUsage, error)
	// UsageSeries returns an account's usage per route in the UTC day or
	// hour buckets that start in [From, To), by bucket then route: what
	// Commit and job charges counted, in the same atomic step as the
	// usage by route. Hours are kept for HourlyDays days, days as long as
	// the account. ECodeInvalid for a bad query (see SeriesQuery).
	UsageSeries(ctx context.Context, q SeriesQuery) ([]UsagePoint, error)
}

// EventStore is the webhook events' outbox, read by the delivery worker.
type EventStore interface {
	// ClaimEvents leases up to limit pending webhook events, of any
	// accounts, to owner for lease: events that are due (not delayed by
	// RetryEvent) and not under a lease that has not ended yet (whoever's
	// it is), so that gateways sharing a store do not deliver the same
	// event at once. An event whose lease ends unacknowledged is claimable
	// again: delivery is at least once.
	ClaimEvents(ctx context.Context, owner string, lease time.Duration, limit int) ([]Event, error)
	// AckEvent removes a delivered event from the account's outbox.
	// Acknowledging an event that is gone is a no-op.
	AckEvent(ctx context.Context, account, id string) error
	// RetryEvent puts a claimed event back, claimable after delay (on the
	// store's clock), and counts the attempt. ECodeNotFound if it is gone.
	RetryEvent(ctx context.Context, account, id string, delay time.Duration) error
	// PendingEvents returns up to limit of an account's webhook events not
	// delivered yet (Attempts counts its failed deliveries), soonest due
	// first, and how many there are. It claims nothing.
	PendingEvents(ctx context.Context, account string, limit int) ([]Event, int, error)
	// ReindexEvents scans every account's outbox and makes sure that
	// ClaimEvents finds the ones with events, and returns how many have
	// some: a store whose pending index is written apart from the outbox
	// (redisstore) may lose an index write; workers call it now and then.
	ReindexEvents(ctx context.Context) (int, error)
}
