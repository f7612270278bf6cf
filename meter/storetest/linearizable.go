package storetest

import (
	"fmt"
	"maps"
	"math/rand"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// Linearizable runs concurrent reserves, commits (some repeated, as a
// settle retried after a lost reply), voids and grants of clients callers
// on two accounts of s, records the history (each call's arguments, reply
// and time span) and checks with porcupine that some order of the calls,
// within their spans, is one meter/ledger's model takes step by step to
// the very replies the store gave: balances, amounts, refusals.
func Linearizable(t *testing.T, s meter.Store, clients, ops int, seed int64) {
	s = meter.Validated(s) // as the app: the stores leave input checks to it
	accts := []string{newID("lin"), newID("lin")}
	for _, id := range accts {
		if _, err := s.CreateAccount(ctx, id, meter.Credits(linInit().a.Balance)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: c(5), OverageCap: c(3)}); err != nil {
			t.Fatal(err)
		}
	}
	_, hasGrants := meter.StoreAs[meter.GrantStore](s)
	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed*100 + int64(cl)))
			var mine []linIn // this client's reserves, to settle
			for n := 0; n < ops; n++ {
				in := linIn{acct: accts[rng.Intn(len(accts))], amount: int64(rng.Intn(6))*1000 + int64(rng.Intn(2))*500}
				switch k := rng.Intn(10); {
				case k < 4 || len(mine) == 0:
					in.kind, in.rid = "reserve", fmt.Sprintf("c%d-%d", cl, n)
					mine = append(mine, in)
				case k < 7:
					p := mine[rng.Intn(len(mine))]
					in.kind, in.acct, in.rid = "commit", p.acct, p.rid
				case k < 8:
					p := mine[rng.Intn(len(mine))]
					in.kind, in.acct, in.rid = "void", p.acct, p.rid
				case k < 9 && hasGrants:
					in.kind, in.amount = "creditgrant", in.amount+500
				default:
					in.kind, in.amount = "grant", in.amount+500
					if rng.Intn(2) == 0 {
						in.amount = -in.amount
					}
				}
				call := time.Since(start).Nanoseconds()
				out := linCall(s, in)
				ret := time.Since(start).Nanoseconds()
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if clients == 1 { // sequential: the first reply the model disagrees with
		states := map[string]linState{}
		for _, op := range history {
			in := op.Input.(linIn)
			st, ok := states[in.acct]
			if !ok {
				st = linInit()
			}
			var want linOut
			states[in.acct], want = linStep(st, in, op.Output.(linOut))
			if want != op.Output.(linOut) {
				t.Fatalf("%+v: store %+v, model %+v", in, op.Output, want)
			}
		}
	}
	res, info := porcupine.CheckOperationsVerbose(linModel, history, time.Minute)
	if res != porcupine.Ok {
		t.Errorf("history of %d operations is %s against the model", len(history), res)
		if res == porcupine.Illegal {
			for _, part := range info.PartialLinearizations() {
				if len(part) > 0 {
					t.Logf("longest partial linearization of a partition: %d operations", len(part[0]))
				}
			}
		}
	}
}

// errCode is err's code, "" for none.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	return meter.ErrorCode(err)
}

type linIn struct {
	kind, acct, rid string
	amount          int64
}

type linOut struct {
	code                   string
	amount, balance, avail int64
	// lot and created name a credit grant the store made (creditgrant):
	// the model takes them from the store's reply.
	lot     string
	created int64
}

func linCall(s meter.Store, in linIn) linOut {
	switch in.kind {
	case "reserve":
		r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: in.acct, ID: in.rid, Amount: meter.Credits(in.amount),
			TTL: time.Hour, Period: month(1)})
		return linOut{errCode(err), int64(r.Amount), int64(r.Balance), int64(r.Available), "", 0}
	case "commit":
		st, err := s.Commit(ctx, meter.CommitRequest{AccountID: in.acct, ReservationID: in.rid, Amount: meter.Credits(in.amount), Route: "/lin"})
		return linOut{errCode(err), int64(st.Charged), int64(st.Balance), int64(st.Available), "", 0}
	case "void":
		st, err := s.Void(ctx, in.acct, in.rid)
		return linOut{errCode(err), 0, int64(st.Balance), int64(st.Available), "", 0}
	case "creditgrant":
		gs, _ := meter.StoreAs[meter.GrantStore](s)
		g, err := gs.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: in.acct, Amount: meter.Credits(in.amount),
			Priority: in.amount % 2, ExpiresAt: time.Now().Add(time.Hour)})
		return linOut{code: errCode(err), amount: int64(g.Remaining), lot: g.ID, created: g.CreatedAt.UnixMilli()}
	default:
		typ := meter.EntryPurchase
		if in.amount < 0 {
			typ = meter.EntryAdjustment
		}
		e, err := s.Grant(ctx, meter.Grant{AccountID: in.acct, Type: typ, Amount: meter.Credits(in.amount)})
		return linOut{code: errCode(err), balance: int64(e.BalanceAfter)}
	}
}

// linState is one account in the model: its money state and its holds.
type linState struct {
	a     ledger.Account
	holds map[string]linHold
}

type linHold struct {
	h        ledger.Hold
	state    byte
	bal, avl int64 // a committed hold's settlement
}

func linInit() linState {
	var a ledger.Account
	a.Balance, a.TotalPurchased = int64(c(20)), int64(c(20))
	a.QuotaLimit, a.OverageCap = int64(c(5)), int64(c(3))
	return linState{a: a, holds: map[string]linHold{}}
}

var linModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(linIn).acct
			if by[k] == nil {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return linInit() },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(linState), input.(linIn), output.(linOut)
		next, want := linStep(st, in, out)
		return want == out, next
	},
	Equal: func(x, y any) bool { return reflect.DeepEqual(x, y) },
}

// linStep is the model's reply to in and the state after it; got is the
// store's reply, whose new grant's id and creation time the model takes
// (its expiry, an hour ahead, never comes in a run).
func linStep(st linState, in linIn, got linOut) (linState, linOut) {
	a := st.a
	a.Lots = slices.Clone(a.Lots) // states are values: porcupine keeps the old ones
	holds := st.holds
	avail := func() int64 { return a.Balance - a.Reserved }
	var out linOut
	h, seen := holds[in.rid]
	switch in.kind {
	case "reserve":
		a.Roll(month(1).Millis())
		if seen {
			out.code = meter.ECodeInvalid
			break
		}
		nh, err := a.Reserve(in.amount, 0)
		if err != nil {
			out = linOut{code: errCode(err)}
			break
		}
		holds = maps.Clone(holds)
		holds[in.rid] = linHold{h: nh, state: refHeld}
		out = linOut{amount: nh.Amount(), balance: a.Balance, avail: avail()}
	case "commit":
		switch {
		case !seen:
			out.code = meter.ECodeReservationNotFound
		case h.state == refCommitted:
			out = linOut{amount: h.h.Amount(), balance: h.bal, avail: h.avl}
		case h.state == refVoided:
			out.code = meter.ECodeReservationSettled
		default:
			s := a.Settle(h.h, false, in.amount, false)
			holds = maps.Clone(holds)
			holds[in.rid] = linHold{h: s.Parts, state: refCommitted, bal: a.Balance, avl: avail()}
			out = linOut{amount: s.Charged, balance: a.Balance, avail: avail()}
		}
	case "void":
		switch {
		case !seen:
			out.code = meter.ECodeReservationNotFound
		case h.state == refCommitted:
			out.code = meter.ECodeReservationSettled
		case h.state == refHeld:
			a.Release(h.h)
			holds = maps.Clone(holds)
			holds[in.rid] = linHold{h: h.h, state: refVoided}
			fallthrough
		default:
			out = linOut{balance: a.Balance, avail: avail()}
		}
	case "creditgrant":
		if got.code != "" {
			out.code = meter.ECodeInternal // the store refused what the model takes
			break
		}
		e, _, err := a.AddLot(ledger.Lot{ID: got.lot, Granted: in.amount, Priority: in.amount % 2, Created: got.created,
			Expires: got.created + 3_600_000})
		out = linOut{code: errCode(err), amount: e.Amount, lot: got.lot, created: got.created}
	default:
		typ := meter.EntryPurchase
		if in.amount < 0 {
			typ = meter.EntryAdjustment
		}
		e, _, err := a.Grant(typ, in.amount)
		out = linOut{code: errCode(err), balance: e.BalanceAfter}
	}
	return linState{a: a, holds: holds}, out
}
