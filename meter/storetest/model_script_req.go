package storetest

import (
	"fmt"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Requests' steps of a script (model_script.go): reserve, commit, void,
// refund, a purchase, a (negative) adjustment, the clock passing the short holds' TTL,
// settings and the period the calls name, each compared with the reference model: the answer (held
// amount, balance, available, quota and overage states; a settlement in
// full), or the refusal with its details.

// reqStep is a request's step: rid is the reservation's name in the
// script.
type reqStep struct {
	rid             string
	short, uncapped bool
	min             float64 // reserve: the minimum
	m               float64 // settings: the overage cap
	month           int     // period: the month the calls name, 0: none
}

func reserveShort(rid string, n float64) sstep {
	return sstep{op: "reserve", n: n, req: reqStep{rid: rid, short: true}}
}
func reserveStep(rid string, n float64) sstep {
	return sstep{op: "reserve", n: n, req: reqStep{rid: rid}}
}
func reserveMin(rid string, n, min float64) sstep {
	return sstep{op: "reserve", n: n, req: reqStep{rid: rid, min: min}}
}
func commitStep(rid string, n float64) sstep {
	return sstep{op: "commit", n: n, req: reqStep{rid: rid}}
}
func commitUncappedStep(rid string, n float64) sstep {
	return sstep{op: "commit", n: n, req: reqStep{rid: rid, uncapped: true}}
}

// refund refunds n (0: all) of the usage entry that rid's commit wrote.
func refund(rid string, n float64) sstep { return sstep{op: "refund", n: n, req: reqStep{rid: rid}} }
func totals() sstep                      { return sstep{op: "totals"} }
func adjust(n float64) sstep             { return sstep{op: "adjust", n: n} }
func voidStep(rid string) sstep          { return sstep{op: "void", req: reqStep{rid: rid}} }
func expireShort() sstep                 { return sstep{op: "expire"} }
func settingsStep(quota, overageCap float64) sstep {
	return sstep{op: "settings", n: quota, req: reqStep{m: overageCap}}
}
func period(m int) sstep { return sstep{op: "period", req: reqStep{month: m}} }

// scriptTTL is the TTL of the short holds: long enough for the calls
// between their reserve and the expire step on a loaded machine (the
// account is compared once they have expired).
const scriptTTL = 150 * time.Millisecond

// request applies a step that is not a job's to the store and the model
// and compares the answers, or the refusals.
func (sr *scriptRun) request(desc string, st sstep) {
	t, s, r, q := sr.t, sr.s, sr.r, st.req
	rid := sr.rids[q.rid]
	if rid == "" { // a new name, or none (another request's hold)
		rid = newRID()
		if q.rid != "" {
			sr.rids[q.rid] = rid
		}
	}
	var got, want any
	var gerr, werr error
	switch st.op {
	case "reserve":
		ttl := time.Minute
		if q.short {
			ttl = scriptTTL
		}
		res, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: r.id, ID: rid, Amount: c(st.n), Minimum: c(q.min),
			TTL: ttl, Period: sr.p})
		held, _, err2 := r.reserve(rid, int64(c(st.n)), int64(c(q.min)), q.short, "", "")
		gerr, werr = err, err2
		got = fmt.Sprint(res.Amount, res.Balance, res.Available, res.Quota, res.Overage)
		want = fmt.Sprint(meter.Credits(held), " ", sr.state())
	case "commit":
		res, err := s.Commit(ctx, meter.CommitRequest{AccountID: r.id, ReservationID: rid, Amount: c(st.n),
			Route: "/convert", Uncapped: q.uncapped})
		before := len(r.entries)
		w, err2 := r.commit(rid, int64(c(st.n)), q.uncapped)
		if len(r.entries) > before { // its usage entry, for a refund step
			sr.entries[q.rid] = scriptEntry{i: before, id: res.EntryID}
		}
		if res.EntryID != "" {
			res.EntryID = "?"
		}
		gerr, werr, got, want = err, err2, res, w
	case "refund":
		e, ok := sr.entries[q.rid]
		if !ok {
			t.Fatalf("%s: %s wrote no entry", desc, q.rid)
		}
		res, err := s.Refund(ctx, meter.Refund{AccountID: r.id, EntryID: e.id, Amount: c(st.n)})
		gerr, werr = err, r.refund(e.i, int64(c(st.n)))
		got = fmt.Sprint(res.Amount, res.BalanceAfter, res.RefundOf == e.id)
		if werr == nil {
			last := r.entries[len(r.entries)-1]
			want = fmt.Sprint(meter.Credits(last.Amount), meter.Credits(last.BalanceAfter), true)
		}
	case "void":
		res, err := s.Void(ctx, r.id, rid)
		gerr, werr = err, r.void(rid)
		got = fmt.Sprint(res.Balance, res.Available, res.Quota, res.Overage)
		want = fmt.Sprint(sr.state())
	case "buy":
		_, gerr = s.Grant(ctx, meter.Grant{AccountID: r.id, Amount: c(st.n), Type: meter.EntryPurchase})
		werr = r.grant(meter.EntryPurchase, int64(c(st.n)))
	case "totals": // compared after every step (compareModel): a reader's mark
	case "adjust":
		_, gerr = s.Grant(ctx, meter.Grant{AccountID: r.id, Type: meter.EntryAdjustment, Amount: c(st.n)})
		werr = r.grant(meter.EntryAdjustment, int64(c(st.n)))
	case "expire":
		time.Sleep(scriptTTL + 50*time.Millisecond)
		r.expire()
	case "settings":
		_, gerr = s.UpdateSettings(ctx, r.id, meter.Settings{MonthlyQuota: c(st.n), OverageCap: c(q.m),
			LowBalanceThreshold: meter.Credits(r.a.Threshold)})
		r.settings(int64(c(st.n)), int64(c(q.m)), r.a.Threshold)
	case "period":
		r.month, sr.p = q.month, meter.Period{}
		if q.month > 0 {
			sr.p = month(q.month)
		}
	default:
		t.Fatalf("%s: no such step", desc)
	}
	sameRefusal(t, desc, gerr, werr)
	if gerr == nil && fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\nstore %v\nmodel %v", desc, got, want)
	}
}

// state is the model's balance, available, quota and overage states, as
// a store's answers give them.
func (sr *scriptRun) state() string {
	a := sr.r.a
	q, o := a.State()
	return fmt.Sprint(meter.Credits(a.Balance), meter.Credits(a.Balance-a.Reserved), q, o)
}

// scriptEntry is a usage entry a script's commit wrote: its index in the
// model's ledger and its id in the store's.
type scriptEntry struct {
	i  int
	id string
}
