// Package redisstore implements meter.Store on Redis. Every operation that
// touches an account's credits is one Lua script (see the *.lua files)
// over keys that share the account's {hash tag}, so each script is atomic,
// single-slot and works on Redis Cluster. Time comes from the server.
package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// Options configure a Store.
type Options struct {
	// Prefix starts every key. Default "meter". It may not contain '{' or
	// '}', which would break the per-account hash tags.
	Prefix string
	// Retain is how long settled reservation records and idempotency
	// mappings are kept: an Idempotency-Key replays for this long.
	// Default 24h.
	Retain time.Duration
	// Pipeline sends the scripts through go-redis's autopipeliner in its
	// full-duplex mode: the scripts of concurrent calls stream down one
	// held connection (per node), without waiting for each other's
	// replies, so the server reads and answers many per system call. On
	// bench/store.sh this raised the pairs/s a saturated Redis serves by
	// about 30% (see bench/RESULTS.md); a lone call is sent at once. The
	// autopipeliner is marked experimental in go-redis 9.
	Pipeline bool
	// MaxBatch is how many concurrent Reserve, Commit and Void calls may
	// share one FCALL (see batch.go). Default 32; 1 sends each alone.
	MaxBatch int
}

// Store is a meter.Store on Redis. It is safe for concurrent use.
type Store struct {
	c redis.UniversalClient
	// calls is where scripts go: c, or its autopipeliner (Options.Pipeline).
	calls caller
	// periods caches each account's current period id as last seen, so
	// that Commit names the right usage hash at once (see Commit).
	periods sync.Map
	// jobUps caches jobs' upstream ids (see runJob).
	jobUps   upstreamCache
	batch    *batcher // nil: no batching
	prefix   string
	retainMS int64
	owned    bool // Close closes c only when Open created it
}

// New returns a Store on client. Close does not close the client. New
// panics if opts.Prefix contains a brace (a programming error).
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "meter"
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		panic(fmt.Sprintf("redisstore: prefix %q may not contain braces", opts.Prefix))
	}
	if opts.Retain <= 0 {
		opts.Retain = 24 * time.Hour
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 32
	}
	s := &Store{c: client, calls: client, prefix: opts.Prefix, retainMS: opts.Retain.Milliseconds()}
	if opts.MaxBatch > 1 {
		s.batch = newBatcher(s, opts.MaxBatch)
	}
	if opts.Pipeline {
		if ap := autoPipeline(client); ap != nil {
			s.calls = ap
		}
	}
	return s
}

// autoPipeline returns client's full-duplex autopipeliner, or nil for a
// client that has none.
func autoPipeline(client redis.UniversalClient) *redis.AutoPipeliner {
	o := redis.DefaultBlockingAutoPipelineOptions()
	o.FullDuplex = true
	var ap *redis.AutoPipeliner
	var err error
	switch c := client.(type) {
	case *redis.Client:
		ap, err = c.AutoPipelineWithOptions(o)
	case *redis.ClusterClient:
		ap, err = c.AutoPipelineWithOptions(o)
	case *redis.Ring:
		ap, err = c.AutoPipelineWithOptions(o)
	}
	if err != nil {
		return nil
	}
	return ap
}

// Close closes the client if Open created it.
func (s *Store) Close() error {
	if s.owned {
		return s.c.Close()
	}
	return nil
}

// accountKeys are the KEYS of every account script, in the order lib.lua
// documents. The id must be a valid account id (the validating wrapper in
// front of every store checks it): a brace in it would move the keys out of
// the account's slot.
func (s *Store) accountKeys(id string) []string {
	base := s.prefix + ":{" + id + "}:"
	return []string{base + "account", base + "timers", base + "reservations",
		base + "idempotency", base + "ledger", base + "refunds", base + "outbox", base + "outbox_due"}
}

// outboxIndexKey is the set of accounts that may have webhook events. It
// is in a slot of its own, so it is written after the script that records
// an event, not in it (see ClaimEvents and ReindexEvents).
func (s *Store) outboxIndexKey() string { return s.prefix + ":outbox:accounts" }

// usageKey is the usage-by-route hash of an account's period (0: no period).
func (s *Store) usageKey(id string, period int64) string {
	return s.prefix + ":{" + id + "}:usage:" + strconv.FormatInt(period, 10)
}

// seriesKey is the usage series hash of an account (see count_series in
// lib.lua).
func (s *Store) seriesKey(id string) string { return s.prefix + ":{" + id + "}:series" }

// responseKey holds the response stored with the commit of reservation
// rid (see commit.lua); the rid may hold anything but a brace cannot move
// it out of the account's slot: the hash tag is the first {...}.
func (s *Store) responseKey(id, rid string) string {
	return s.prefix + ":{" + id + "}:response:" + rid
}

func (s *Store) keySetKey(id string) string      { return s.prefix + ":{" + id + "}:keys" }
func (s *Store) keyRecordKey(hash string) string { return s.prefix + ":key:" + hash }
func (s *Store) accountsKey() string             { return s.prefix + ":accounts" }

// accountsByIDKey is the accounts index sorted by id (a zset, all scores
// 0) that ListAccounts pages through.
func (s *Store) accountsByIDKey() string { return s.prefix + ":accounts_by_id" }

// run runs an account script and turns a refusal reply into a *meter.Error.
func (s *Store) run(ctx context.Context, sc *script, id string, args ...any) (*reply, error) {
	return s.runKeys(ctx, sc, id, s.accountKeys(id), args...)
}

// runKeys is run with more keys than the account's (all in its slot).
func (s *Store) runKeys(ctx context.Context, sc *script, id string, keys []string, args ...any) (*reply, error) {
	argv := append([]any{s.retainMS}, args...)
	var v []any
	var err error
	if s.batch != nil && (sc == reserveScript || sc == commitScript || sc == voidScript) {
		v, err = s.batch.do(ctx, sc, id, keys, argv)
	} else {
		v, err = sc.run(ctx, s.calls, s.c, keys, argv...).Slice()
	}
	if err != nil {
		return nil, storeErr(err)
	}
	r := sc.reply(v)
	if code := r.str(0); code != "ok" {
		return nil, refusal(code, id, r)
	}
	return r, nil
}

// refusal maps a script's refusal reply to the domain error.
func refusal(code, id string, r *reply) error {
	switch code {
	case meter.ECodeAccountNotFound:
		return meter.Errorf(code, "account %q not found", id)
	case meter.ECodeAccountExists:
		return meter.Errorf(code, "account %q already exists", id)
	case meter.ECodeInsufficientCredits:
		req, avail := meter.Credits(r.intOf("required")), meter.Credits(r.intOf("available"))
		e := meter.Errorf(code, "insufficient credits: %s required, %s available", req, avail)
		e.Details = map[string]any{"required": req, "available": avail}
		return e
	case meter.ECodeIdempotencyConflict:
		return meter.Errorf(code, "a request with this Idempotency-Key is still in progress")
	case meter.ECodeIdempotencyKeyReused:
		return meter.IdempotencyKeyReused()
	case meter.ECodeReservationNotFound:
		return meter.Errorf(code, "reservation not found")
	case meter.ECodeReservationSettled:
		return meter.Errorf(code, "reservation is already %s", r.strOf("status"))
	case meter.ECodeOverageLimitReached:
		req, avail, limit := meter.Credits(r.intOf("required")), meter.Credits(r.intOf("available")), meter.Credits(r.intOf("cap"))
		e := meter.Errorf(code, "the overage of this period (%s credits) cannot cover %s credits", limit, req)
		e.Details = map[string]any{"required": req, "available": avail, "cap": limit}
		return e
	case meter.ECodeCreditsOwed:
		return meter.CreditsOwed(meter.Credits(r.intOf("required")), meter.Credits(r.intOf("available")), meter.Credits(r.intOf("owed")))
	case meter.ECodeQuotaExceeded:
		limit, used, resets := meter.Credits(r.intOf("limit")), meter.Credits(r.intOf("used")), msTime(r.intOf("resets_at_ms"))
		e := meter.Errorf(code, "%s", meter.QuotaMessage(limit, r.strOf("unit"), resets))
		e.Details = map[string]any{"limit": limit, "used": used, "resets_at": resets}
		return e
	case meter.ECodeRefundNotAllowed:
		if r.strOf("message") == "refund_exceeds" {
			return meter.Errorf(code, "a refund of %s credits exceeds the %s credits the entry took",
				meter.Credits(r.intOf("amount")), meter.Credits(r.intOf("took")))
		}
		return meter.Errorf(code, "%s", r.strOf("message"))
	case meter.ECodeInvalid, meter.ECodeNotFound:
		return meter.Errorf(code, "%s", r.strOf("message"))
	case meter.ECodeGrantNotFound:
		return meter.Errorf(code, "no active credit grant of that id")
	case "period":
		return &wrongPeriod{id: r.intOf("id")}
	case meter.ECodeJobNotFound:
		return meter.Errorf(code, "job %q not found", r.strOf("id"))
	case meter.ECodeJobExpired:
		return meter.Errorf(code, "job %q expired", r.strOf("id"))
	case meter.ECodeJobFinished:
		e := meter.Errorf(code, "job %q is already %s", r.strOf("id"), r.strOf("status"))
		e.Details = map[string]any{"status": r.strOf("status")}
		return e
	case "upstream":
		return &wrongUpstream{id: r.strOf("id")}
	case "job_invalid":
		return &badReport{job: r.strOf("job_json")}
	}
	return internalErr(fmt.Errorf("redisstore: unexpected script reply %v", r.v))
}

// wrongPeriod is commit.lua's "call again with the usage hash of period
// id"; Commit handles it, it never leaves the package.
type wrongPeriod struct{ id int64 }

func (w *wrongPeriod) Error() string {
	return fmt.Sprintf("redisstore: usage counts in period %d", w.id)
}

func internalErr(err error) error {
	return &meter.Error{Code: meter.ECodeInternal, Message: "metering store error", Err: err}
}

// storeErr classifies a go-redis error: the server could not be reached
// (network, timeout, closed client: not a server reply) or cannot serve
// now, both meter.Unavailable; or anything else, internal (a bug in a
// script or in this package).
func storeErr(err error) error {
	var re redis.Error
	if !errors.As(err, &re) || serverBusy(err) {
		return meter.Unavailable(err)
	}
	return internalErr(err)
}

// serverBusy reports server errors that mean "not now" rather than "wrong".
func serverBusy(err error) bool {
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN",
		"TRYAGAIN", "NOREPLICAS", "BUSY", "OOM", "max number of clients"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// nonce identifies one call, so that a script can tell go-redis's retry
// of it (same arguments, after a lost reply) from a new call. It need only
// be unique, not secret: a random per-process prefix and a counter, which
// spares the hot path a getrandom call per Reserve.
func nonce() string {
	return noncePrefix + strconv.FormatUint(nonceSeq.Add(1), 36)
}

var (
	noncePrefix = rand.Text()[:16] + "."
	nonceSeq    atomic.Uint64
)

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
