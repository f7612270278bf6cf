// Package boltstore implements meter.Store on an embedded bbolt database:
// the store of a single gateway process that has no Redis. It keeps the
// exact semantics of meter/redisstore (whose Lua scripts it follows step
// by step; see money.go): every method is one bbolt transaction, so it is
// atomic, and a committed transaction is fsynced before the method
// returns. Time comes from Options.Now, the process clock by default.
//
// One exception: a request's hold (Reserve) is kept in memory, not in the
// file (memholds.go). The store lives in the gateway's process, so when
// the process dies its requests in flight die too, and their holds, which
// never charge, would have to be released anyway. A Reserve therefore
// writes nothing, and a metered request costs one durable write, its
// Commit (or Void), which writes the settled record. After a restart,
// clean or a crash, the holds in memory are gone: the account reserves
// what its durable holds (jobs') hold, and a Commit of a lost hold is
// ECodeReservationNotFound. Jobs' holds, and everything else, are in the
// file as before.
//
// Layout. A top-level bucket "accounts" holds one bucket per account id:
//
//	"a"        the account record (binary, see account in record.go and
//	           codec.go); its reserved fields count the holds in the
//	           file only
//	res/       reservation id -> record (binary, see reservation): a
//	           job's hold, a settled request's record
//	timers/    due ms (8 bytes, big-endian) + member -> "": what is due
//	           when, as redisstore's timers zset. Members are "r:"+rid
//	           (a job hold's expiry, then a settled record's purge),
//	           "g:"+key (the purge of a Grant idempotency mapping) and
//	           "j:"+job id (a job's expiry, then its record's purge)
//	idem/      "r:"+key -> rid (a committed Reserve; while held, the
//	           mapping is in memory); "g:"+key -> due ms + entry id
//	ledger/    ms + seq (8 bytes each, big-endian) -> entry (binary); the
//	           id "<ms>-<seq>" sorts by time like a Redis stream id
//	refunds/   usage entry id -> refund entry id
//	usage/     period id (8 bytes) + route -> counters (binary)
//	series/    'd' or 'h' + bucket start ms (8 bytes) + route -> counters
//	           (binary): the usage series (see series.go)
//	keys/      key hash -> "": the account's keys
//	outbox/    event id "<ms>-<seq>" -> webhook event (JSON, see event);
//	           created with the first event of accounts older than it
//	jobs/      job id -> job record (JSON, see jobs.go); created with the
//	           account's first job, as jobup/
//	jobup/     upstream job id -> job id
//
// a top-level bucket "keys" maps a key hash to its record (JSON), and a
// top-level bucket "outbox" lists the accounts with events (id -> ""),
// written in the same transaction as their outbox. The records marked
// binary were JSON before (files written then still open: codec.go reads
// both); the others are JSON.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/creditgate/creditgate/meter"
)

// Options configure a Store. The zero value is the production setting.
type Options struct {
	// Now is the store's clock, for reservation expiry, period state,
	// ledger ids and creation times. Default time.Now. Tests pass a fake.
	Now func() time.Time
	// Retain is how long settled reservation records and idempotency
	// mappings are kept: an Idempotency-Key replays for this long.
	// Default 24h (as redisstore).
	Retain time.Duration
	// LockTimeout is how long Open waits for the file lock that another
	// process (or another Store in this one) holds. Default 1s.
	LockTimeout time.Duration
}

// Store is a meter.Store on a bbolt file. It is safe for concurrent use;
// writes are serialized by bbolt, reads run beside them, except that a
// read (or a Reserve) of an account waits for a write transaction that
// has the account open, until it commits (its gate: memholds.go).
type Store struct {
	db       *bolt.DB
	now      func() time.Time
	retainMS int64
	// beforeCommit, when set (by tests), runs just before a write
	// transaction commits; an error from it fails the commit.
	beforeCommit func(*bolt.Tx) error
	// batch groups concurrent Reserve, Commit and Void calls into shared
	// transactions (batch.go).
	batch batcher
	// commits counts committed write transactions (each fsyncs).
	commits atomic.Int64
	// mem holds the plain requests' holds, which the file never sees
	// (memholds.go).
	mem memStore
}

// Open opens (creating it and its directory if need be) the database file
// at path. It fails with a clear error when the directory is not writable
// or another process holds the file.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retain <= 0 {
		opts.Retain = 24 * time.Hour
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if path == "" {
		return nil, errors.New("boltstore: no database path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: cannot create data directory %s: %w", dir, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("boltstore: %s is locked by another process (is another gateway using it?); waited %v", path, opts.LockTimeout)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("boltstore: cannot open %s: %w (is the data directory writable by this user?)", path, err)
	case err != nil:
		return nil, fmt.Errorf("boltstore: cannot open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bAccounts, bKeys, bOutboxIndex, bPlans} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: cannot initialise %s: %w", path, err)
	}
	s := &Store{db: db, now: opts.Now, retainMS: opts.Retain.Milliseconds()}
	for i := range s.mem.stripes {
		s.mem.stripes[i].settled.a.Keep = keepSettled
	}
	return s, nil
}

// Close closes the database, waiting for running transactions. Calls
// after it fail with an internal error.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file's path.
func (s *Store) Path() string { return s.db.Path() }

var (
	bAccounts = []byte("accounts")
	bKeys     = []byte("keys")
	kAccount  = []byte("a")
	bRes      = []byte("res")
	bTimers   = []byte("timers")
	bIdem     = []byte("idem")
	bLedger   = []byte("ledger")
	bRefunds  = []byte("refunds")
	bUsage    = []byte("usage")
	bAcctKeys = []byte("keys")
	bOutbox   = []byte("outbox")
	// bOutboxIndex is the top-level bucket of accounts with events.
	bOutboxIndex = []byte("outbox")
	// bPlans is the top-level bucket of plans: name -> JSON.
	bPlans = []byte("plans")
)

// accountBuckets are the sub-buckets every account has.
var accountBuckets = [][]byte{bRes, bTimers, bIdem, bLedger, bRefunds, bUsage, bAcctKeys}

// op is the state of one write (or read) transaction on one account.
type op struct {
	s     *Store
	tx    *bolt.Tx
	b     *bolt.Bucket // the account's bucket
	id    string       // the account's id
	a     *account     // with the holds in memory (memholds.go)
	now   int64
	dirty bool        // something was written: save a and commit
	lazy  bool        // due purges are left to the next write (dueWrites)
	g     *gates      // the gates the operation holds, its memory changes
	m     *memAccount // the account's holds in memory; nil: none yet
}

func (o *op) sub(name []byte) *bolt.Bucket { return o.b.Bucket(name) }

// update runs fn in one write transaction on an existing account, after
// open (which expires due holds and purges due records, as redisstore's
// scripts do). A domain refusal from fn still commits what open and fn
// changed before it (an expiry, a period rollover), like a script that
// wrote before it refused; any other error rolls everything back.
func (s *Store) update(ctx context.Context, id string, fn func(o *op) error) error {
	if err := ctx.Err(); err != nil {
		return meter.Unavailable(err)
	}
	g := s.gates()
	keep := false
	defer func() { g.end(keep) }() // after the rollback below
	tx, err := s.db.Begin(true)
	if err != nil {
		return meter.Unavailable(err)
	}
	defer tx.Rollback() // a no-op once committed
	o, err := s.open(tx, id, g)
	if err != nil {
		return err
	}
	if err := o.sweep(); err != nil {
		return internalErr(err)
	}
	if err := o.endLots(); err != nil {
		return internalErr(err)
	}
	ferr := fn(o)
	if ferr != nil && meter.ErrorCode(ferr) == meter.ECodeInternal {
		return ferr
	}
	if err := o.endLots(); err != nil { // what fn released of ended grants
		return internalErr(err)
	}
	if !o.dirty {
		keep = true
		return ferr // nothing written: no commit, no fsync
	}
	if err := o.saveAccount(); err != nil {
		return internalErr(err)
	}
	if err := s.commit(tx); err != nil {
		return err
	}
	keep = true
	return ferr
}

// commit commits a write transaction (rolled back by the caller's defer
// when it fails, so nothing of it is kept).
func (s *Store) commit(tx *bolt.Tx) error {
	if s.beforeCommit != nil {
		if err := s.beforeCommit(tx); err != nil {
			return meter.Unavailable(err)
		}
	}
	// A failed commit (disk full, I/O error, closed database) is the
	// store being unavailable, as a Redis outage is: the gateway fails
	// closed with 503, and nothing of the transaction is kept.
	if err := tx.Commit(); err != nil {
		return meter.Unavailable(err)
	}
	s.commits.Add(1)
	return nil
}

// Commits is the number of write transactions committed since Open, each
// made durable by fsync (bbolt's two fdatasyncs: pages, then meta page):
// with the group commit, fewer than the calls that wrote.
func (s *Store) Commits() int64 { return s.commits.Load() }

// view runs fn in a read transaction on an existing account, without
// sweeping: callers whose answer depends on due timers use update. A
// credit grant due to expire is expired first (in a write).
func (s *Store) view(ctx context.Context, id string, fn func(o *op) error) error {
	if err := ctx.Err(); err != nil {
		return meter.Unavailable(err)
	}
	for range 2 {
		due := false
		err := s.read(id, func(tx *bolt.Tx, g *gates) error {
			o, err := s.open(tx, id, g)
			if err != nil {
				return err
			}
			if due = o.a.LotsDue(o.now); due {
				return nil
			}
			return fn(o)
		})
		if err != nil || !due {
			return dbErr(err)
		}
		// A credit grant has expired: no read may show it, so its
		// expiration entry is written first.
		if err := s.update(ctx, id, func(*op) error { return nil }); err != nil {
			return err
		}
	}
	// Due again (the clock moved on): o.account shows it as expired.
	return dbErr(s.read(id, func(tx *bolt.Tx, g *gates) error {
		o, err := s.open(tx, id, g)
		if err != nil {
			return err
		}
		return fn(o)
	}))
}

// read runs fn in a read transaction on account id, holding its gate
// from before the transaction begins (memholds.go): the file and the
// holds in memory it reads are of the same moment.
func (s *Store) read(id string, fn func(tx *bolt.Tx, g *gates) error) error {
	g := s.gates()
	g.lock(id)
	defer g.end(true)
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx, g) })
}

// dbErr maps an error of bbolt itself (a closed database) to an
// unavailable store; domain errors pass through.
func dbErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) || errors.Is(err, bolterrors.ErrTxClosed) {
		return meter.Unavailable(err)
	}
	return err
}

// open loads an account in tx, with its holds in memory, taking its gate
// for g (held already for a read); ECodeAccountNotFound when there is
// none.
func (s *Store) open(tx *bolt.Tx, id string, g *gates) (*op, error) {
	g.lock(id)
	b := tx.Bucket(bAccounts).Bucket([]byte(id))
	if b == nil {
		return nil, notFound(id)
	}
	a, err := decodeAccount(b.Get(kAccount))
	if err != nil {
		return nil, internalErr(fmt.Errorf("boltstore: account %s: %w", id, err))
	}
	a.threshold()
	m := g.account(id, false)
	m.overlay(&a.Account, 1)
	return &op{s: s, tx: tx, b: b, id: id, a: a, now: s.now().UnixMilli(), g: g, m: m}, nil
}

// saveAccount writes the account record without the holds in memory.
func (o *op) saveAccount() error {
	if o.m == nil || len(o.m.holds) == 0 {
		return o.b.Put(kAccount, o.a.encode())
	}
	d := *o.a
	d.Lots = slices.Clone(o.a.Lots)
	o.m.overlay(&d.Account, -1)
	return o.b.Put(kAccount, d.encode())
}

func notFound(id string) error {
	return meter.Errorf(meter.ECodeAccountNotFound, "account %q not found", id)
}

// internalErr wraps a database failure: it never reaches a client's eyes,
// and the transaction it happened in left nothing behind.
func internalErr(err error) error {
	var me *meter.Error
	if errors.As(err, &me) {
		return err
	}
	return &meter.Error{Code: meter.ECodeInternal, Message: "metering store error", Err: err}
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

var _ meter.Store = (*Store)(nil)
