package redisstore

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

// Every operation is one of the *.lua files of this directory. They are
// run as Redis 7 Functions: all of them, with lib.lua shared, make one
// library (see library), loaded once per server instead of the prelude
// being run again on every call as EVALSHA did. A script is declared
// with one line, below; the library picks up every .lua file itself.
var (
	createAccountScript = newScript("create_account.lua")
	accountScript       = newScript("account.lua")
	grantScript         = newScript("grant.lua")
	reserveScript       = newScript("reserve.lua")
	commitScript        = newScript("commit.lua")
	voidScript          = newScript("void.lua")
	addKeyScript        = newScript("add_key.lua")
	settingsScript      = newScript("settings.lua")
	refundScript        = newScript("refund.lua")
	claimEventsScript   = newScript("claim_events.lua")
	ackEventScript      = newScript("ack_event.lua")
	jobCreateScript     = newScript("job_create.lua")
	jobGetScript        = newScript("job_get.lua")
	jobAttachScript     = newScript("job_attach.lua")
	jobReportScript     = newScript("job_report.lua")
	jobResumeScript     = newScript("job_resume.lua")
	jobCancelScript     = newScript("job_cancel.lua")
	grantCreateScript   = newScript("grant_create.lua")
	grantVoidScript     = newScript("grant_void.lua")
	grantListScript     = newScript("grant_list.lua")
)

//go:embed *.lua
var luaFiles embed.FS

// script is one .lua file, called by its function name in the library
// (fn), or by its file's name in a batch (name, see batch.lua); replies
// holds the position of each name of its replies, by code (see
// replyLayouts).
type script struct {
	fn, name string
	replies  map[string]map[string]int
}

// newScript names the function of file (a .lua file of this directory);
// it panics when there is no such file (a programming error).
func newScript(file string) *script {
	name, ok := strings.CutSuffix(file, ".lua")
	if _, err := fs.Stat(luaFiles, file); err != nil || !ok || strings.HasSuffix(file, "lib.lua") {
		panic(fmt.Sprintf("redisstore: no script %q", file))
	}
	return &script{fn: "cg" + libVersion() + "_" + name, name: name, replies: replyLayouts(luaFiles, file)}
}

// caller is what a script runs on: any go-redis client.
type caller interface {
	FCall(ctx context.Context, function string, keys []string, args ...any) *redis.Cmd
	FunctionLoad(ctx context.Context, code string) *redis.StringCmd
}

// Run calls the script's function (FCALL), loading the library first
// where the server has lost it or never had it (a new, restarted or
// flushed server: "Function not found"). It has the shape of
// redis.Script's Run.
func (sc *script) Run(ctx context.Context, c caller, keys []string, args ...any) *redis.Cmd {
	return sc.run(ctx, c, c, keys, args...)
}

// run is Run with the library loaded through client (the client behind
// an autopipeliner c, which would send FUNCTION LOAD to any one node).
func (sc *script) run(ctx context.Context, c, client caller, keys []string, args ...any) *redis.Cmd {
	cmd := c.FCall(ctx, sc.fn, keys, args...)
	if err := cmd.Err(); err != nil && strings.Contains(err.Error(), "Function not found") {
		if err := loadLibrary(ctx, client); err != nil {
			cmd.SetErr(err)
			return cmd
		}
		cmd = c.FCall(ctx, sc.fn, keys, args...)
	}
	return cmd
}

// The library is every .lua file: lib.lua first, then each of the others
// as the callback of a function named cg<version>_<file name>. A file
// named <group>_lib.lua is not a function but helpers of the files named
// <group>_*.lua (as lib.lua is of all): it comes right before them, in a
// do ... end block of their own. The library's name and its functions'
// carry a hash of its code, so gateways of different versions can share
// a server, each calling its own. Function flags are none: the functions
// may write and, on a cluster, may only touch keys of the slot of their
// KEYS (as the #!lua scripts they were).
//
// The scripts are written as EVAL scripts, reading the globals KEYS and
// ARGV; a function gets them as arguments, and there are no globals, so
// the library declares KEYS and ARGV as locals of its own, which every
// function sets on entry (calls never overlap on a server) and the
// helpers read. Each file's body is also OPS[<file name>], which
// batch.lua calls for each operation of a batch, with NOW set to the
// batch's one server time (a function called alone clears it).
// BIND, when lib.lua sets it, runs once, on the library's first call: it
// binds the globals the library keeps as locals, which FUNCTION LOAD,
// running the library with only redis.register_function's globals, does
// not have.
var library = sync.OnceValues(func() (string, string) { return buildLibrary(luaFiles) })

func buildLibrary(fsys fs.FS) (version, code string) {
	read := func(f string) string {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	files, err := fs.Glob(fsys, "*.lua")
	if err != nil {
		panic(err)
	}
	slices.Sort(files)
	groups := map[string]bool{} // <group> of each <group>_lib.lua
	for _, f := range files {
		if g, ok := strings.CutSuffix(f, "_lib.lua"); ok {
			groups[g] = true
		}
	}
	group := func(f string) string {
		if g, _, ok := strings.Cut(f, "_"); ok && groups[g] {
			return g
		}
		return ""
	}
	var body strings.Builder
	body.WriteString("local KEYS, ARGV, NOW, BIND\nlocal OPS = {}\n")
	body.WriteString(read("lib.lua"))
	register := func(f string) {
		// The body's first line is the function header, so Lua's error
		// line numbers are one off the file's. The registered callback
		// clears NOW, the time batch.lua sets for its operations: a call
		// alone reads the server's.
		name := strings.TrimSuffix(f, ".lua")
		fmt.Fprintf(&body, "OPS['%s'] = function(keys, args) KEYS, ARGV = keys, args\n%s\nend\n", name, read(f))
		fmt.Fprintf(&body, "redis.register_function{function_name = '%%s_%s', callback = function(keys, args)"+
			" NOW = nil if BIND then BIND() BIND = nil end return OPS['%s'](keys, args) end}\n", name, name)
	}
	for _, f := range files {
		if f != "lib.lua" && group(f) == "" {
			register(f)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		body.WriteString("do\n" + read(g+"_lib.lua") + "\n")
		for _, f := range files {
			if group(f) == g && f != g+"_lib.lua" {
				register(f)
			}
		}
		body.WriteString("end\n")
	}
	sum := sha1.Sum([]byte(body.String()))
	version = hex.EncodeToString(sum[:5])
	code = "#!lua name=creditgate_" + version + "\n" +
		strings.ReplaceAll(body.String(), "function_name = '%s_", "function_name = 'cg"+version+"_")
	return version, code
}

func libVersion() string { v, _ := library(); return v }

// loadMu makes concurrent callers that all found the library missing load
// it one at a time (the others then find it there).
var loadMu sync.Mutex

// loadLibrary loads the library where c's commands go: on every master of
// a cluster, on every shard of a ring, else on the one server. A library
// of the same name already there is the same code.
func loadLibrary(ctx context.Context, c caller) error {
	loadMu.Lock()
	defer loadMu.Unlock()
	_, code := library()
	load := func(ctx context.Context, c caller) error {
		err := c.FunctionLoad(ctx, code).Err()
		if err != nil && strings.Contains(err.Error(), "already exists") {
			return nil
		}
		return err
	}
	switch cl := c.(type) {
	case *redis.ClusterClient:
		return cl.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return load(ctx, n) })
	case *redis.Ring:
		return cl.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return load(ctx, n) })
	}
	return load(ctx, c)
}

// reply reads a script's array reply. A reply of an unexpected shape is a
// bug in a script; it is recorded in err rather than panicking.
type reply struct {
	v     []any
	names map[string]int // by name, the positions in v (see replyLayouts)
	err   error
}

func (r *reply) str(i int) string {
	if i < len(r.v) {
		switch x := r.v[i].(type) {
		case string:
			return x
		case int64:
			return strconv.FormatInt(x, 10)
		}
	}
	r.bad(i)
	return ""
}

func (r *reply) int(i int) int64 {
	if i < len(r.v) {
		switch x := r.v[i].(type) {
		case int64:
			return x
		case string:
			if n, err := strconv.ParseInt(x, 10, 64); err == nil {
				return n
			}
		}
	}
	r.bad(i)
	return 0
}

func (r *reply) bad(i int) {
	if r.err == nil {
		r.err = fmt.Errorf("redisstore: unexpected script reply %v at %d", r.v, i)
	}
}

// periodState reads the nine values of lib.lua's with_state ("state..."
// in a header).
func (r *reply) periodState() (meter.QuotaState, meter.OverageState) {
	q := meter.QuotaState{Limit: meter.Credits(r.intOf("quota_limit")), Used: meter.Credits(r.intOf("quota_used")),
		Reserved: meter.Credits(r.intOf("quota_reserved")), Remaining: meter.Credits(r.intOf("quota_remaining"))}
	if ms := r.intOf("quota_resets_ms"); ms > 0 {
		q.ResetsAt = msTime(ms)
	}
	o := meter.OverageState{Cap: meter.Credits(r.intOf("overage_cap")), Used: meter.Credits(r.intOf("overage_used")),
		Reserved: meter.Credits(r.intOf("overage_reserved")), Remaining: meter.Credits(r.intOf("overage_remaining"))}
	return q, o
}

// check returns the first shape error as an internal error.
func (r *reply) check() error {
	if r.err != nil {
		return internalErr(r.err)
	}
	return nil
}
