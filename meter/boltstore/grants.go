package boltstore

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// Credit grants live in the account record (ledger.Account.Lots), so the
// operations that spend them read nothing more; an account without
// grants pays a nil check. The idem bucket maps "G:"+key to the grant a
// keyed request created (kept: a grant is created rarely).

// endLots applies the model's EndLots at the store's clock and writes
// its entries and events; the transaction of every operation calls it
// before and after the operation, so an expired grant is never spent.
func (o *op) endLots() error {
	if len(o.a.Lots) == 0 {
		return nil
	}
	if !o.a.LotsDue(o.now) {
		return nil
	}
	es, evs := o.a.EndLots(o.now)
	o.dirty = true
	for _, me := range es {
		if err := o.lotEntry(me); err != nil {
			return err
		}
	}
	return o.emit(evs)
}

// lotEntry appends an expiration or grant_void entry, described.
func (o *op) lotEntry(me ledger.Entry) error {
	e := modelEntry(me)
	e.Description = "credit grant " + me.Lots[0].ID + " expired"
	if me.Type == meter.EntryGrantVoid {
		e.Description = "credit grant " + me.Lots[0].ID + " voided"
	}
	_, err := o.appendEntry(e)
	return err
}

// CreateCreditGrant adds a credit grant (meter.GrantStore). Its id is
// "gr_" and the id of its grant entry.
func (s *Store) CreateCreditGrant(ctx context.Context, g meter.CreditGrantRequest) (meter.CreditGrant, error) {
	var out meter.CreditGrant
	err := s.update(ctx, g.AccountID, func(o *op) error {
		ik := []byte("G:" + g.IdempotencyKey)
		if g.IdempotencyKey != "" {
			if raw := o.sub(bIdem).Get(ik); raw != nil {
				return o.replayGrant(g.AccountID, raw, &out)
			}
		}
		var exp int64
		if !g.ExpiresAt.IsZero() {
			if exp = g.ExpiresAt.UnixMilli(); exp <= o.now {
				return meter.Errorf(meter.ECodeInvalid, "expires_at must be in the future")
			}
		}
		id := "gr_" + o.nextID().String()
		l := ledger.Lot{ID: id, Granted: int64(g.Amount), Priority: g.Priority, Expires: exp, Created: o.now, Desc: g.Description}
		me, evs, err := o.a.AddLot(l)
		if err != nil {
			return err
		}
		e := modelEntry(me)
		e.Description = g.Description
		if _, err := o.appendEntry(e); err != nil {
			return internalErr(err)
		}
		if err := o.emit(evs); err != nil {
			return internalErr(err)
		}
		out = o.grant(g.AccountID, id)
		if g.IdempotencyKey != "" {
			raw, err := json.Marshal(out)
			if err == nil {
				err = o.put(bIdem, ik, raw)
			}
			if err != nil {
				return internalErr(err)
			}
		}
		return nil
	})
	return out, err
}

// replayGrant answers a retried CreateCreditGrant: the grant as it is
// now, or as it was created (with nothing remaining) once it has ended
// and left the record.
func (o *op) replayGrant(account string, raw []byte, out *meter.CreditGrant) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return internalErr(err)
	}
	if o.a.Lots != nil && slices.ContainsFunc(o.a.Lots, func(l ledger.Lot) bool { return l.ID == out.ID }) {
		*out = o.grant(account, out.ID)
		return nil
	}
	out.Remaining, out.Held, out.State = 0, 0, meter.GrantVoided
	if out.ExpiresAt != nil && out.ExpiresAt.UnixMilli() <= o.now {
		out.State = meter.GrantExpired
	}
	return nil
}

// grant is the API view of the account's lot id (zero if there is none).
func (o *op) grant(account, id string) meter.CreditGrant {
	for _, g := range o.a.Grants(account) {
		if g.ID == id {
			return g
		}
	}
	return meter.CreditGrant{}
}

// VoidCreditGrant ends an active grant now (meter.GrantStore).
func (s *Store) VoidCreditGrant(ctx context.Context, accountID, grantID string) (meter.CreditGrant, error) {
	var out meter.CreditGrant
	err := s.update(ctx, accountID, func(o *op) error {
		before := o.grant(accountID, grantID)
		es, evs, err := o.a.VoidLot(grantID)
		if err != nil {
			return err
		}
		o.dirty = true
		for _, me := range es {
			if err := o.lotEntry(me); err != nil {
				return internalErr(err)
			}
		}
		if err := o.emit(evs); err != nil {
			return internalErr(err)
		}
		out = o.grant(accountID, grantID)
		if out.ID == "" { // nothing held it: gone
			out = before
			out.Remaining, out.Held = 0, 0
		}
		out.State = meter.GrantVoided
		return nil
	})
	return out, err
}

// CreditGrants lists the account's grants (meter.GrantStore).
func (s *Store) CreditGrants(ctx context.Context, accountID string) ([]meter.CreditGrant, error) {
	var out []meter.CreditGrant
	err := s.view(ctx, accountID, func(o *op) error {
		out = o.a.Grants(accountID)
		return nil
	})
	if out == nil && err == nil {
		out = []meter.CreditGrant{}
	}
	return out, err
}

var _ meter.GrantStore = (*Store)(nil)
