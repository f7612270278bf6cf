package redisstore

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// lease_settle.lua's inline paths for the common request are settle's
// (ledger.Account.Settle): the same random groups on twin accounts, one
// settled by the library as it is, the other by the library with the
// inline paths off (every request through settle), leave the same
// account, lease, ledger entries (every field, in order), usage, series,
// events and replies, after every call. Groups mix what takes the inline
// paths with what does not (late, uncapped beyond the share, no
// description, no pages, a lease run dry), on accounts with a low-balance
// threshold, a quota and an overage cap, a credit grant.
func TestSettleLeaseInlineIsSettle(t *testing.T) {
	files := libraryFiles(t)
	src := string(files["lease_settle.lua"].Data)
	const on = "local inline = true"
	if !strings.Contains(src, on) {
		t.Fatalf("lease_settle.lua has no %q", on)
	}
	files["lease_settle.lua"] = &fstest.MapFile{Data: []byte(strings.Replace(src, on, "local inline = false", 1))}
	ver, code := buildLibrary(files)
	s := newStore(t, Options{})
	if err := s.c.FunctionLoad(ctx, code).Err(); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	slow := "cg" + ver + "_lease_settle"
	if slow == leaseSettleScript.fn {
		t.Fatal("the library without the inline paths is the same library")
	}
	if err := loadLibrary(ctx, s.c); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]meter.Settings{"balance": {}, "low_balance": {LowBalanceThreshold: c(60)},
		"quota": {MonthlyQuota: c(20), OverageCap: c(10)}, "grants": {}} {
		t.Run(name, func(t *testing.T) {
			ids := []string{newAccount(t, s, c(100)), newAccount(t, s, c(100))}
			grants := []string{"", ""} // the twins' grant ids, which differ
			for k, id := range ids {
				if _, err := s.UpdateSettings(ctx, id, st); err != nil {
					t.Fatal(err)
				}
				if name == "grants" {
					g, err := s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: id, Amount: c(30),
						Description: "promo"})
					if err != nil {
						t.Fatal(err)
					}
					grants[k] = g.ID
				}
				if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: "lease", Amount: c(70),
					TTL: time.Hour}); err != nil {
					t.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			period := []int64{0, 0}
			for step := range 40 {
				var reqs []any
				for j := range 1 + rng.IntN(6) {
					rid := fmt.Sprintf("r%d_%d", step, j)
					amount := int64(rng.IntN(5)*700 + rng.IntN(2))
					carve := amount
					switch rng.IntN(4) {
					case 0:
						carve = amount / 2
					case 1:
						carve = amount + 300
					}
					desc, route := "POST /v1/convert", "convert"
					if rng.IntN(8) == 0 {
						desc = ""
					}
					if rng.IntN(4) == 0 {
						route = "ocr"
					}
					reqs = append(reqs, rid, amount, desc, route, "req-"+rid, rng.IntN(3),
						leaseOpt(rng.IntN(5) == 0, rng.IntN(12) == 0, meter.Credits(amount), meter.Credits(carve)))
				}
				var reps [2][]any
				for k, fn := range []string{leaseSettleScript.fn, slow} {
					for {
						keys := append(s.accountKeys(ids[k]), s.usageKey(ids[k], period[k]), s.seriesKey(ids[k]))
						args := append([]any{s.retainMS, "lease", period[k], nonce()}, reqs...)
						v, err := s.c.FCall(ctx, fn, keys, args...).Slice()
						if err != nil {
							t.Fatalf("step %d: %v", step, err)
						}
						if v[0] == "period" {
							period[k] = v[1].(int64)
							continue
						}
						reps[k] = v
						break
					}
				}
				for k := range reps {
					// The requests' values without their entry ids.
					if len(reps[k]) != 14 {
						t.Fatalf("step %d: reply %v", step, reps[k])
					}
					rows, err := settledRows(reps[k][13].(string), len(reqs)/7)
					if err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					for i := range rows {
						rows[i].EntryID = ""
					}
					reps[k][13] = rows
				}
				if !reflect.DeepEqual(reps[0], reps[1]) {
					t.Fatalf("step %d: replies\n%v\n%v", step, reps[0], reps[1])
				}
				a, b := leaseState(t, s, ids[0], period[0], grants[0]), leaseState(t, s, ids[1], period[1], grants[1])
				if !reflect.DeepEqual(a, b) {
					t.Fatalf("step %d: state\n%v\n%v", step, a, b)
				}
			}
		})
	}
}

// leaseState is what a group settle writes of account id, without what
// differs between twin accounts (times, ids, nonces; its credit grant's
// id, grant, is written "G").
func leaseState(t *testing.T, s *Store, id string, period int64, grant string) map[string]any {
	t.Helper()
	g := func(v string) string {
		if grant == "" {
			return v
		}
		return strings.ReplaceAll(v, grant, "G")
	}
	k := s.accountKeys(id)
	out := map[string]any{}
	acct, err := s.c.HGetAll(ctx, k[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"created_ms", "updated_ms", "nonce", "due"} {
		delete(acct, f)
	}
	if lots, ok := acct["lots"]; ok {
		f := strings.Split(g(lots), "|")
		f[6] = "" // its creation
		acct["lots"] = strings.Join(f, "|")
	}
	out["account"] = acct
	rec, err := s.c.HGet(ctx, k[2], "lease").Result()
	if err != nil {
		t.Fatal(err)
	}
	parts, err := s.c.HGet(ctx, k[3], "h:lease").Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	out["lease_parts"] = g(parts)
	f := strings.Split(rec, "|")
	f[5], f[11] = "", "" // not the expiry or the nonce
	out["lease"] = f
	xs, err := s.c.XRange(ctx, k[4], "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var entries [][]string
	for _, x := range xs {
		// The fields in their order, as stored.
		v, err := s.c.Do(ctx, "XRANGE", k[4], x.ID, x.ID).Slice()
		if err != nil {
			t.Fatal(err)
		}
		var fs []string
		for _, f := range v[0].([]any)[1].([]any) {
			fs = append(fs, g(f.(string)))
		}
		entries = append(entries, fs)
	}
	out["entries"] = entries
	var events []string
	evs, err := s.c.HGetAll(ctx, k[6]).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		f := strings.Split(e, "|")
		events = append(events, f[0]+"|"+strings.Join(f[2:], "|")) // not its time
	}
	slices.Sort(events)
	out["events"] = events
	for _, key := range []string{s.usageKey(id, period), s.seriesKey(id)} {
		h, err := s.c.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(key, s.prefix+":{"+id+"}:")] = h
	}
	return out
}
