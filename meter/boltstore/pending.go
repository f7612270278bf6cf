package boltstore

import (
	"context"
	"sort"

	"github.com/creditgate/creditgate/meter"
)

// PendingEvents returns up to limit of an account's undelivered webhook
// events, soonest due first (then by id), and how many there are. It reads
// the account's outbox, which holds only what is not delivered yet.
func (s *Store) PendingEvents(ctx context.Context, account string, limit int) ([]meter.Event, int, error) {
	type due struct {
		at int64
		e  meter.Event
	}
	var all []due
	err := s.view(ctx, account, func(o *op) error {
		b := o.sub(bOutbox)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e event
			if err := decodeJSON(v, &e); err != nil {
				return internalErr(err)
			}
			all = append(all, due{e.Due, e.event(account, string(k))})
			return nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	out := []meter.Event{}
	for _, d := range all[:min(limit, len(all))] {
		out = append(out, d.e)
	}
	return out, len(all), nil
}
