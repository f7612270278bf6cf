package redisstore

import (
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// One request's store work: a reserve script and a commit script.
func benchReserveCommit(b *testing.B, accounts int) {
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64})
	defer cl.Close()
	s := New(cl, Options{Prefix: fmt.Sprintf("bench%d", seq.Add(1))})
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench_%d", i)
		if _, err := s.CreateAccount(ctx, ids[i], MaxCredits/2); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(16) // requests in flight, as behind a busy gateway
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id, rid := ids[int(i)%accounts], fmt.Sprintf("r%d", i)
			_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: c(5), TTL: time.Minute})
			if err == nil {
				_, err = s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(3), Route: "/convert"})
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

// Many accounts: what one Redis serves when requests spread out.
func BenchmarkReserveCommit(b *testing.B) { benchReserveCommit(b, 1000) }

// One account takes every request: the per-slot worst case.
func BenchmarkReserveCommitHotAccount(b *testing.B) { benchReserveCommit(b, 1) }

// What the parts of the hot scripts cost inside Redis, without the cost of
// an FCALL: each sub-benchmark runs its part 100 times in one function
// call of a library built with probes (see buildLibrary), and reports
// microseconds per run of the part (plus a 100th of a round trip).
func BenchmarkScriptParts(b *testing.B) {
	s := newStore(b, Options{MaxBatch: 1})
	id := newAccount(b, s, c(1e9))
	keys := append(s.accountKeys(id), s.usageKey(id, 0), s.responseKey(id, "bench"), s.seriesKey(id))
	parts := []struct{ name, body string }{
		{"time", `for i = 1, N do now_ms() end`},
		{"hmget3", `for i = 1, N do redis.call('HMGET', KEYS[1], 'balance', 'reserved', 'due') end`},
		{"hmget12", `for i = 1, N do redis.call('HMGET', KEYS[1], unpack(FIELDS, 1, 12)) end`},
		{"open", `for i = 1, N do local a = open(13, true) if a.due_dirty then save(a, 'due') end end`},
		{"record", `for i = 1, N do record({state = 'h', q = 0, b = 5000, o = 0, per = 0, exp = 1700000000000,` +
			` nonce = 'abcdefghijklmnop.1a', idem = ''}) end`},
		{"with_state", `local a = open(13) for i = 1, N do with_state({'ok', 1, a.balance, 0, '', a.period}, a) end`},
		{"count_series", `local now = now_ms() for i = 1, N do count_series(KEYS[11], now, '/convert', 3, 3000) end`},
		{"load_res", `local K, A = KEYS, ARGV A[6] = 'n' OPS['reserve'](K, A) KEYS, ARGV = K, A` +
			` for i = 1, N do load_res(A[2]) end`},
		{"append", `for i = 1, N do append('usage', -3000, 1000, {'description', 'd', 'route', '/convert',` +
			` 'request_id', 'req', 'reservation_id', 'r123456', 'late', false, 'quota', 0, 'overage', 0,` +
			` 'pages', 1, 'shortfall', 0}) end`},
		{"save7", `local a = open(15) for i = 1, N do save(a, 'balance', 'reserved', 'q_res', 'o_res',` +
			` 'q_used', 'o_used', 'total_used') end`},
		{"hincrby3", `for i = 1, N do redis.call('HINCRBY', KEYS[9], '/convert\0requests', '1')` +
			` redis.call('HINCRBY', KEYS[9], '/convert\0pages', '1')` +
			` redis.call('HINCRBY', KEYS[9], '/convert\0credits', '3000') end`},
		{"finish", `local a = open(15) for i = 1, N do finish('x' .. i, {state = 'c', q = 0, b = 3000, o = 0,` +
			` per = 0, charged = 3000, bal = 5, avail = 5, idem = '', entry = '1-1'}, a) end`},
		{"int10", `for i = 1, N do for j = 1, 10 do int(123456789 + j) end end`},
		{"table17", `for i = 1, N do local a = {balance = 1, reserved = 2, q_res = 3, o_res = 4, q_used = 5,` +
			` o_used = 6, period = 7, period_end = 8, quota_limit = 9, overage_cap = 10, lb_threshold = 11,` +
			` due = 12, total_used = 13, lb_sent = 14, evt_seq = 15, total_purchased = 16, now = 17} end`},
		{"rec_match", `local raw = 'c|0|3000|0|0|0|3000|123456789|123456789|0|1700000000000-0|abcdefghijklmnop.1a|'` +
			` for i = 1, N do string.match(raw, REC) end`},
		{"zadd", `local now = now_ms() for i = 1, N do redis.call('ZADD', KEYS[2], now + 86400000, 'r:z' .. i) end`},
		{"hset_rec", `for i = 1, N do redis.call('HSET', KEYS[3], 'y' .. i, 'c|0|3000|0|0|0|3000|1|1|0|1-0||') end`},
		// The floor of bench/minpair.lua, inside a script: what a pair needs at the least.
		{"minpair", `for i = 1, N do local a = redis.call('HMGET', KEYS[1], 'balance', 'reserved')` +
			` redis.call('HINCRBY', KEYS[1], 'balance', -3) redis.call('HINCRBY', KEYS[1], 'reserved', 0)` +
			` redis.call('HINCRBY', KEYS[1], 'used', 3) redis.call('HSET', KEYS[3], 'm' .. i, '5')` +
			` redis.call('HDEL', KEYS[3], 'm' .. i) redis.call('XADD', KEYS[5], '*', 'type', 'usage',` +
			` 'amount', '-3', 'balance_after', a[1]) end`},
		// A lease's group settle (issue 17): 32 requests of one account in one
		// call, each its own ledger entry, the account, usage and series
		// written once; us/part is for the 32, a 32nd of it per request.
		{"lease_settle32", `for i = 1, N do local a = open(15, true) for j = 1, 32 do` +
			` a.balance = a.balance - 3000 append('usage', -3000, a.balance, {'description', 'd', 'route',` +
			` '/convert', 'request_id', 'req', 'reservation_id', 'r123456', 'pages', 1}) end` +
			` save(a, 'balance', 'total_used', 'due') redis.call('HINCRBY', KEYS[9], '/convert\0requests', '32')` +
			` redis.call('HINCRBY', KEYS[9], '/convert\0pages', '32')` +
			` redis.call('HINCRBY', KEYS[9], '/convert\0credits', '96000')` +
			` count_series(KEYS[11], a.now, '/convert', 32, 96000) end`},
		{"reserve", `local K, A = KEYS, ARGV local base = A[2] for i = 1, N do A[2], A[6] = base .. i, 'n' .. i` +
			` local r = OPS['reserve'](K, A) if r[1] ~= 'ok' then error(r[1]) end end`},
		{"reserve+commit", reserveCommitPart},
		{"void", `local K, A = KEYS, ARGV local base = A[2] local va = {A[1], ''} for i = 1, N do` +
			` A[2], A[6] = base .. i, 'n' .. i local r = OPS['reserve'](K, A) if r[1] ~= 'ok' then error(r[1]) end` +
			` va[2] = A[2] r = OPS['void'](K, va) if r[1] ~= 'ok' then error(r[1]) end end`},
		// lease_settle.lua itself, settling groups of 1 and 4 requests from
		// one lease: us/part is for the group.
		{"lease_settle1", leaseSettlePart(1)},
		{"lease_settle4", leaseSettlePart(4)},
	}
	runParts(b, s, keys, parts)
}

// reserveCommitPart is the reserve+commit part of BenchmarkScriptParts.
const reserveCommitPart = `local K, A = KEYS, ARGV local base = A[2]` +
	` local ca = {A[1], '', '3000', 'd', '/convert', 'req', '0', '0'} for i = 1, N do` +
	` A[2], A[6] = base .. i, 'n' .. i local r = OPS['reserve'](K, A) if r[1] ~= 'ok' then error(r[1]) end` +
	` ca[2] = A[2] r = OPS['commit'](K, ca) if r[1] ~= 'ok' then error(r[1]) end end`

// leaseSettlePart takes one large lease, then settles N groups of n
// requests from it, each group one call of lease_settle.lua.
func leaseSettlePart(n int) string {
	return fmt.Sprintf(`local K, A = KEYS, ARGV local lid = A[2] .. 'L' A[2], A[3], A[6] = lid, '1000000000', 'nl'`+
		` local r = OPS['reserve'](K, A) if r[1] ~= 'ok' then error(r[1]) end`+
		` local LK = {K[1], K[2], K[3], K[4], K[5], K[6], K[7], K[8], K[9], K[11]} for i = 1, N do`+
		` local la = {A[1], lid, '0', 'n' .. i} for j = 1, %d do for _, v in ipairs({lid .. i .. '_' .. j, '3000', 'd',`+
		` '/convert', 'req', '1', ''}) do la[#la + 1] = v end end`+
		` r = OPS['lease_settle'](LK, la) if r[1] ~= 'ok' then error(r[1]) end end`, n)
}

// BenchmarkScriptPartsGrants is reserve+commit on an account with n
// credit grants (never expiring, each large enough that a request takes
// only the first): what decoding, taking and saving the lots costs.
func BenchmarkScriptPartsGrants(b *testing.B) {
	for _, n := range []int{2, 20} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := newStore(b, Options{MaxBatch: 1})
			id := newAccount(b, s, c(1e9))
			for range n {
				if _, err := s.CreateCreditGrant(ctx, meter.CreditGrantRequest{AccountID: id, Amount: c(1e6),
					Description: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
			keys := append(s.accountKeys(id), s.usageKey(id, 0), s.responseKey(id, "bench"), s.seriesKey(id))
			runParts(b, s, keys, []struct{ name, body string }{{"reserve+commit", reserveCommitPart}})
		})
	}
}

// runParts runs each part 100 times in one function call of a library
// built with probes (see buildLibrary), and reports microseconds per run
// of the part.
func runParts(b *testing.B, s *Store, keys []string, parts []struct{ name, body string }) {
	files := libraryFiles(b)
	for i, p := range parts {
		files[fmt.Sprintf("zzprobe%d.lua", i)] = &fstest.MapFile{Data: []byte("local N = 100\n" + p.body + "\nreturn 1")}
	}
	ver, code := buildLibrary(files)
	if err := s.c.FunctionLoad(ctx, code).Err(); err != nil && !strings.Contains(err.Error(), "already exists") {
		b.Fatal(err) // the same probes loaded by an earlier run are the same code
	}
	for i, p := range parts {
		b.Run(p.name, func(b *testing.B) {
			cpu0 := serverCPU(b, s)
			for n := 0; n < b.N; n++ {
				rid := fmt.Sprintf("p%d_%d_", seq.Add(1), n)
				if err := s.c.FCall(ctx, fmt.Sprintf("cg%s_zzprobe%d", ver, i), keys,
					s.retainMS, rid, 5000, 60000, "", "", 0, 0).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*100), "us/part")
			// Redis's own CPU: steadier than wall time on a shared machine,
			// where the server is preempted in the middle of a call.
			b.ReportMetric((serverCPU(b, s)-cpu0)/float64(b.N*100), "cpu_us/part")
		})
	}
}

// serverCPU is the CPU time the Redis server has used, in microseconds.
func serverCPU(b *testing.B, s *Store) float64 {
	d, err := redistest.CPU(ctx, s.c)
	if err != nil {
		b.Fatal(err)
	}
	return float64(d.Nanoseconds()) / 1e3
}

// libraryFiles is the library's Lua files as a map a test may change
// before building a variant of the library from it (buildLibrary).
func libraryFiles(tb testing.TB) fstest.MapFS {
	tb.Helper()
	files := fstest.MapFS{}
	ents, err := fs.ReadDir(luaFiles, ".")
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		data, err := fs.ReadFile(luaFiles, e.Name())
		if err != nil {
			tb.Fatal(err)
		}
		files[e.Name()] = &fstest.MapFile{Data: data}
	}
	return files
}
