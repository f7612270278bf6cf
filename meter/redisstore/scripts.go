package redisstore

import (
	_ "embed"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

var (
	//go:embed lib.lua
	libLua string
	//go:embed create_account.lua
	createAccountLua string
	//go:embed account.lua
	accountLua string
	//go:embed grant.lua
	grantLua string
	//go:embed reserve.lua
	reserveLua string
	//go:embed commit.lua
	commitLua string
	//go:embed void.lua
	voidLua string
	//go:embed add_key.lua
	addKeyLua string
	//go:embed settings.lua
	settingsLua string
	//go:embed refund.lua
	refundLua string
	//go:embed claim_events.lua
	claimEventsLua string
	//go:embed ack_event.lua
	ackEventLua string
	//go:embed job_lib.lua
	jobLibLua string
	//go:embed job_create.lua
	jobCreateLua string
	//go:embed job_get.lua
	jobGetLua string
	//go:embed job_attach.lua
	jobAttachLua string
	//go:embed job_report.lua
	jobReportLua string
	//go:embed job_resume.lua
	jobResumeLua string
	//go:embed job_cancel.lua
	jobCancelLua string
)

// The shebang (Redis 7+) turns on the strict script mode, in which a
// cluster node refuses a script that touches a key outside the slot of its
// KEYS: a key-layout mistake fails loudly instead of working on one node.
const shebang = "#!lua\n"

// The account scripts share lib.lua, prepended once here; add_key works on
// a key record, not an account, and the event scripts on an account's
// outbox only: they stand alone.
var (
	createAccountScript = redis.NewScript(shebang + libLua + createAccountLua)
	accountScript       = redis.NewScript(shebang + libLua + accountLua)
	grantScript         = redis.NewScript(shebang + libLua + grantLua)
	reserveScript       = redis.NewScript(shebang + libLua + reserveLua)
	commitScript        = redis.NewScript(shebang + libLua + commitLua)
	voidScript          = redis.NewScript(shebang + libLua + voidLua)
	addKeyScript        = redis.NewScript(shebang + addKeyLua)
	settingsScript      = redis.NewScript(shebang + libLua + settingsLua)
	refundScript        = redis.NewScript(shebang + libLua + refundLua)
	claimEventsScript   = redis.NewScript(shebang + claimEventsLua)
	ackEventScript      = redis.NewScript(shebang + ackEventLua)
)

// The job scripts are account scripts with job_lib.lua after lib.lua.
var (
	jobCreateScript = jobScript(jobCreateLua)
	jobGetScript    = jobScript(jobGetLua)
	jobAttachScript = jobScript(jobAttachLua)
	jobReportScript = jobScript(jobReportLua)
	jobResumeScript = jobScript(jobResumeLua)
	jobCancelScript = jobScript(jobCancelLua)
)

func jobScript(src string) *redis.Script { return redis.NewScript(shebang + libLua + jobLibLua + src) }

// reply reads a script's array reply. A reply of an unexpected shape is a
// bug in a script; it is recorded in err rather than panicking.
type reply struct {
	v   []any
	err error
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

// periodState reads the nine values of lib.lua's with_state from i on.
func (r *reply) periodState(i int) (meter.QuotaState, meter.OverageState) {
	q := meter.QuotaState{Limit: meter.Credits(r.int(i)), Used: meter.Credits(r.int(i + 1)),
		Reserved: meter.Credits(r.int(i + 2)), Remaining: meter.Credits(r.int(i + 3))}
	if ms := r.int(i + 4); ms > 0 {
		q.ResetsAt = msTime(ms)
	}
	o := meter.OverageState{Cap: meter.Credits(r.int(i + 5)), Used: meter.Credits(r.int(i + 6)),
		Reserved: meter.Credits(r.int(i + 7)), Remaining: meter.Credits(r.int(i + 8))}
	return q, o
}

// check returns the first shape error as an internal error.
func (r *reply) check() error {
	if r.err != nil {
		return internalErr(r.err)
	}
	return nil
}
