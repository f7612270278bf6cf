package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// account is the account record: redisstore's account hash, field for
// field (see lib.lua's FIELDS). Amounts are milli-credits.
type account struct {
	// Account is the money state (balance, holds, period, pools), the
	// model's (meter/ledger), with the record's field names.
	ledger.Account
	CreatedMS int64 `json:"created_ms"`
	// UpdatedMS is when the settings last changed (0 in records written
	// before it: read as CreatedMS).
	UpdatedMS int64 `json:"updated_ms,omitempty"`
	// LastMS and LastSeq are the last ledger id given out, so ids keep
	// increasing when the clock steps back (as a Redis stream's do).
	LastMS   int64           `json:"last_ms"`
	LastSeq  int64           `json:"last_seq"`
	Settings json.RawMessage `json:"settings,omitempty"`
	// LBThreshold is Settings.LowBalanceThreshold (nil in records written
	// before webhooks: read from Settings once; see threshold), EvtSeq
	// numbers the account's events.
	LBThreshold *int64 `json:"lb_threshold,omitempty"`
	EvtSeq      int64  `json:"evt_seq,omitempty"`
}

// Reservation states, as in lib.lua.
const (
	held      = "h"
	committed = "c"
	voided    = "v"
	expired   = "x"
)

// reservation is a hold's record (lib.lua's load_res). Q, B, O are the
// quota, balance and overage parts held (once committed: charged); Per
// the period the hold was made in; Due the time of its timer.
type reservation struct {
	State string `json:"s"`
	ledger.Hold
	Exp     int64  `json:"exp,omitempty"`
	Due     int64  `json:"due"`
	Charged int64  `json:"charged,omitempty"`
	Bal     int64  `json:"bal,omitempty"`
	Avail   int64  `json:"avail,omitempty"`
	Late    bool   `json:"late,omitempty"`
	Entry   string `json:"entry,omitempty"`
	Idem    string `json:"idem,omitempty"`
	// FP is the fingerprint of the request that holds Idem.
	FP string `json:"fp,omitempty"`
	// Job marks a job's hold ("job:" + job id): only the job's calls
	// settle it, never Commit or Void.
	Job bool `json:"job,omitempty"`
	// mem marks a hold read from memory (memholds.go): saved settled,
	// it leaves memory for the file.
	mem bool `json:"-"`
}

// event is a webhook event in an account's outbox (lib.lua's emit). Due
// is when it may be claimed: its creation, the end of its lease, the time
// of its retry.
type event struct {
	Type      string `json:"t"`
	MS        int64  `json:"ms"`
	Balance   int64  `json:"b"`
	Threshold int64  `json:"th,omitempty"`
	Limit     int64  `json:"l,omitempty"`
	Used      int64  `json:"u,omitempty"`
	Resets    int64  `json:"r,omitempty"`
	Attempts  int    `json:"n,omitempty"`
	Owner     string `json:"o,omitempty"`
	Due       int64  `json:"due"`
	// JobID and UpstreamJobID name the job of a job.blocked event.
	JobID         string `json:"j,omitempty"`
	UpstreamJobID string `json:"uj,omitempty"`
}

func (e *event) event(account, id string) meter.Event {
	out := meter.Event{ID: id, AccountID: account, Type: e.Type, CreatedAt: msTime(e.MS),
		Balance: meter.Credits(e.Balance), Threshold: meter.Credits(e.Threshold), Limit: meter.Credits(e.Limit),
		Used: meter.Credits(e.Used), JobID: e.JobID, UpstreamJobID: e.UpstreamJobID, Attempts: e.Attempts}
	if e.Resets > 0 {
		out.ResetsAt = msTime(e.Resets)
	}
	return out
}

// entry is a stored ledger entry; its id and time are its key.
type entry struct {
	Type          string `json:"t"`
	Amount        int64  `json:"a"`
	BalanceAfter  int64  `json:"ba"`
	Description   string `json:"d,omitempty"`
	Route         string `json:"r,omitempty"`
	RequestID     string `json:"rq,omitempty"`
	ReservationID string `json:"rs,omitempty"`
	Late          bool   `json:"l,omitempty"`
	Quota         int64  `json:"q,omitempty"`
	Overage       int64  `json:"o,omitempty"`
	Pages         int    `json:"p,omitempty"`
	RefundOf      string `json:"rf,omitempty"`
	JobID         string `json:"j,omitempty"`
	UpstreamJobID string `json:"uj,omitempty"`
	Shortfall     int64  `json:"sf,omitempty"`
	// G are the credit grant parts in Amount (ledger.Entry.Lots).
	G             []ledger.LotPart `json:"g,omitempty"`
	PaymentIntent string           `json:"pi,omitempty"`
	ExternalID    string           `json:"x,omitempty"`
}

func (e *entry) ledgerEntry(acct string, id ledgerID) meter.LedgerEntry {
	return meter.LedgerEntry{ID: id.String(), AccountID: acct, Type: e.Type, Amount: meter.Credits(e.Amount),
		BalanceAfter: meter.Credits(e.BalanceAfter), Description: e.Description, Route: e.Route,
		RequestID: e.RequestID, ReservationID: e.ReservationID, Late: e.Late, Quota: meter.Credits(e.Quota),
		Overage: meter.Credits(e.Overage), Pages: e.Pages, RefundOf: e.RefundOf, Shortfall: meter.Credits(e.Shortfall),
		JobID: e.JobID, UpstreamJobID: e.UpstreamJobID, PaymentIntentID: e.PaymentIntent, ExternalID: e.ExternalID,
		CreatedAt: msTime(int64(id.ms)), Granted: meter.Credits(e.granted()), GrantIDs: grantIDs(e.G)}
}

func grantIDs(ps []ledger.LotPart) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.ID)
	}
	return b.String()
}

// counters are one route's usage in one period.
type counters struct {
	Requests int64 `json:"n"`
	Pages    int64 `json:"p,omitempty"`
	Credits  int64 `json:"c,omitempty"`
}

// keyRecord is an API key's record, under its hash.
type keyRecord struct {
	Account   string `json:"account"`
	Mode      string `json:"mode"`
	Prefix    string `json:"prefix,omitempty"`
	Last4     string `json:"last4,omitempty"`
	CreatedMS int64  `json:"created_ms"`
	RevokedMS int64  `json:"revoked_ms,omitempty"`
}

func (k *keyRecord) key(hash string) meter.Key {
	out := meter.Key{ID: meter.KeyID(hash), Hash: hash, AccountID: k.Account, Mode: meter.Mode(k.Mode),
		Prefix: k.Prefix, Last4: k.Last4, CreatedAt: msTime(k.CreatedMS)}
	if k.RevokedMS > 0 {
		out.RevokedAt = msTime(k.RevokedMS)
	}
	return out
}

func encode(v any) ([]byte, error) { return json.Marshal(v) }

func decodeJSON(raw []byte, v any) error { return json.Unmarshal(raw, v) }

// ledgerID is a ledger entry id, "<ms>-<seq>" like a Redis stream id:
// its key is both numbers big-endian, so keys sort as ids do.
type ledgerID struct{ ms, seq uint64 }

var streamID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

func parseLedgerID(s string) (ledgerID, bool) {
	if !streamID.MatchString(s) {
		return ledgerID{}, false
	}
	m, q, _ := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(m, 10, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	return ledgerID{ms, seq}, err1 == nil && err2 == nil
}

func (id ledgerID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id ledgerID) key() []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, id.ms)
	binary.BigEndian.PutUint64(k[8:], id.seq)
	return k
}

func ledgerIDOf(k []byte) ledgerID {
	return ledgerID{binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:])}
}

// timeBound is the first ledger id at or after t (stream id "<ms>-0"); a
// time before 1970 is the first id of all.
func timeBound(t time.Time) ledgerID {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return ledgerID{ms: uint64(ms)}
}

// timerKey is the key of a timers entry: due ms, then the member.
func timerKey(due int64, member string) []byte {
	k := make([]byte, 8, 8+len(member))
	binary.BigEndian.PutUint64(k, uint64(due))
	return append(k, member...)
}

// usageKey is the key of a route's counters in a period.
func usageKey(period int64, route string) []byte {
	k := make([]byte, 8, 8+len(route))
	binary.BigEndian.PutUint64(k, uint64(period))
	return append(k, route...)
}

func be64(n int64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(n))
	return k
}
