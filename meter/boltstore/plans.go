package boltstore

import (
	"context"
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// PutPlan creates or replaces a plan.
func (s *Store) PutPlan(ctx context.Context, p meter.Plan) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return internalErr(err)
	}
	return s.plansTx(ctx, func(b *bolt.Bucket) error { return b.Put([]byte(p.Name), raw) })
}

// DeletePlan removes a plan; ECodeNotFound if there is none.
func (s *Store) DeletePlan(ctx context.Context, name string) error {
	return s.plansTx(ctx, func(b *bolt.Bucket) error {
		if b.Get([]byte(name)) == nil {
			return meter.Errorf(meter.ECodeNotFound, "no plan %q", name)
		}
		return b.Delete([]byte(name))
	})
}

func (s *Store) plansTx(ctx context.Context, fn func(b *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return meter.Unavailable(err)
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return meter.Unavailable(err)
	}
	defer tx.Rollback()
	if err := fn(tx.Bucket(bPlans)); err != nil {
		return dbErr(err)
	}
	return s.commit(tx)
}

// Plans returns the stored plans, by name.
func (s *Store) Plans(ctx context.Context) ([]meter.Plan, error) {
	if err := ctx.Err(); err != nil {
		return nil, meter.Unavailable(err)
	}
	var out []meter.Plan
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bPlans).ForEach(func(k, v []byte) error {
			var p meter.Plan
			if err := json.Unmarshal(v, &p); err != nil {
				return internalErr(err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, dbErr(err)
}
