package redisstore

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/creditgate/creditgate/meter"
)

// plansKey is the hash of plans: name -> JSON. One key, read by the
// gateways when they resolve an account's settings (not by the scripts).
func (s *Store) plansKey() string { return s.prefix + ":plans" }

// PutPlan creates or replaces a plan.
func (s *Store) PutPlan(ctx context.Context, p meter.Plan) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return internalErr(err)
	}
	if err := s.c.HSet(ctx, s.plansKey(), p.Name, raw).Err(); err != nil {
		return storeErr(err)
	}
	return nil
}

// DeletePlan removes a plan; ECodeNotFound if there is none.
func (s *Store) DeletePlan(ctx context.Context, name string) error {
	n, err := s.c.HDel(ctx, s.plansKey(), name).Result()
	if err != nil {
		return storeErr(err)
	}
	if n == 0 {
		return meter.Errorf(meter.ECodeNotFound, "no plan %q", name)
	}
	return nil
}

// Plans returns the stored plans, by name.
func (s *Store) Plans(ctx context.Context) ([]meter.Plan, error) {
	m, err := s.c.HGetAll(ctx, s.plansKey()).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]meter.Plan, 0, len(m))
	for _, raw := range m {
		var p meter.Plan
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, internalErr(err)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
