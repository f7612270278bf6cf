package storetest

import (
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// ModelClock is how a model-based run moves a store's clock: a store with
// a fake clock moves it by d; one on a server's clock (Redis) sleeps. TTL
// is the TTL of the holds meant to expire at the next Advance: a fake
// clock may make it 1 ms, a real one needs room for the calls made while
// they are held (Real: the clock runs between calls too).
type ModelClock struct {
	TTL     time.Duration
	Real    bool
	Advance func(d time.Duration)
	// Now is the store's clock; with it, on a store that keeps credit
	// grants (meter.GrantStore), the run creates, voids and expires them.
	Now func() time.Time
}

// ModelSteps is how many operations a model-based run makes: the default,
// or MODEL_STEPS from the environment for a longer run.
func ModelSteps(def int) int {
	if n, err := strconv.Atoi(os.Getenv("MODEL_STEPS")); err == nil && n > 0 {
		return n
	}
	return def
}

// RunModel applies steps random operations (seeded by seed) to accounts
// of s and to the reference model (meter/ledger), and compares after each
// one: the reply (amounts, refusal codes), the account's balance,
// reserved, quota and overage states and totals, its whole ledger (and
// that it sums to the balance) and its pending events. Operations:
// reserve (short or long TTL, with a minimum, in the account's period,
// with an idempotency key: replays, conflicts, keys reused),
// commit (capped, uncapped, of held, expired, committed and voided holds:
// a retried settle is a repeated commit), void, grant (purchase and
// negative adjustment), refund (whole or partial), settings (quota,
// overage cap, low-balance threshold, mid-period), a new period, the
// clock passing the short holds' TTL, and credit grants (model_grants.go).
func RunModel(t *testing.T, s meter.Store, clk ModelClock, seed int64, steps int) {
	s = meter.Validated(s) // as the app: the stores leave input checks to it
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d, %d steps", seed, steps)
	accts := make([]*refAccount, 4)
	for i := range accts {
		initial := int64(rng.Intn(4)) * 5000
		id := newID("model")
		if _, err := s.CreateAccount(ctx, id, meter.Credits(initial)); err != nil {
			t.Fatal(err)
		}
		accts[i] = newRefAccount(id, initial)
	}
	// firstShort and lastShort are when the first short hold since the
	// clock last advanced was asked for and the last one taken. On a real
	// clock the run advances (sleeps past the TTL) before the first one
	// could expire unseen, whatever the generator draws.
	var firstShort, lastShort time.Time
	gs, _ := meter.StoreAs[meter.GrantStore](s)
	if clk.Now == nil {
		gs = nil // the model cannot tell which grants expired
	}
	advance := func(step int) {
		desc := "advance the clock past the short TTL"
		wait := clk.TTL + 5*time.Millisecond
		if clk.Real {
			wait -= time.Since(lastShort)
		}
		if wait > 0 {
			clk.Advance(wait)
		}
		firstShort = time.Time{}
		for _, a := range accts {
			a.expire()
			if gs != nil {
				a.lotNow = clk.Now().UnixMilli()
				a.endLots()
			}
		}
		for _, a := range accts {
			compareModel(t, s, a, step, desc)
		}
	}
	amount := func() int64 { return int64(rng.Intn(12))*1000 + int64(rng.Intn(3))*250 }
	for step := 0; step < steps; step++ {
		if clk.Real && !firstShort.IsZero() && time.Since(firstShort) > clk.TTL/2 {
			advance(step)
		}
		r := accts[rng.Intn(len(accts))]
		var desc string
		var got, want any
		var gerr, werr error
		switch k := rng.Intn(100); {
		case gs != nil && rng.Intn(100) < 8:
			desc, gerr, werr = grantStep(rng, gs, clk, r)
		case k < 24:
			rid := fmt.Sprintf("r%d", step)
			if len(r.holds) > 0 && rng.Intn(20) == 0 {
				if used := anyHold(rng, r); used != "" { // "": only jobs' holds
					rid = used // an id already used
				}
			}
			amt, min := amount(), int64(0)
			if rng.Intn(4) == 0 {
				min = amt / 2
			}
			short := rng.Intn(3) == 0
			ttl := time.Hour
			if short {
				ttl = clk.TTL
			}
			key, fp := "", ""
			if rng.Intn(3) == 0 { // a retried request, or another one reusing its key
				key, fp = fmt.Sprint("k", rng.Intn(4)), []string{"f", "f", "f", "g"}[rng.Intn(4)]
			}
			desc = fmt.Sprintf("reserve %s %s %d min %d short %v month %d key %q %q", r.id, rid, amt, min, short, r.month, key, fp)
			req := meter.ReserveRequest{AccountID: r.id, ID: rid, Amount: meter.Credits(amt), Minimum: meter.Credits(min), TTL: ttl,
				IdempotencyKey: key, Fingerprint: fp}
			if r.month > 0 {
				req.Period = month(r.month)
			}
			if short && firstShort.IsZero() {
				firstShort = time.Now()
			}
			res, err := s.Reserve(ctx, req)
			if short && err == nil {
				lastShort = time.Now()
			}
			w, replayed, werr2 := r.reserve(rid, amt, min, short, key, fp)
			if !res.Replayed {
				res.ID = ""
			}
			got, gerr = fmt.Sprintf("amount %d replay of %q", res.Amount, res.ID), err
			want, werr = fmt.Sprintf("amount %d replay of %q", meter.Credits(w), replayed), werr2
		case k < 46:
			rid := anyHold(rng, r)
			if rid == "" || rng.Intn(15) == 0 {
				rid = "nohold"
			}
			amt, unc := amount(), rng.Intn(5) == 0
			desc = fmt.Sprintf("commit %s %s %d uncapped %v", r.id, rid, amt, unc)
			st, err := s.Commit(ctx, meter.CommitRequest{AccountID: r.id, ReservationID: rid, Amount: meter.Credits(amt),
				Route: "/m", Uncapped: unc})
			w, werr2 := r.commit(rid, amt, unc)
			if st.EntryID != "" {
				st.EntryID = "?"
			}
			got, gerr, want, werr = st, err, w, werr2
		case k < 54:
			rid := anyHold(rng, r)
			if rid == "" {
				rid = "nohold"
			}
			desc = fmt.Sprintf("void %s %s", r.id, rid)
			_, gerr = s.Void(ctx, r.id, rid)
			werr = r.void(rid)
		case k < 66:
			typ, amt := meter.EntryPurchase, amount()+1000
			if rng.Intn(3) == 0 {
				typ, amt = meter.EntryAdjustment, -amount()-250
			}
			desc = fmt.Sprintf("grant %s %s %d", r.id, typ, amt)
			_, gerr = s.Grant(ctx, meter.Grant{AccountID: r.id, Type: typ, Amount: meter.Credits(amt)})
			werr = r.grant(typ, amt)
		case k < 72:
			if len(r.ids) == 0 {
				continue
			}
			i := rng.Intn(len(r.ids))
			amt := int64(0)
			if rng.Intn(2) == 0 {
				amt = int64(rng.Intn(3000) + 1)
			}
			desc = fmt.Sprintf("refund %s entry %d (%s) %d", r.id, i, r.ids[i], amt)
			_, gerr = s.Refund(ctx, meter.Refund{AccountID: r.id, EntryID: r.ids[i], Amount: meter.Credits(amt)})
			werr = r.refund(i, amt)
		case k < 78:
			q, oc, th := int64(rng.Intn(3))*4000, int64(rng.Intn(3))*3000, int64(rng.Intn(3))*4000
			desc = fmt.Sprintf("settings %s quota %d cap %d threshold %d", r.id, q, oc, th)
			_, gerr = s.UpdateSettings(ctx, r.id, meter.Settings{MonthlyQuota: meter.Credits(q),
				OverageCap: meter.Credits(oc), LowBalanceThreshold: meter.Credits(th)})
			r.settings(q, oc, th)
		case k < 84:
			id := fmt.Sprintf("j%d", step)
			rates := map[string]int64{"a": jobRates[rng.Intn(len(jobRates))], "b": jobRates[rng.Intn(len(jobRates))]}
			est := amount()
			desc = fmt.Sprintf("create job %s %s rates %v estimate %d", r.id, id, rates, est)
			req := meter.JobRequest{AccountID: r.id, ID: id, Route: "/jobs", Rates: map[string]meter.Credits{},
				Estimate: meter.Credits(est), TTL: time.Hour}
			for c, v := range rates {
				req.Rates[c] = meter.Credits(v)
			}
			if r.month > 0 {
				req.Period = month(r.month)
			}
			_, gerr = s.CreateJob(ctx, req)
			werr = r.createJob(id, rates, est)
		case k < 94:
			id := anyJob(rng, r)
			if id == "" {
				continue
			}
			j := r.jobs[id]
			var res meter.JobResult
			var cost int64
			switch rng.Intn(8) {
			case 0, 1:
				desc = fmt.Sprintf("resume job %s %s", r.id, id)
				if j.status == meter.JobBlocked && rng.Intn(2) == 0 {
					// A purchase first, as a customer unblocking a job would.
					desc += " after a purchase of 40"
					if _, err := s.Grant(ctx, meter.Grant{AccountID: r.id, Type: meter.EntryPurchase, Amount: c(40)}); err != nil {
						t.Fatal(err)
					}
					if err := r.grant(meter.EntryPurchase, int64(c(40))); err != nil {
						t.Fatal(err)
					}
				}
				var p meter.Period
				if r.month > 0 {
					p = month(r.month)
				}
				res, gerr = s.ResumeJob(ctx, r.id, id, p, "")
				cost, werr = r.resumeJob(id)
			case 2:
				desc = fmt.Sprintf("cancel job %s %s", r.id, id)
				res, gerr = s.CancelJob(ctx, r.id, id)
				werr = r.cancelJob(id)
			default:
				done := map[string]int{}
				for _, c := range []string{"a", "b"} {
					if rng.Intn(3) > 0 {
						done[c] = j.reported[c] + rng.Intn(4)
					}
				}
				final, failed := "", j.failed
				if rng.Intn(4) == 0 {
					final = []string{meter.JobCompleted, meter.JobFailed}[rng.Intn(2)]
				}
				desc = fmt.Sprintf("report job %s %s done %v final %q", r.id, id, done, final)
				rep := meter.JobReport{AccountID: r.id, JobID: id, Done: done, Failed: failed, Final: final}
				if r.month > 0 {
					rep.Period = month(r.month)
				}
				res, gerr = s.ReportJob(ctx, rep)
				cost, werr = r.reportJob(id, done, failed, final)
			}
			got = fmt.Sprintf("charged %d status %s debited %d", res.Charged, res.Job.Status, res.Job.Debited)
			want = fmt.Sprintf("charged %d status %s debited %d", cost, j.status, j.debited)
		case k < 96:
			r.month++
			continue // applied by the account's next reserve
		default:
			advance(step)
			continue
		}
		if gs != nil {
			r.endLots() // as the stores do after every operation
		}
		if os.Getenv("MODEL_TRACE") != "" { // every step, to read a divergence's history
			t.Logf("step %d, %s: store %v %v, model %v %v", step, desc, got, gerr, want, werr)
		}
		if meter.ErrorCode(gerr) != meter.ErrorCode(werr) {
			t.Fatalf("step %d, %s: store error %v, model %v", step, desc, gerr, werr)
		}
		if gerr == nil && fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d, %s:\nstore %+v\nmodel %+v", step, desc, got, want)
		}
		compareModel(t, s, r, step, desc)
	}
	if gs != nil {
		logGrantParts(t, accts)
	}
}

// eventSeq is the rank of an event id "<ms>-<seq>": seq numbers the
// account's events.
func eventSeq(id string) int64 {
	_, seq, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(seq, 10, 64)
	return n
}

// jobRates are the page rates of the jobs a run creates.
var jobRates = []int64{0, 250, 1000, 2500}

// anyJob is a job id of the account, or "" if none.
func anyJob(rng *rand.Rand, r *refAccount) string {
	ids := make([]string, 0, len(r.jobs))
	for id := range r.jobs {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return ""
	}
	sort.Strings(ids)
	return ids[rng.Intn(len(ids))]
}

// anyHold is a reservation id the account used, or "" if none.
// Jobs' holds are left out: see JobHoldIsNotAReservation.
func anyHold(rng *rand.Rand, r *refAccount) string {
	rids := make([]string, 0, len(r.holds))
	for rid, h := range r.holds {
		if !h.job {
			rids = append(rids, rid)
		}
	}
	if len(rids) == 0 {
		return ""
	}
	sort.Strings(rids)
	return rids[rng.Intn(len(rids))]
}

// compareModel compares the store's account, ledger and pending events
// with the model's, and learns the ids of new entries.
func compareModel(t *testing.T, s meter.Store, r *refAccount, step int, desc string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d, after %s: account %s: %s", step, desc, r.id, fmt.Sprintf(format, args...))
	}
	acct, err := s.Account(ctx, r.id)
	if err != nil {
		fail("Account: %v", err)
	}
	a := r.a
	q, o := a.State()
	want := meter.Account{Balance: meter.Credits(a.Balance), Reserved: meter.Credits(a.Reserved),
		Available: meter.Credits(a.Balance - a.Reserved), TotalPurchased: meter.Credits(a.TotalPurchased),
		TotalUsed: meter.Credits(a.TotalUsed), Quota: q, Overage: o}
	gotm := meter.Account{Balance: acct.Balance, Reserved: acct.Reserved, Available: acct.Available,
		TotalPurchased: acct.TotalPurchased, TotalUsed: acct.TotalUsed, Quota: acct.Quota, Overage: acct.Overage}
	if !gotm.Quota.ResetsAt.Equal(want.Quota.ResetsAt) {
		fail("quota resets at %v, model %v", gotm.Quota.ResetsAt, want.Quota.ResetsAt)
	}
	gotm.Quota.ResetsAt, want.Quota.ResetsAt = time.Time{}, time.Time{}
	if fmt.Sprintf("%+v", gotm) != fmt.Sprintf("%+v", want) {
		fail("\nstore %+v\nmodel %+v", gotm, want)
	}
	// The whole ledger every 100 steps; in between its total and the
	// entries since the last compare (and one before), so that a long
	// run does not read every entry at every step.
	es, from := []meter.LedgerEntry(nil), 0
	if step%100 == 0 || len(r.ids) == 0 || len(r.entries)-len(r.ids) >= 999 {
		es = oldestFirst(t, s, r.id)
	} else {
		from = len(r.ids) - 1
		var err error
		if es, err = s.Ledger(ctx, meter.LedgerQuery{AccountID: r.id, Limit: len(r.entries) - from}); err != nil {
			fail("Ledger: %v", err)
		}
		slices.Reverse(es)
		total, err := s.LedgerTotal(ctx, meter.LedgerQuery{AccountID: r.id})
		if err != nil || total != len(r.entries) {
			fail("%d ledger entries (%v), model %d", total, err, len(r.entries))
		}
	}
	if from+len(es) != len(r.entries) {
		fail("%d ledger entries, model %d", from+len(es), len(r.entries))
	}
	var sum meter.Credits
	for j, e := range es {
		i := from + j
		m := r.entries[i]
		sum += e.Amount
		g := ledger.Entry{Type: e.Type, Amount: int64(e.Amount), BalanceAfter: int64(e.BalanceAfter), Quota: int64(e.Quota),
			Overage: int64(e.Overage), Shortfall: int64(e.Shortfall), Late: e.Late}
		var granted int64
		for _, p := range m.Lots {
			granted += p.N
		}
		m.Lots = nil // the store shows their sum (Granted)
		if !reflect.DeepEqual(g, m) || int64(e.Granted) != granted {
			fail("entry %d:\nstore %+v (granted %s)\nmodel %+v (granted %d)", i, g, e.Granted, m, granted)
		}
		if i < len(r.ids) && r.ids[i] != e.ID {
			fail("entry %d has id %s, was %s", i, e.ID, r.ids[i])
		}
		if i >= len(r.ids) {
			r.ids = append(r.ids, e.ID)
		}
	}
	if from == 0 && sum != acct.Balance {
		fail("ledger sums to %s, balance %s", sum, acct.Balance)
	}
	evs, n, err := s.PendingEvents(ctx, r.id, 1000)
	if err != nil {
		fail("PendingEvents: %v", err)
	}
	if n != len(r.events) || len(evs) != min(n, 1000) {
		fail("%d events (%d listed), model %d: %+v", n, len(evs), len(r.events), evs)
	}
	if n > 1000 {
		return // listed by due time then id: which 1000 is the stores' choice
	}
	// Both stores list events of one millisecond by id as a string
	// ("ms-10" before "ms-9"): compared in the order they were raised.
	sort.SliceStable(evs, func(i, j int) bool { return eventSeq(evs[i].ID) < eventSeq(evs[j].ID) })
	for i, e := range evs {
		m := r.events[i]
		g := ledger.Event{Type: e.Type, Balance: int64(e.Balance), Threshold: int64(e.Threshold), Limit: int64(e.Limit),
			Used: int64(e.Used)}
		if !e.ResetsAt.IsZero() {
			g.Resets = e.ResetsAt.UnixMilli()
		}
		if g != m {
			fail("event %d:\nstore %+v\nmodel %+v", i, g, m)
		}
	}
}
