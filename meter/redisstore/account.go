package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// CreateAccount creates an account; initial credits are recorded as a
// purchase entry "initial credits". ECodeAccountExists if it exists.
func (s *Store) CreateAccount(ctx context.Context, id string, initial meter.Credits) (meter.Account, error) {
	r, err := s.run(ctx, createAccountScript, id, int64(initial), nonce())
	if err != nil {
		return meter.Account{}, err
	}
	a := accountFrom(id, r)
	if err := r.check(); err != nil {
		return meter.Account{}, err
	}
	// The global indexes live in slots of their own, so they cannot be in
	// the script. Should the second write be lost, ListAccounts completes
	// the sorted index from the set.
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, s.accountsKey(), id)
		p.ZAdd(ctx, s.accountsByIDKey(), redis.Z{Member: id})
		return nil
	}); err != nil {
		return meter.Account{}, storeErr(err)
	}
	return a, nil
}

// Account returns an account's balances, after releasing expired holds.
func (s *Store) Account(ctx context.Context, id string) (meter.Account, error) {
	r, err := s.run(ctx, accountScript, id)
	if err != nil {
		return meter.Account{}, err
	}
	a := accountFrom(id, r)
	return a, r.check()
}

// UpdateSettings replaces an account's settings, stored as JSON in the
// account hash; they are its limits in force too.
func (s *Store) UpdateSettings(ctx context.Context, id string, st meter.Settings) (meter.Account, error) {
	return s.ApplySettings(ctx, id, &st, st.Limits())
}

// ApplySettings sets the account's limits in force and, unless own is
// nil, its own settings, in one script (settings.lua).
func (s *Store) ApplySettings(ctx context.Context, id string, own *meter.Settings, l meter.Limits) (meter.Account, error) {
	raw := ""
	if own != nil {
		b, err := json.Marshal(own)
		if err != nil {
			return meter.Account{}, internalErr(err)
		}
		raw = string(b)
	}
	r, err := s.run(ctx, settingsScript, id, raw, int64(l.MonthlyQuota), int64(l.OverageCap), l.QuotaUnit,
		int64(l.LowBalanceThreshold))
	if err != nil {
		return meter.Account{}, err
	}
	a := accountFrom(id, r)
	return a, r.check()
}

// accountFrom reads {'ok', balance, reserved, created_ms[, settings_json,
// total_purchased, total_used, updated_ms[, state...]]}. Reserved is the
// balance and overage parts of the holds; quota parts are in
// Quota.Reserved. Accounts created before updated_ms read it as created.
func accountFrom(id string, r *reply) meter.Account {
	bal, res := meter.Credits(r.intOf("balance")), meter.Credits(r.intOf("reserved"))
	a := meter.Account{ID: id, Balance: bal, Reserved: res, Available: bal - res, CreatedAt: msTime(r.intOf("created_ms"))}
	a.UpdatedAt = a.CreatedAt
	if r.has("updated_ms") && r.strOf("updated_ms") != "" {
		a.UpdatedAt = msTime(r.intOf("updated_ms"))
	}
	if r.has("total_used") {
		if raw := r.optStr("settings_json"); raw != "" {
			if err := json.Unmarshal([]byte(raw), &a.Settings); err != nil && r.err == nil {
				r.err = fmt.Errorf("redisstore: account %s: bad settings %q: %v", id, raw, err)
			}
		}
		a.TotalPurchased, a.TotalUsed = meter.Credits(r.intOf("total_purchased")), meter.Credits(r.intOf("total_used"))
	}
	if r.has("quota_limit") {
		a.Quota, a.Overage = r.periodState()
	}
	if r.has("lots") {
		a.Grants = lotsFrom(id, r.strOf("lots"))
	}
	return a
}

// AddKey stores a key record under its hash and adds the hash to the
// account's key set. The record's CreatedAt is the server's time; k's is
// ignored. Adding the same key to the same account again is a no-op.
func (s *Store) AddKey(ctx context.Context, k meter.Key) error {
	n, err := s.c.Exists(ctx, s.accountKeys(k.AccountID)[0]).Result()
	if err != nil {
		return storeErr(err)
	}
	if n == 0 {
		return meter.Errorf(meter.ECodeAccountNotFound, "account %q not found", k.AccountID)
	}
	v, err := addKeyScript.Run(ctx, s.c, []string{s.keyRecordKey(k.Hash)},
		k.AccountID, string(k.Mode), k.Prefix, k.Last4).Slice()
	if err != nil {
		return storeErr(err)
	}
	r := addKeyScript.reply(v)
	if code := r.str(0); code != "ok" {
		return refusal(code, k.AccountID, r)
	}
	if err := s.c.SAdd(ctx, s.keySetKey(k.AccountID), k.Hash).Err(); err != nil {
		return storeErr(err)
	}
	return nil
}

// LookupKey returns the key record of a hash; ECodeInvalidAPIKey if none.
func (s *Store) LookupKey(ctx context.Context, hash string) (meter.Key, error) {
	unknown := meter.Errorf(meter.ECodeInvalidAPIKey, "invalid API key")
	m, err := s.c.HGetAll(ctx, s.keyRecordKey(hash)).Result()
	if err != nil {
		return meter.Key{}, storeErr(err)
	}
	if m["account"] == "" || m["revoked_ms"] != "" {
		return meter.Key{}, unknown
	}
	return keyFrom(hash, m), nil
}

// Grant adds (or, negative, removes) credits with a ledger entry. A
// purchase must be positive; an adjustment may be negative but may not
// take more than the available balance. With an IdempotencyKey seen in
// the last Retain, the first entry is returned and nothing is recorded.
func (s *Store) Grant(ctx context.Context, g meter.Grant) (meter.LedgerEntry, error) {
	idem := g.IdempotencyKey
	if idem == "" {
		// A grant must not be recorded twice when go-redis retries it after
		// a lost reply; a key private to this call makes the retry a replay.
		idem = "call:" + nonce()
	}
	r, err := s.run(ctx, grantScript, g.AccountID, string(g.Type), int64(g.Amount), g.Description, idem)
	if err != nil {
		return meter.LedgerEntry{}, err
	}
	e := meter.LedgerEntry{ID: r.strOf("entry_id"), AccountID: g.AccountID, Type: r.strOf("type"),
		Amount: meter.Credits(r.intOf("amount")), BalanceAfter: meter.Credits(r.intOf("balance_after")), Description: r.strOf("description")}
	e.CreatedAt = entryTime(e.ID)
	if r.intOf("events") > 0 {
		s.indexEvents(ctx, g.AccountID)
	}
	return e, r.check()
}

// Ledger lists an account's entries, newest first: Limit, default 50,
// at most 1000.
func (s *Store) Ledger(ctx context.Context, q meter.LedgerQuery) ([]meter.LedgerEntry, error) {
	limit := q.PageLimit()
	keys := s.accountKeys(q.AccountID)
	if err := s.touchLots(ctx, q.AccountID); err != nil { // also the existence check
		return nil, err
	}
	// Stream ids are server-time ordered: date bounds and the cursor are
	// id ranges. "(" makes a bound exclusive (Redis 6.2+).
	end, start := "+", "-"
	if !q.To.IsZero() {
		end = "(" + strconv.FormatInt(q.To.UnixMilli(), 10) + "-0"
	}
	if q.Before != "" && (end == "+" || idLess(q.Before, end[1:])) {
		end = "(" + q.Before
	}
	if !q.From.IsZero() {
		start = strconv.FormatInt(q.From.UnixMilli(), 10) + "-0"
	}
	out := make([]meter.LedgerEntry, 0, limit)
	// Without a type filter one read is enough (the offset's entries are
	// read and skipped); with one, read on in batches until the page is
	// full or the range is exhausted.
	batch := int64(limit + q.Offset)
	if q.Type != "" {
		batch = 500
	}
	skip := q.Offset
	for len(out) < limit {
		xs, err := s.c.XRevRangeN(ctx, keys[4], end, start, batch).Result()
		if err != nil {
			return nil, storeErr(err)
		}
		for _, m := range xs {
			e := entryFrom(q.AccountID, m)
			if q.Type != "" && e.Type != q.Type {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
		if int64(len(xs)) < batch || q.Type == "" {
			break
		}
		end = "(" + xs[len(xs)-1].ID
	}
	return out, nil
}

// LedgerTotal counts the entries of q's type and dates: XLEN when the
// whole ledger is asked for, else a walk of the range in batches.
func (s *Store) LedgerTotal(ctx context.Context, q meter.LedgerQuery) (int, error) {
	q.Before, q.Offset = "", 0
	keys := s.accountKeys(q.AccountID)
	if err := s.touchLots(ctx, q.AccountID); err != nil { // also the existence check
		return 0, err
	}
	if q.Type == "" && q.From.IsZero() && q.To.IsZero() {
		n, err := s.c.XLen(ctx, keys[4]).Result()
		if err != nil {
			return 0, storeErr(err)
		}
		return int(n), nil
	}
	end, start := "+", "-"
	if !q.To.IsZero() {
		end = "(" + strconv.FormatInt(q.To.UnixMilli(), 10) + "-0"
	}
	if !q.From.IsZero() {
		start = strconv.FormatInt(q.From.UnixMilli(), 10) + "-0"
	}
	const batch = 1000
	n := 0
	for {
		xs, err := s.c.XRevRangeN(ctx, keys[4], end, start, batch).Result()
		if err != nil {
			return 0, storeErr(err)
		}
		for _, m := range xs {
			if q.Type == "" || entryFrom(q.AccountID, m).Type == q.Type {
				n++
			}
		}
		if len(xs) < batch {
			return n, nil
		}
		end = "(" + xs[len(xs)-1].ID
	}
}

// idLess compares two stream ids "<ms>-<seq>".
func idLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	an, _ := strconv.ParseUint(am, 10, 64)
	bn, _ := strconv.ParseUint(bm, 10, 64)
	if an != bn {
		return an < bn
	}
	asq, _ := strconv.ParseUint(as, 10, 64)
	bsq, _ := strconv.ParseUint(bs, 10, 64)
	return asq < bsq
}

func entryFrom(acct string, m redis.XMessage) meter.LedgerEntry {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	num := func(k string) meter.Credits { n, _ := strconv.ParseInt(str(k), 10, 64); return meter.Credits(n) }
	e := meter.LedgerEntry{ID: m.ID, AccountID: acct, Type: str("type"), Amount: num("amount"),
		BalanceAfter: num("balance_after"), Description: str("description"), Route: str("route"),
		RequestID: str("request_id"), ReservationID: str("reservation_id"), Late: str("late") == "1",
		Quota: num("quota"), Overage: num("overage"), Pages: int(num("pages")), RefundOf: str("refund_of"),
		Shortfall: num("shortfall"), JobID: str("job_id"), UpstreamJobID: str("upstream_job_id"),
		PaymentIntentID: str("payment_intent_id"), ExternalID: str("external_id"), CreatedAt: entryTime(m.ID)}
	e.Granted, e.GrantIDs = lotParts(str("lots"))
	if e.Type == meter.EntryGrant { // its id names the grant (grant_create.lua)
		e.Granted, e.GrantIDs = e.Amount, "gr_"+m.ID
	}
	return e
}

// entryTime is the server time in a stream id "<ms>-<seq>".
func entryTime(id string) time.Time {
	msPart, _, _ := strings.Cut(id, "-")
	ms, _ := strconv.ParseInt(msPart, 10, 64)
	return msTime(ms)
}
