package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/creditgate/creditgate/meter"
)

// The money model is redisstore's (see its lib.lua, which this file
// follows function by function). A charge is taken from three pools, in
// order: the period's quota (limit - used - reserved), the prepaid
// balance (balance - reserved, when positive), then the period's overage
// (cap - used - reserved, and never so much that the balance, once every
// hold is settled, would be below -cap). Without a period stored yet,
// quota and overage are not usable.

func (o *op) loadRes(rid string) (*reservation, error) {
	raw := o.sub(bRes).Get([]byte(rid))
	if raw == nil {
		return nil, nil
	}
	r := new(reservation)
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("boltstore: bad reservation record %s: %w", rid, err)
	}
	return r, nil
}

func (o *op) saveRes(rid string, r *reservation) error {
	raw, err := encode(r)
	if err != nil {
		return err
	}
	return o.put(bRes, []byte(rid), raw)
}

// put and del write to one of the account's buckets and mark the
// transaction as one to commit.
func (o *op) put(bucket, k, v []byte) error {
	o.dirty = true
	return o.sub(bucket).Put(k, v)
}

func (o *op) del(bucket, k []byte) error {
	o.dirty = true
	return o.sub(bucket).Delete(k)
}

// setTimer moves a reservation's timer to due (redisstore's ZADD).
func (o *op) setTimer(rid string, r *reservation, due int64) error {
	if r.Due != 0 {
		if err := o.del(bTimers, timerKey(r.Due, "r:"+rid)); err != nil {
			return err
		}
	}
	r.Due = due
	return o.put(bTimers, timerKey(due, "r:"+rid), nil)
}

// release takes a hold's parts off the pools. Parts held in an earlier
// period were already dropped from QRes and ORes when the period rolled.
func (a *account) release(r *reservation) {
	a.Reserved -= r.B + r.O
	if r.Per == a.Period {
		a.QRes -= r.Q
		a.ORes -= r.O
	}
}

// pools returns what the quota, the balance and the overage can give now;
// room (balance - reserved) may be negative.
func (a *account) pools() (qa, room, oa int64) {
	room = a.Balance - a.Reserved
	if a.Period == 0 || a.owes() > 0 {
		return 0, room, 0
	}
	qa = max(0, a.QuotaLimit-a.QUsed-a.QRes)
	oa = max(0, min(a.OverageCap-a.OUsed-a.ORes, a.OverageCap+min(0, room)))
	return qa, room, oa
}

// owes is what the account owes beyond its overage cap: the shortfall of
// output-priced commits (or an adjustment) not yet bought back. While it
// owes, no pool gives anything (lib.lua's owes).
func (a *account) owes() int64 { return max(0, -(a.Balance + a.OverageCap)) }

// split takes x from the pools in order: quota, balance, overage. The
// parts may fall short of x.
func (a *account) split(x int64) (q, b, o int64) {
	qa, room, oa := a.pools()
	q = min(x, qa)
	b = min(x-q, max(0, room))
	o = min(x-q-b, oa)
	return q, b, o
}

// state is the period's state (lib.lua's with_state).
func (a *account) state() (meter.QuotaState, meter.OverageState) {
	qa, _, oa := a.pools()
	q := meter.QuotaState{Limit: meter.Credits(a.QuotaLimit), Used: meter.Credits(a.QUsed),
		Reserved: meter.Credits(a.QRes), Remaining: meter.Credits(qa)}
	if a.PeriodEnd > 0 {
		q.ResetsAt = msTime(a.PeriodEnd)
	}
	ov := meter.OverageState{Cap: meter.Credits(a.OverageCap), Used: meter.Credits(a.OUsed),
		Reserved: meter.Credits(a.ORes), Remaining: meter.Credits(oa)}
	return q, ov
}

// dropIdem removes the Reserve idempotency mapping of r if it names rid,
// so that a retry with the same key may be charged again.
func (o *op) dropIdem(rid string, r *reservation) error {
	if r.Idem == "" {
		return nil
	}
	k := []byte("r:" + r.Idem)
	if bytes.Equal(o.sub(bIdem).Get(k), []byte(rid)) {
		return o.del(bIdem, k)
	}
	return nil
}

// responseKey is where the idem bucket keeps the response stored with the
// commit of reservation rid (redisstore's response key): next to the
// mappings, so accounts made before it need no new bucket.
func responseKey(rid string) []byte { return []byte("s:" + rid) }

// finish stores a settled record and moves its timer from the expiry to
// the purge, Retain from now.
func (o *op) finish(rid string, r *reservation) error {
	r.Exp = 0
	if err := o.setTimer(rid, r, o.now+o.s.retainMS); err != nil {
		return err
	}
	return o.saveRes(rid, r)
}

// expire marks a held reservation whose TTL has passed as expired and
// releases its parts.
func (o *op) expire(rid string, r *reservation) error {
	r.State = expired
	if err := o.dropIdem(rid, r); err != nil {
		return err
	}
	if err := o.finish(rid, r); err != nil {
		return err
	}
	o.a.release(r)
	o.dirty = true
	return nil
}

// due reports whether any timer of the account is due.
func (o *op) due() bool {
	k, _ := o.sub(bTimers).Cursor().First()
	return k != nil && int64(binary.BigEndian.Uint64(k)) <= o.now
}

// sweep expires due holds and purges due settled records and Grant
// mappings. Unlike redisstore, which bounds each script's sweep (200) to
// bound its latency, it takes all that are due: one transaction holds no
// server, and Account.Reserved then never counts an expired hold.
func (o *op) sweep() error {
	c := o.sub(bTimers).Cursor()
	var due [][]byte
	for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) <= o.now; k, _ = c.Next() {
		due = append(due, bytes.Clone(k))
	}
	for _, k := range due {
		member := string(k[8:])
		id := member[2:]
		if member[:2] == "j:" {
			if err := o.jobTimer(id, k); err != nil {
				return err
			}
			continue
		}
		if o.sub(bTimers).Get(k) == nil {
			continue // dropped by an earlier member (a job's expiry releasing its hold)
		}
		if member[:2] == "g:" {
			if err := o.del(bIdem, []byte(member)); err != nil {
				return err
			}
			if err := o.del(bTimers, k); err != nil {
				return err
			}
			continue
		}
		r, err := o.loadRes(id)
		if err != nil {
			return err
		}
		if r != nil && r.State == held {
			if err := o.expire(id, r); err != nil {
				return err
			}
			continue
		}
		if r != nil {
			if err := o.dropIdem(id, r); err != nil {
				return err
			}
			if err := o.del(bRes, []byte(id)); err != nil {
				return err
			}
			if r.Idem != "" {
				if err := o.del(bIdem, responseKey(id)); err != nil {
					return err
				}
			}
		}
		if err := o.del(bTimers, k); err != nil {
			return err
		}
	}
	return nil
}

// appendEntry adds a ledger entry with the next id and returns the id.
// Ids are "<ms>-<seq>" of the store's clock and always increase, like
// XADD's.
func (o *op) appendEntry(e *entry) (ledgerID, error) {
	id := ledgerID{ms: uint64(o.now)}
	if o.now <= o.a.LastMS {
		id = ledgerID{ms: uint64(o.a.LastMS), seq: uint64(o.a.LastSeq) + 1}
	}
	o.a.LastMS, o.a.LastSeq = int64(id.ms), int64(id.seq)
	o.dirty = true
	raw, err := encode(e)
	if err != nil {
		return id, err
	}
	return id, o.put(bLedger, id.key(), raw)
}

// emit records a webhook event in the account's outbox, claimable now,
// and lists the account in the outbox index (lib.lua's emit).
func (o *op) emit(typ string, threshold, limit, used, resets int64) error {
	return o.emitEvent(&event{Type: typ, Threshold: threshold, Limit: limit, Used: used, Resets: resets})
}

// emitEvent records e, stamped with the store's time and the balance.
func (o *op) emitEvent(e *event) error {
	a := o.a
	a.EvtSeq++
	o.dirty = true
	id := fmt.Sprintf("%d-%d", o.now, a.EvtSeq)
	e.MS, e.Balance, e.Due = o.now, a.Balance, o.now
	raw, err := encode(e)
	if err != nil {
		return err
	}
	b, err := o.b.CreateBucketIfNotExists(bOutbox)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(id), raw); err != nil {
		return err
	}
	return o.tx.Bucket(bOutboxIndex).Put([]byte(o.id), nil)
}

// threshold is the account's low-balance threshold.
func (o *op) threshold() int64 {
	if o.a.LBThreshold == nil {
		var st meter.Settings
		if len(o.a.Settings) > 0 {
			_ = json.Unmarshal(o.a.Settings, &st)
		}
		t := int64(st.LowBalanceThreshold)
		o.a.LBThreshold = &t
	}
	return *o.a.LBThreshold
}

// lowBalance, after the balance moved, records a low-balance event when
// it is below the threshold and none was since it last was at or above
// it, and re-arms when it is at or above it (lib.lua's low_balance).
func (o *op) lowBalance() error {
	a, t := o.a, o.threshold()
	switch {
	case t <= 0:
	case a.Balance < t && !a.LBSent:
		a.LBSent = true
		return o.emit(meter.EventLowBalance, t, 0, 0, 0)
	case a.Balance >= t && a.LBSent:
		a.LBSent = false
		o.dirty = true
	}
	return nil
}

// getEntry reads a ledger entry by id; nil if there is none.
func (o *op) getEntry(id ledgerID) (*entry, error) {
	raw := o.sub(bLedger).Get(id.key())
	if raw == nil {
		return nil, nil
	}
	e := new(entry)
	if err := decodeJSON(raw, e); err != nil {
		return nil, fmt.Errorf("boltstore: bad ledger entry %s: %w", id, err)
	}
	return e, nil
}
