package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// The money rules are meter/ledger's: this store reads its records, calls
// the model and persists what it returns (the account, hold records,
// ledger entries, events) in the same transaction. This file holds the
// persistence of holds, timers, entries and events.

// loadRes reads a reservation: a hold in memory, else the file's record;
// nil if there is none. In a read that leaves due purges to the next
// write (o.lazy), a settled record due for its purge is none.
func (o *op) loadRes(rid string) (*reservation, error) {
	if r := o.memRes(rid); r != nil {
		return r, nil
	}
	if r := o.settledRes(rid); r != nil {
		return r, nil
	}
	r, err := o.fileRes(rid)
	if r != nil && o.lazy && r.State != held && r.Due <= o.now {
		return nil, err
	}
	return r, err
}

// fileRes reads a reservation's record in the file; nil if there is none.
func (o *op) fileRes(rid string) (*reservation, error) {
	raw := o.sub(bRes).Get([]byte(rid))
	if raw == nil {
		return nil, nil
	}
	r := new(reservation)
	if err := decodeReservation(raw, r); err != nil {
		return nil, fmt.Errorf("boltstore: bad reservation record %s: %w", rid, err)
	}
	return r, nil
}

// saveRes writes a reservation's record. A hold read from memory is
// written only once settled, and leaves memory then.
func (o *op) saveRes(rid string, r *reservation) error {
	if r.mem {
		if r.State == held {
			return fmt.Errorf("boltstore: hold %s in memory saved as held", rid) // cannot happen
		}
		o.unhold(rid)
		r.mem = false
	}
	return o.put(bRes, []byte(rid), r.encode())
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

// dropIdem removes the Reserve idempotency mapping of r if it names rid,
// so that a retry with the same key may be charged again.
func (o *op) dropIdem(rid string, r *reservation) error {
	if r.Idem == "" || r.mem { // a hold in memory: its key leaves with it
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
// the purge, Retain from now; a settled plain hold is kept in memory
// instead (settled.go).
func (o *op) finish(rid string, r *reservation) error {
	r.Exp = 0
	if plainSettled(r) {
		o.settle(rid, r)
		return nil
	}
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
	o.a.Release(r.Hold)
	o.dirty = true
	return nil
}

// maxLazy bounds the due purges a Reserve in memory reads past.
const maxLazy = 64

// dueWrites reports whether the account has something due that changes
// what it holds: an expired hold (in memory or in the file), a job's
// timer, or more than maxLazy purges. Due purges of settled records and
// Grant mappings change nothing a Reserve answers once read as done
// (o.lazy), so a Reserve in memory need not write them: under steady
// load, one comes due between most of an account's calls.
func (o *op) dueWrites() (bool, error) {
	if o.m.hasDue(o.now) {
		return true, nil
	}
	c := o.sub(bTimers).Cursor()
	n := 0
	for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) <= o.now; k, _ = c.Next() {
		if n++; n > maxLazy {
			return true, nil
		}
		switch member := string(k[8:]); member[:2] {
		case "g:":
		case "r:":
			r, err := o.fileRes(member[2:])
			if err != nil || (r != nil && r.State == held) {
				return true, err
			}
		default:
			return true, nil
		}
	}
	return false, nil
}

// due reports whether any timer of the account is due, or a hold in
// memory has expired.
func (o *op) due() bool {
	k, _ := o.sub(bTimers).Cursor().First()
	return k != nil && int64(binary.BigEndian.Uint64(k)) <= o.now || o.m.hasDue(o.now)
}

// sweep expires due holds (those in memory too) and purges due settled
// records and Grant mappings. Unlike redisstore, which bounds each
// script's sweep (200) to bound its latency, it takes all that are due:
// one transaction holds no server, and Account.Reserved then never counts
// an expired hold.
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
		r, err := o.fileRes(id) // the timer's, not a hold in memory
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
	for _, rid := range o.m.due(o.now) {
		if err := o.expire(rid, o.memRes(rid)); err != nil {
			return err
		}
	}
	return nil
}

// appendEntry adds a ledger entry with the next id and returns the id.
// Ids are "<ms>-<seq>" of the store's clock and always increase, like
// XADD's.
func (o *op) appendEntry(e *entry) (ledgerID, error) {
	id := o.nextID()
	o.a.LastMS, o.a.LastSeq = int64(id.ms), int64(id.seq)
	o.dirty = true
	return id, o.put(bLedger, id.key(), e.encode())
}

// nextID is the id the next appended entry gets.
func (o *op) nextID() ledgerID {
	if o.now <= o.a.LastMS {
		return ledgerID{ms: uint64(o.a.LastMS), seq: uint64(o.a.LastSeq) + 1}
	}
	return ledgerID{ms: uint64(o.now)}
}

// emit records the model's events in the account's outbox.
func (o *op) emit(evs []ledger.Event) error {
	for _, e := range evs {
		err := o.emitEvent(&event{Type: e.Type, Threshold: e.Threshold, Limit: e.Limit, Used: e.Used, Resets: e.Resets})
		if err != nil {
			return err
		}
	}
	return nil
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

// threshold sets the model's low-balance threshold from the record:
// LBThreshold, or Settings in records written before it.
func (a *account) threshold() {
	if a.LBThreshold == nil {
		var st meter.Settings
		if len(a.Settings) > 0 {
			_ = json.Unmarshal(a.Settings, &st)
		}
		t := int64(st.LowBalanceThreshold)
		a.LBThreshold = &t
	}
	a.Threshold = *a.LBThreshold
}

// entry is the stored form of a model entry.
func modelEntry(e ledger.Entry) *entry {
	return &entry{Type: e.Type, Amount: e.Amount, BalanceAfter: e.BalanceAfter, Late: e.Late, Quota: e.Quota,
		Overage: e.Overage, Shortfall: e.Shortfall, G: e.Lots}
}

// granted is the part of the entry's amount in credit grants.
func (e *entry) granted() (n int64) {
	for _, p := range e.G {
		n += p.N
	}
	return n
}

// getEntry reads a ledger entry by id; nil if there is none.
func (o *op) getEntry(id ledgerID) (*entry, error) {
	raw := o.sub(bLedger).Get(id.key())
	if raw == nil {
		return nil, nil
	}
	e := new(entry)
	if err := decodeEntry(raw, e); err != nil {
		return nil, fmt.Errorf("boltstore: bad ledger entry %s: %w", id, err)
	}
	return e, nil
}
