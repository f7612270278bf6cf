package meter

import (
	"context"
	"strings"
	"time"
)

// Validated wraps a Store so that every input is checked once, here,
// before the store sees it, with the same codes on both stores. The stores
// do not check again: every caller (the app, the CLI, the tests and
// storetest) goes through this wrapper. Checks that need the store's data
// (a report's classes against its job) stay in the stores.
func Validated(s Store) Store {
	if v, ok := s.(validated); ok {
		return v
	}
	return validated{s}
}

type validated struct{ Store }

// Unwrap returns the store behind the checks, for the optional interfaces
// (payments, rollup) that callers find by type assertion.
func (v validated) Unwrap() Store { return v.Store }

// ValidateReservationRef checks the account and reservation id of a
// settle: an impossible id is reported as not found, like an unknown one.
func ValidateReservationRef(account, id string) error {
	if err := ValidateAccountID(account); err != nil {
		return err
	}
	if id == "" || len(id) > MaxRefLen || strings.HasPrefix(id, KeptReplyPrefix) {
		return Errorf(ECodeReservationNotFound, "reservation not found")
	}
	return nil
}

func (v validated) CreateAccount(ctx context.Context, id string, initial Credits) (Account, error) {
	if err := ValidateAccountID(id); err != nil {
		return Account{}, err
	}
	if err := CheckAmount("initial credits", initial); err != nil {
		return Account{}, err
	}
	return v.Store.CreateAccount(ctx, id, initial)
}

func (v validated) Account(ctx context.Context, id string) (Account, error) {
	if err := ValidateAccountID(id); err != nil {
		return Account{}, err
	}
	return v.Store.Account(ctx, id)
}

func (v validated) UpdateSettings(ctx context.Context, id string, s Settings) (Account, error) {
	if err := ValidateAccountID(id); err != nil {
		return Account{}, err
	}
	if err := s.Limits().Validate(); err != nil {
		return Account{}, err
	}
	return v.Store.UpdateSettings(ctx, id, s)
}

func (v validated) ApplySettings(ctx context.Context, id string, own *Settings, l Limits) (Account, error) {
	if err := ValidateAccountID(id); err != nil {
		return Account{}, err
	}
	if err := l.Validate(); err != nil {
		return Account{}, err
	}
	return v.Store.ApplySettings(ctx, id, own, l)
}

func (v validated) AddKey(ctx context.Context, k Key) error {
	if err := k.Validate(); err != nil {
		return err
	}
	return v.Store.AddKey(ctx, k)
}

func (v validated) LookupKey(ctx context.Context, hash string) (Key, error) {
	if !IsKeyHash(hash) {
		return Key{}, Errorf(ECodeInvalidAPIKey, "invalid API key")
	}
	return v.Store.LookupKey(ctx, hash)
}

func (v validated) ListKeys(ctx context.Context, account string) ([]Key, error) {
	if err := ValidateAccountID(account); err != nil {
		return nil, err
	}
	return v.Store.ListKeys(ctx, account)
}

func (v validated) RevokeKey(ctx context.Context, account, keyID string) (Key, error) {
	if err := ValidateAccountID(account); err != nil {
		return Key{}, err
	}
	return v.Store.RevokeKey(ctx, account, keyID)
}

func (v validated) Grant(ctx context.Context, g Grant) (LedgerEntry, error) {
	if err := g.Validate(); err != nil {
		return LedgerEntry{}, err
	}
	return v.Store.Grant(ctx, g)
}

func (v validated) Reserve(ctx context.Context, r ReserveRequest) (Reservation, error) {
	if err := r.Validate(); err != nil {
		return Reservation{}, err
	}
	return v.Store.Reserve(ctx, r)
}

func (v validated) Commit(ctx context.Context, c CommitRequest) (Settlement, error) {
	if err := c.Validate(); err != nil {
		return Settlement{}, err
	}
	return v.Store.Commit(ctx, c)
}

func (v validated) Void(ctx context.Context, account, id string) (Settlement, error) {
	if err := ValidateReservationRef(account, id); err != nil {
		return Settlement{}, err
	}
	return v.Store.Void(ctx, account, id)
}

func (v validated) Refund(ctx context.Context, r Refund) (LedgerEntry, error) {
	if err := r.Validate(); err != nil {
		return LedgerEntry{}, err
	}
	if !LedgerEntryID.MatchString(r.EntryID) {
		return LedgerEntry{}, Errorf(ECodeNotFound, "no ledger entry %q", r.EntryID)
	}
	return v.Store.Refund(ctx, r)
}

func (v validated) Ledger(ctx context.Context, q LedgerQuery) ([]LedgerEntry, error) {
	if _, err := q.Validate(); err != nil {
		return nil, err
	}
	return v.Store.Ledger(ctx, q)
}

func (v validated) LedgerTotal(ctx context.Context, q LedgerQuery) (int, error) {
	if _, err := q.Validate(); err != nil {
		return 0, err
	}
	return v.Store.LedgerTotal(ctx, q)
}

func (v validated) TrimLedger(ctx context.Context, account string, before time.Time) (int64, error) {
	if err := ValidateAccountID(account); err != nil {
		return 0, err
	}
	return v.Store.TrimLedger(ctx, account, before)
}

func (v validated) Usage(ctx context.Context, account string, p Period) ([]RouteUsage, error) {
	if err := ValidateAccountID(account); err != nil {
		return nil, err
	}
	return v.Store.Usage(ctx, account, p)
}

func (v validated) UsageSeries(ctx context.Context, q SeriesQuery) ([]UsagePoint, error) {
	if err := ValidateAccountID(q.AccountID); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return v.Store.UsageSeries(ctx, q)
}

func (v validated) AckEvent(ctx context.Context, account, id string) error {
	if err := ValidateAccountID(account); err != nil {
		return err
	}
	if ValidateEventID(id) != nil {
		return nil // no such event: acking what is gone is a no-op
	}
	return v.Store.AckEvent(ctx, account, id)
}

func (v validated) RetryEvent(ctx context.Context, account, id string, delay time.Duration) error {
	if err := ValidateAccountID(account); err != nil {
		return err
	}
	if err := ValidateEventID(id); err != nil {
		return err
	}
	return v.Store.RetryEvent(ctx, account, id, delay)
}

func (v validated) PendingEvents(ctx context.Context, account string, limit int) ([]Event, int, error) {
	if err := ValidateAccountID(account); err != nil {
		return nil, 0, err
	}
	return v.Store.PendingEvents(ctx, account, limit)
}

func (v validated) CreateJob(ctx context.Context, r JobRequest) (JobResult, error) {
	if err := r.Validate(); err != nil {
		return JobResult{}, err
	}
	return v.Store.CreateJob(ctx, r)
}

func (v validated) Job(ctx context.Context, account, id string) (Job, error) {
	if err := ValidateJobLookup(account, id); err != nil {
		return Job{}, err
	}
	return v.Store.Job(ctx, account, id)
}

func (v validated) AttachJob(ctx context.Context, account, id, upstreamID string) error {
	if err := ValidateJobLookup(account, id); err != nil {
		return err
	}
	if err := ValidateUpstreamJobID(upstreamID); err != nil {
		return err
	}
	return v.Store.AttachJob(ctx, account, id, upstreamID)
}

func (v validated) JobByUpstream(ctx context.Context, account, upstreamID string) (Job, error) {
	if err := ValidateJobLookup(account, upstreamID); err != nil {
		return Job{}, err
	}
	return v.Store.JobByUpstream(ctx, account, upstreamID)
}

func (v validated) ReportJob(ctx context.Context, r JobReport) (JobResult, error) {
	if err := r.Validate(); err != nil {
		return JobResult{}, err
	}
	return v.Store.ReportJob(ctx, r)
}

func (v validated) ResumeJob(ctx context.Context, account, id string, p Period, requestID string) (JobResult, error) {
	if err := (JobReport{AccountID: account, JobID: id, Period: p}).Validate(); err != nil {
		return JobResult{}, err
	}
	return v.Store.ResumeJob(ctx, account, id, p, requestID)
}

func (v validated) CancelJob(ctx context.Context, account, id string) (JobResult, error) {
	if err := ValidateJobLookup(account, id); err != nil {
		return JobResult{}, err
	}
	return v.Store.CancelJob(ctx, account, id)
}

func (v validated) PutPlan(ctx context.Context, p Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return v.Store.PutPlan(ctx, p)
}

// ValidatedPayments wraps a PaymentStore as Validated wraps a Store: a
// payment and a reversal are checked here, once, before the store.
func ValidatedPayments(p PaymentStore) PaymentStore {
	if v, ok := p.(validatedPayments); ok {
		return v
	}
	return validatedPayments{p}
}

type validatedPayments struct{ PaymentStore }

func (v validatedPayments) Purchase(ctx context.Context, p Payment) (PurchaseResult, error) {
	if err := p.Validate(); err != nil {
		return PurchaseResult{}, err
	}
	return v.PaymentStore.Purchase(ctx, p)
}

func (v validatedPayments) Reverse(ctx context.Context, r Reversal) (ReversalResult, error) {
	if err := r.Validate(); err != nil {
		return ReversalResult{}, err
	}
	return v.PaymentStore.Reverse(ctx, r)
}

// ValidatedGrants wraps a GrantStore as Validated wraps a Store: a
// grant's inputs are checked here, once, before the store.
func ValidatedGrants(g GrantStore) GrantStore {
	if v, ok := g.(validatedGrants); ok {
		return v
	}
	return validatedGrants{g}
}

type validatedGrants struct{ GrantStore }

func (v validatedGrants) CreateCreditGrant(ctx context.Context, g CreditGrantRequest) (CreditGrant, error) {
	if err := g.Validate(); err != nil {
		return CreditGrant{}, err
	}
	return v.GrantStore.CreateCreditGrant(ctx, g)
}

func (v validatedGrants) VoidCreditGrant(ctx context.Context, accountID, grantID string) (CreditGrant, error) {
	if err := ValidateAccountID(accountID); err != nil {
		return CreditGrant{}, err
	}
	if grantID == "" || len(grantID) > MaxRefLen {
		return CreditGrant{}, Errorf(ECodeGrantNotFound, "no credit grant %q", grantID)
	}
	return v.GrantStore.VoidCreditGrant(ctx, accountID, grantID)
}

func (v validatedGrants) CreditGrants(ctx context.Context, accountID string) ([]CreditGrant, error) {
	if err := ValidateAccountID(accountID); err != nil {
		return nil, err
	}
	return v.GrantStore.CreditGrants(ctx, accountID)
}
