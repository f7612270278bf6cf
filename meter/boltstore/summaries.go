package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// AccountSummaries reads a batch of accounts, each in a read transaction
// of its own (under its gate, with its holds in memory: memholds.go): the
// account record (without the sweep Account may do: it changes reserved,
// never the balance the rollup sorts), the period's usage, the newest
// ledger key and the series buckets asked for. Ids that do not exist are
// left out.
func (s *Store) AccountSummaries(ctx context.Context, ids []string, q meter.SummaryQuery) ([]meter.AccountSummary, error) {
	for _, id := range ids {
		if err := meter.ValidateAccountID(id); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, meter.Unavailable(err)
	}
	out := make([]meter.AccountSummary, 0, len(ids))
	for _, id := range ids {
		err := s.read(id, func(tx *bolt.Tx, g *gates) error {
			o, err := s.open(tx, id, g)
			if meter.ErrorCode(err) == meter.ECodeAccountNotFound {
				return nil // gone since it was listed
			}
			if err != nil {
				return err
			}
			a, err := o.account(id)
			if err != nil {
				return err
			}
			sum := meter.AccountSummary{ID: id, Balance: a.Balance, Reserved: a.Reserved, CreatedAt: a.CreatedAt}
			if p, err := a.Settings.PeriodAt(q.Now, a.CreatedAt); err == nil {
				pid, _ := p.Millis()
				prefix := be64(pid)
				c := o.sub(bUsage).Cursor()
				for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
					var n counters
					if err := decodeCounters(v, &n); err != nil {
						return internalErr(err)
					}
					sum.PeriodCredits += meter.Credits(n.Credits)
				}
			}
			if k, _ := o.sub(bLedger).Cursor().Last(); len(k) >= 8 {
				sum.LastActivity = msTime(int64(binary.BigEndian.Uint64(k[:8])))
			}
			if sum.Days, err = seriesSince(o, 'd', meter.GranularityDay, q.DaysFrom, a.CreatedAt, q.Now); err != nil {
				return err
			}
			if sum.Hours, err = seriesSince(o, 'h', meter.GranularityHour, q.HoursFrom, a.CreatedAt, q.Now); err != nil {
				return err
			}
			out = append(out, sum)
			return nil
		})
		if err != nil {
			return nil, dbErr(err)
		}
	}
	return out, nil
}

// seriesSince reads an account's series buckets of g from from (or its
// creation, if later) to now's; none when from is zero.
func seriesSince(o *op, kind byte, g string, from, created, now time.Time) ([]meter.UsagePoint, error) {
	b := o.sub(bSeries)
	if from.IsZero() || b == nil {
		return nil, nil
	}
	if c := meter.Bucket(created, g); c.After(from) {
		from = c
	}
	lo := seriesKey(kind, meter.Bucket(from, g).UnixMilli(), "")
	hi := seriesKey(kind, now.UnixMilli()+1, "")
	var out []meter.UsagePoint
	c := b.Cursor()
	for k, v := c.Seek(lo); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
		var n counters
		if err := decodeCounters(v, &n); err != nil {
			return nil, internalErr(err)
		}
		start := time.UnixMilli(int64(binary.BigEndian.Uint64(k[1:9]))).UTC()
		out = append(out, meter.UsagePoint{Start: start, Route: string(k[9:]), Requests: n.Requests,
			Pages: n.Pages, Credits: meter.Credits(n.Credits)})
	}
	return out, nil
}
