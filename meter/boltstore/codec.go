package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/creditgate/creditgate/meter/ledger"
)

// Binary records. The records every metered request reads and writes (the
// account, its holds, ledger entries, usage counters) were JSON; encoding
// and decoding them was most of a pair's CPU inside the single writer
// transaction, which bounds the store's throughput. They are now written
// in a binary layout; JSON records written before are still read, and
// rewritten in binary the next time they are saved.
//
// A record's first byte says its format: '{' is JSON, recBinary the
// layout of the encode functions below: fields in a fixed order, integers
// as zig-zag varints, strings and byte strings as a uvarint length and
// the bytes. Layouts only ever grow at their end: a reader takes fields
// missing at the end as zero, so a field added later still reads older
// records.
const recBinary = 1

var errBadRecord = errors.New("boltstore: truncated or corrupt record")

// wbuf builds a binary record.
type wbuf []byte

func newRecord(size int) wbuf { return append(make(wbuf, 0, size), recBinary) }

func (w *wbuf) int(n int64) { *w = binary.AppendVarint(*w, n) }

func (w *wbuf) bool(b bool) {
	if b {
		*w = append(*w, 1)
	} else {
		*w = append(*w, 0)
	}
}

func (w *wbuf) str(s string) {
	*w = binary.AppendUvarint(*w, uint64(len(s)))
	*w = append(*w, s...)
}

func (w *wbuf) bytes(b []byte) {
	*w = binary.AppendUvarint(*w, uint64(len(b)))
	*w = append(*w, b...)
}

func (w *wbuf) parts(ps []ledger.LotPart) {
	w.int(int64(len(ps)))
	for _, p := range ps {
		w.str(p.ID)
		w.int(p.N)
	}
}

// rbuf reads a binary record; the first error sticks, and every read
// after it returns zero.
type rbuf struct {
	b   []byte
	err error
}

func (r *rbuf) int() int64 {
	if r.err != nil || len(r.b) == 0 {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBadRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) bool() bool { return r.int() != 0 }

// raw returns a length-prefixed byte string, still in the record's memory
// (valid only in its transaction).
func (r *rbuf) raw() []byte {
	if r.err != nil || len(r.b) == 0 {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.err = errBadRecord
		return nil
	}
	out := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return out
}

func (r *rbuf) str() string { return string(r.raw()) }

// count reads a slice length, bounded by what is left of the record (each
// element takes at least one byte).
func (r *rbuf) count() int {
	n := r.int()
	if n < 0 || n > int64(len(r.b)) {
		r.err = errBadRecord
		return 0
	}
	return int(n)
}

func (r *rbuf) parts() []ledger.LotPart {
	n := r.count()
	if n == 0 {
		return nil
	}
	ps := make([]ledger.LotPart, n)
	for i := range ps {
		ps[i] = ledger.LotPart{ID: r.str(), N: r.int()}
	}
	return ps
}

// decodeRecord reads raw into v: JSON (records written before the binary
// layout), or binary with read.
func decodeRecord(raw []byte, v any, read func(r *rbuf)) error {
	if len(raw) == 0 {
		return errBadRecord
	}
	if raw[0] != recBinary {
		return json.Unmarshal(raw, v)
	}
	r := &rbuf{b: raw[1:]}
	read(r)
	return r.err
}

func (a *account) encode() []byte {
	w := newRecord(160 + len(a.Settings) + 64*len(a.Lots))
	w.int(a.Balance)
	w.int(a.Reserved)
	w.int(a.QRes)
	w.int(a.ORes)
	w.int(a.QUsed)
	w.int(a.OUsed)
	w.int(a.Period)
	w.int(a.PeriodEnd)
	w.int(a.QuotaLimit)
	w.int(a.OverageCap)
	w.int(a.TotalPurchased)
	w.int(a.TotalUsed)
	w.str(a.QuotaUnit)
	w.bool(a.LBSent)
	w.int(a.CreatedMS)
	w.int(a.UpdatedMS)
	w.int(a.LastMS)
	w.int(a.LastSeq)
	w.bool(a.LBThreshold != nil)
	if a.LBThreshold != nil {
		w.int(*a.LBThreshold)
	} else {
		w.int(0)
	}
	w.int(a.EvtSeq)
	w.bytes(a.Settings)
	w.int(int64(len(a.Lots)))
	for _, l := range a.Lots {
		w.str(l.ID)
		w.int(l.Granted)
		w.int(l.Left)
		w.int(l.Held)
		w.int(l.Priority)
		w.int(l.Expires)
		w.int(l.Created)
		w.str(l.Desc)
		w.str(l.Ended)
	}
	return w
}

func (a *account) decode(r *rbuf) {
	a.Balance, a.Reserved, a.QRes, a.ORes = r.int(), r.int(), r.int(), r.int()
	a.QUsed, a.OUsed, a.Period, a.PeriodEnd = r.int(), r.int(), r.int(), r.int()
	a.QuotaLimit, a.OverageCap, a.TotalPurchased, a.TotalUsed = r.int(), r.int(), r.int(), r.int()
	a.QuotaUnit, a.LBSent = r.str(), r.bool()
	a.CreatedMS, a.UpdatedMS, a.LastMS, a.LastSeq = r.int(), r.int(), r.int(), r.int()
	hasLB, lb := r.bool(), r.int()
	if hasLB {
		a.LBThreshold = &lb
	}
	a.EvtSeq = r.int()
	if s := r.raw(); len(s) > 0 {
		// A copy: the record's memory is the transaction's.
		a.Settings = append(json.RawMessage(nil), s...)
	}
	if n := r.count(); n > 0 {
		a.Lots = make([]ledger.Lot, n)
		for i := range a.Lots {
			l := &a.Lots[i]
			l.ID, l.Granted, l.Left, l.Held = r.str(), r.int(), r.int(), r.int()
			l.Priority, l.Expires, l.Created = r.int(), r.int(), r.int()
			l.Desc, l.Ended = r.str(), r.str()
		}
	}
}

func (x *reservation) encode() []byte {
	w := newRecord(48 + len(x.Entry) + len(x.Idem) + len(x.FP) + 24*len(x.G))
	w.str(x.State)
	w.int(x.Q)
	w.int(x.B)
	w.int(x.O)
	w.int(x.Per)
	w.parts(x.G)
	w.int(x.Exp)
	w.int(x.Due)
	w.int(x.Charged)
	w.int(x.Bal)
	w.int(x.Avail)
	w.bool(x.Late)
	w.str(x.Entry)
	w.str(x.Idem)
	w.str(x.FP)
	w.bool(x.Job)
	return w
}

func (x *reservation) decode(r *rbuf) {
	x.State, x.Q, x.B, x.O, x.Per = r.str(), r.int(), r.int(), r.int(), r.int()
	x.G = r.parts()
	x.Exp, x.Due, x.Charged, x.Bal, x.Avail = r.int(), r.int(), r.int(), r.int(), r.int()
	x.Late, x.Entry, x.Idem, x.FP, x.Job = r.bool(), r.str(), r.str(), r.str(), r.bool()
}

func (e *entry) encode() []byte {
	w := newRecord(48 + len(e.Type) + len(e.Description) + len(e.Route) + len(e.RequestID) +
		len(e.ReservationID) + len(e.RefundOf) + len(e.JobID) + len(e.UpstreamJobID) + 24*len(e.G) +
		len(e.PaymentIntent) + len(e.ExternalID))
	w.str(e.Type)
	w.int(e.Amount)
	w.int(e.BalanceAfter)
	w.str(e.Description)
	w.str(e.Route)
	w.str(e.RequestID)
	w.str(e.ReservationID)
	w.bool(e.Late)
	w.int(e.Quota)
	w.int(e.Overage)
	w.int(int64(e.Pages))
	w.str(e.RefundOf)
	w.str(e.JobID)
	w.str(e.UpstreamJobID)
	w.int(e.Shortfall)
	w.parts(e.G)
	w.str(e.PaymentIntent)
	w.str(e.ExternalID)
	return w
}

func (e *entry) decode(r *rbuf) {
	e.Type, e.Amount, e.BalanceAfter = r.str(), r.int(), r.int()
	e.Description, e.Route, e.RequestID, e.ReservationID = r.str(), r.str(), r.str(), r.str()
	e.Late, e.Quota, e.Overage, e.Pages = r.bool(), r.int(), r.int(), int(r.int())
	e.RefundOf, e.JobID, e.UpstreamJobID, e.Shortfall = r.str(), r.str(), r.str(), r.int()
	e.G = r.parts()
	e.PaymentIntent, e.ExternalID = r.str(), r.str()
}

func (n *counters) encode() []byte {
	w := newRecord(16)
	w.int(n.Requests)
	w.int(n.Pages)
	w.int(n.Credits)
	return w
}

func (n *counters) decode(r *rbuf) { n.Requests, n.Pages, n.Credits = r.int(), r.int(), r.int() }

func decodeAccount(raw []byte) (*account, error) {
	if raw == nil {
		return nil, errors.New("no account record")
	}
	a := new(account)
	return a, decodeRecord(raw, a, a.decode)
}

func decodeReservation(raw []byte, x *reservation) error { return decodeRecord(raw, x, x.decode) }

func decodeEntry(raw []byte, e *entry) error { return decodeRecord(raw, e, e.decode) }

func decodeCounters(raw []byte, n *counters) error { return decodeRecord(raw, n, n.decode) }
