package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// Webhook events live in each account's outbox (a hash of records and a
// zset of when each may be claimed, see lib.lua), written by the script
// that moves the balance. The set of accounts with events (outboxIndexKey)
// is in another slot: Commit and Grant add the account right after their
// script. Should that write be lost (the connection drops in between),
// the event is still in the outbox, and ReindexEvents, which workers run
// at start and every few minutes, finds it again.

// indexEvents adds an account to the outbox index. A failure is not the
// caller's: its money moved, and ReindexEvents repairs the index.
func (s *Store) indexEvents(ctx context.Context, account string) {
	_ = s.c.SAdd(context.WithoutCancel(ctx), s.outboxIndexKey(), account).Err()
}

// ClaimEvents leases up to limit due events to owner, visiting the
// indexed accounts in random order (so that gateways sharing the store
// start in different places). An account found with no events left is
// dropped from the index.
func (s *Store) ClaimEvents(ctx context.Context, owner string, lease time.Duration, limit int) ([]meter.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	owner = strings.ReplaceAll(owner, "|", "_")
	ids, err := s.c.SMembers(ctx, s.outboxIndexKey()).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var out []meter.Event
	for _, id := range ids {
		if len(out) >= limit {
			break
		}
		if meter.ValidateAccountID(id) != nil {
			s.c.SRem(ctx, s.outboxIndexKey(), id)
			continue
		}
		keys := s.accountKeys(id)[6:8]
		v, err := claimEventsScript.Run(ctx, s.c, keys, owner, lease.Milliseconds(), limit-len(out)).Slice()
		if err != nil {
			return out, storeErr(err)
		}
		r := claimEventsScript.reply(v)
		if r.intOf("left") == 0 {
			if err := s.c.SRem(ctx, s.outboxIndexKey(), id).Err(); err != nil {
				return out, storeErr(err)
			}
		}
		for i := r.at("id"); i >= 0 && i+1 < len(v); i += 2 { // id, record, ...
			e, err := eventFrom(id, r.str(i), r.str(i+1))
			if err != nil {
				return out, internalErr(err)
			}
			out = append(out, e)
		}
		if err := r.check(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// eventFrom reads a record 'type|ms|balance|threshold|limit|used|resets_ms|attempts|owner',
// or a job event's 'type|ms|balance|threshold|limit|used|resets_ms|job|upstream_job|attempts|owner'
// (the job ids escaped, so a record's '|' are all separators; see emit in
// lib.lua).
func eventFrom(account, id, raw string) (meter.Event, error) {
	f := strings.Split(raw, "|")
	var job, upjob string
	switch len(f) {
	case 9:
	case 11:
		job, upjob = jobFieldEscape.Replace(f[7]), jobFieldEscape.Replace(f[8])
		f = append(f[:7], f[9:]...)
	default:
		return meter.Event{}, fmt.Errorf("redisstore: bad event record %s of %s: %q", id, account, raw)
	}
	n := make([]int64, 7)
	for i := 1; i <= 7; i++ {
		var err error
		if n[i-1], err = strconv.ParseInt(f[i], 10, 64); err != nil {
			return meter.Event{}, fmt.Errorf("redisstore: bad event record %s of %s: %q", id, account, raw)
		}
	}
	e := meter.Event{ID: id, AccountID: account, Type: f[0], CreatedAt: msTime(n[0]), Balance: meter.Credits(n[1]),
		Threshold: meter.Credits(n[2]), Limit: meter.Credits(n[3]), Used: meter.Credits(n[4]), Attempts: int(n[6]),
		JobID: job, UpstreamJobID: upjob}
	if n[5] > 0 {
		e.ResetsAt = msTime(n[5])
	}
	return e, nil
}

// jobFieldEscape undoes emit's escaping of job ids.
var jobFieldEscape = strings.NewReplacer("%7C", "|", "%25", "%")

// AckEvent removes a delivered event; an account left without events is
// dropped from the index.
func (s *Store) AckEvent(ctx context.Context, account, id string) error {
	return s.ackOrRetry(ctx, account, id, "")
}

// RetryEvent makes a claimed event claimable again after delay, on the
// server's clock.
func (s *Store) RetryEvent(ctx context.Context, account, id string, delay time.Duration) error {
	return s.ackOrRetry(ctx, account, id, max(0, delay.Milliseconds()))
}

func (s *Store) ackOrRetry(ctx context.Context, account, id string, delay any) error {
	v, err := ackEventScript.Run(ctx, s.c, s.accountKeys(account)[6:8], id, delay).Slice()
	if err != nil {
		return storeErr(err)
	}
	r := ackEventScript.reply(v)
	if code := r.str(0); code != "ok" {
		return refusal(code, account, r)
	}
	if r.intOf("left") == 0 {
		if err := s.c.SRem(ctx, s.outboxIndexKey(), account).Err(); err != nil {
			return storeErr(err)
		}
	}
	return r.check()
}

// ReindexEvents adds every account whose outbox holds events to the
// index, a pipelined ZCARD per account.
func (s *Store) ReindexEvents(ctx context.Context) (int, error) {
	ids, err := s.c.SMembers(ctx, s.accountsKey()).Result()
	if err != nil {
		return 0, storeErr(err)
	}
	found := 0
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 500)]
		ids = ids[len(batch):]
		cmds := make([]*redis.IntCmd, len(batch))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				cmds[i] = p.ZCard(ctx, s.accountKeys(id)[7])
			}
			return nil
		})
		if err != nil {
			return found, storeErr(err)
		}
		var pending []any
		for i, id := range batch {
			if cmds[i].Val() > 0 {
				pending = append(pending, id)
			}
		}
		if len(pending) > 0 {
			if err := s.c.SAdd(ctx, s.outboxIndexKey(), pending...).Err(); err != nil {
				return found, storeErr(err)
			}
		}
		found += len(pending)
	}
	return found, nil
}
