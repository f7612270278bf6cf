package meter

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"
)

// The store-wide rollup (see package meter/rollup): sorted indexes of all
// accounts and gateway-wide usage totals, written now and then by one
// gateway at a time, outside the per-request steps, and read by the
// console. Every write here is off the hot path.

// Sort orders of the rollup's account indexes: largest or newest first,
// ties by id.
const (
	SortBalance  = "balance"
	SortUsage    = "usage"
	SortActivity = "activity"
)

// IndexSorts are the orders the rollup indexes.
var IndexSorts = []string{SortBalance, SortUsage, SortActivity}

// AccountSummary is what the rollup reads of one account.
type AccountSummary struct {
	ID        string
	Balance   Credits
	Reserved  Credits
	CreatedAt time.Time
	// PeriodCredits is the usage (credits charged) in the account's
	// current period, as the console's accounts page shows it.
	PeriodCredits Credits
	// LastActivity is the time of the newest ledger entry (zero: none).
	LastActivity time.Time
	// Days and Hours are the account's series points from SummaryQuery's
	// DaysFrom and HoursFrom (or its creation, if later) to now.
	Days, Hours []UsagePoint
}

// SummaryQuery says what AccountSummaries reads besides the balances.
type SummaryQuery struct {
	// Now is the instant the periods are taken at (the gateway's clock).
	Now time.Time
	// DaysFrom and HoursFrom start the series read; zero reads none.
	DaysFrom, HoursFrom time.Time
}

// RollupTotals is the store-wide usage of some buckets, and when the
// rollup that wrote them started (zero: no rollup ran yet).
type RollupTotals struct {
	Points []UsagePoint
	AsOf   time.Time
}

// RollupStore is what the rollup needs of a store besides Store. It is
// its own interface so that the Store interface stays as it is; the
// console type-asserts it.
type RollupStore interface {
	// AccountSummaries reads many accounts at once (a few round trips for
	// the whole batch); ids that do not exist are left out.
	AccountSummaries(ctx context.Context, ids []string, q SummaryQuery) ([]AccountSummary, error)
	// AcquireLease takes the named lease for owner, or extends it when
	// owner holds it already, until ttl from now (the store's clock). It
	// reports whether owner holds it.
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
	// StageIndex adds accounts to the indexes being built by run.
	StageIndex(ctx context.Context, run string, rows []AccountSummary) error
	// PublishIndex makes run's indexes the ones SortedAccounts reads, as
	// of asOf, and drops the previous ones.
	PublishIndex(ctx context.Context, run string, asOf time.Time) error
	// SortedAccounts pages through the published index by (a Sort key):
	// up to limit ids after the cursor (a next value it returned, or ""),
	// the cursor of the next page ("" at the end), and the index's time.
	SortedAccounts(ctx context.Context, by, after string, limit int) (ids []string, next string, asOf time.Time, err error)
	// WriteTotals replaces the store-wide totals of the buckets of
	// granularity g in [from, to) by points (summed over all accounts),
	// as of asOf.
	WriteTotals(ctx context.Context, g string, from, to time.Time, points []UsagePoint, asOf time.Time) error
	// Totals reads the store-wide totals of the buckets in [from, to).
	Totals(ctx context.Context, g string, from, to time.Time) (RollupTotals, error)
	// AddRefusals adds counts of refusals by code to the UTC day of day.
	AddRefusals(ctx context.Context, day time.Time, counts map[string]int64) error
	// Refusals sums the refusals by code of the UTC days in [from, to).
	Refusals(ctx context.Context, from, to time.Time) (map[string]int64, error)
	// ClaimOnce claims key for ttl, for an action that must happen once
	// whatever the gateway: claimed is true for the first caller; a later
	// one gets the value stored by SetOnce, or "" while the first is under
	// way.
	ClaimOnce(ctx context.Context, key string, ttl time.Duration) (value string, claimed bool, err error)
	// SetOnce records the outcome of a claimed action, kept for ttl.
	SetOnce(ctx context.Context, key, value string, ttl time.Duration) error
	// DropOnce frees a claim whose action failed, so that a retry acts.
	DropOnce(ctx context.Context, key string) error
}

// IndexKey is an account's key in the index by: it sorts (as bytes) in
// the index's order, largest or newest first, then by id.
func IndexKey(by string, s AccountSummary) string {
	var v int64
	switch by {
	case SortBalance:
		v = int64(s.Balance)
	case SortUsage:
		v = int64(s.PeriodCredits)
	case SortActivity:
		if !s.LastActivity.IsZero() {
			v = s.LastActivity.UnixMilli()
		} else {
			v = -1 << 62 // never active: last
		}
	}
	var b [8]byte
	// Flip the sign bit (signed order as unsigned), then every bit
	// (descending).
	binary.BigEndian.PutUint64(b[:], ^(uint64(v) ^ 1<<63))
	return hex.EncodeToString(b[:]) + ":" + s.ID
}

// IndexID is the account id of an IndexKey.
func IndexID(key string) string {
	if len(key) < 17 {
		return ""
	}
	return key[17:]
}

// Summarize reads one account's summary through the Store interface: the
// stores' AccountSummaries where one account at a time costs nothing more
// (the embedded store).
func Summarize(ctx context.Context, s Store, id string, q SummaryQuery) (AccountSummary, error) {
	a, err := s.Account(ctx, id)
	if err != nil {
		return AccountSummary{}, err
	}
	sum := AccountSummary{ID: id, Balance: a.Balance, Reserved: a.Reserved, CreatedAt: a.CreatedAt}
	if p, err := a.Settings.PeriodAt(q.Now, a.CreatedAt); err == nil {
		routes, err := s.Usage(ctx, id, p)
		if err != nil {
			return sum, err
		}
		for _, u := range routes {
			sum.PeriodCredits += u.Credits
		}
	}
	last, err := s.Ledger(ctx, LedgerQuery{AccountID: id, Limit: 1})
	if err != nil {
		return sum, err
	}
	if len(last) > 0 {
		sum.LastActivity = last[0].CreatedAt
	}
	read := func(g string, from time.Time) ([]UsagePoint, error) {
		if from.IsZero() {
			return nil, nil
		}
		if c := Bucket(a.CreatedAt, g); c.After(from) {
			from = c
		}
		to := Bucket(q.Now, g).Add(time.Hour)
		if g == GranularityDay {
			to = Bucket(q.Now, g).AddDate(0, 0, 1)
		}
		if !from.Before(to) {
			return nil, nil
		}
		return s.UsageSeries(ctx, SeriesQuery{AccountID: id, Granularity: g, From: from, To: to})
	}
	if sum.Days, err = read(GranularityDay, q.DaysFrom); err != nil {
		return sum, err
	}
	sum.Hours, err = read(GranularityHour, q.HoursFrom)
	return sum, err
}

// PageOfIndex turns up to limit+1 index keys read after a cursor into a
// page of ids and the cursor of the next page ("" when none follows).
func PageOfIndex(keys []string, limit int) (ids []string, next string) {
	more := len(keys) > limit
	if more {
		keys = keys[:limit]
	}
	ids = make([]string, len(keys))
	for i, k := range keys {
		ids[i] = IndexID(k)
	}
	if more && len(keys) > 0 {
		next = keys[len(keys)-1]
	}
	return ids, next
}

// Buckets are the starts of the buckets of g in [from, to).
func Buckets(g string, from, to time.Time) []time.Time {
	var out []time.Time
	for t := Bucket(from, g); t.Before(to); {
		out = append(out, t)
		if g == GranularityHour {
			t = t.Add(time.Hour)
		} else {
			t = t.AddDate(0, 0, 1)
		}
	}
	return out
}

// TotalsByBucket groups points by the buckets of g in [from, to), each
// bucket's routes as the JSON the stores keep (a bucket with none: "[]"),
// keyed by the bucket's Unix time.
func TotalsByBucket(g string, from, to time.Time, points []UsagePoint) (map[int64]string, error) {
	if g != GranularityDay && g != GranularityHour {
		return nil, Errorf(ECodeInvalid, "granularity %q: use day or hour", g)
	}
	by := map[int64][]UsagePoint{}
	for _, b := range Buckets(g, from, to) {
		by[b.Unix()] = []UsagePoint{}
	}
	for _, p := range points {
		k := Bucket(p.Start, g).Unix()
		if _, ok := by[k]; ok {
			p.Start = time.Time{}
			by[k] = append(by[k], p)
		}
	}
	out := make(map[int64]string, len(by))
	for k, pts := range by {
		SortPoints(pts)
		b, err := json.Marshal(pts)
		if err != nil {
			return nil, err
		}
		out[k] = string(b)
	}
	return out, nil
}
