package redisstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Credit grants (meter.GrantStore) live in the account hash's 'lots' field
// (see LOTS in lib.lua), read by every script's open: an account without
// grants reads one absent field more. The Lua mirrors meter/ledger's
// grants.go.

// CreateCreditGrant adds a credit grant; its id is "gr_" and the id of
// its grant entry.
func (s *Store) CreateCreditGrant(ctx context.Context, g meter.CreditGrantRequest) (meter.CreditGrant, error) {
	var exp int64
	if !g.ExpiresAt.IsZero() {
		exp = max(1, g.ExpiresAt.UnixMilli())
	}
	r, err := s.run(ctx, grantCreateScript, g.AccountID, int64(g.Amount), exp, g.Priority, g.Description, g.IdempotencyKey)
	if err != nil {
		return meter.CreditGrant{}, err
	}
	id := r.strOf("grant_id")
	for _, l := range lotsFrom(g.AccountID, r.strOf("lots")) {
		if l.ID == id {
			return l, r.check()
		}
	}
	// A replay of a grant that has ended since.
	out := meter.CreditGrant{ID: id, AccountID: g.AccountID, Amount: g.Amount, Priority: g.Priority,
		Description: g.Description, CreatedAt: entryTime(strings.TrimPrefix(id, "gr_")), State: meter.GrantVoided}
	if exp > 0 {
		t := msTime(exp)
		out.ExpiresAt = &t
		if t.Before(time.Now()) {
			out.State = meter.GrantExpired
		}
	}
	return out, r.check()
}

// VoidCreditGrant ends an active grant now.
func (s *Store) VoidCreditGrant(ctx context.Context, accountID, grantID string) (meter.CreditGrant, error) {
	r, err := s.run(ctx, grantVoidScript, accountID, grantID)
	if err != nil {
		return meter.CreditGrant{}, err
	}
	var out meter.CreditGrant
	for _, l := range lotsFrom(accountID, r.strOf("lots")) {
		if l.ID == grantID {
			out = l
		}
	}
	if out.ID == "" { // nothing held it: gone
		for _, l := range lotsFrom(accountID, r.strOf("lots_before")) {
			if l.ID == grantID {
				out = l
				out.Remaining, out.Held = 0, 0
			}
		}
	}
	out.State = meter.GrantVoided
	return out, r.check()
}

// CreditGrants lists the account's grants in spending order, after
// expiring those due.
func (s *Store) CreditGrants(ctx context.Context, accountID string) ([]meter.CreditGrant, error) {
	r, err := s.run(ctx, grantListScript, accountID)
	if err != nil {
		return nil, err
	}
	out := lotsFrom(accountID, r.strOf("lots"))
	if out == nil {
		out = []meter.CreditGrant{}
	}
	return out, r.check()
}

// lotsFrom reads the 'lots' field (lib.lua's LOTS) as the API shows it.
func lotsFrom(account, raw string) []meter.CreditGrant {
	var out []meter.CreditGrant
	for line := range strings.SplitSeq(raw, "\n") {
		f := strings.SplitN(line, "|", 9)
		if len(f) != 9 {
			continue
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		desc := strings.NewReplacer("%0A", "\n", "%25", "%").Replace(f[8])
		g := meter.CreditGrant{ID: f[0], AccountID: account, Amount: meter.Credits(n(1)), Remaining: meter.Credits(n(2)),
			Held: meter.Credits(n(3)), Priority: n(4), Description: desc, CreatedAt: msTime(n(6)), State: meter.GrantActive}
		if f[7] != "" {
			g.State = f[7]
		}
		if exp := n(5); exp > 0 {
			t := msTime(exp)
			g.ExpiresAt = &t
		}
		out = append(out, g)
	}
	return out
}

// lotParts reads an entry's grant parts 'id:n,id:n': their sum and ids.
func lotParts(raw string) (meter.Credits, string) {
	if raw == "" {
		return 0, ""
	}
	var sum int64
	var ids []string
	for p := range strings.SplitSeq(raw, ",") {
		id, n, _ := strings.Cut(p, ":")
		v, _ := strconv.ParseInt(n, 10, 64)
		sum += v
		ids = append(ids, id)
	}
	return meter.Credits(sum), strings.Join(ids, ",")
}

// touchLots runs grant_list.lua before a ledger read, so that the
// expiration entries of grants due are written first. An account without
// grants pays one HMGET in it (the existence check the read needs anyway).
func (s *Store) touchLots(ctx context.Context, accountID string) error {
	_, err := s.run(ctx, grantListScript, accountID)
	return err
}

var _ meter.GrantStore = (*Store)(nil)
