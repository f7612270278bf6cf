package meter

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// JobRecord is a job as both stores keep it: redisstore's scripts write it
// (job_json in job_lib.lua) and boltstore encodes it, in one JSON shape:
// the names below, every number a decimal string (Lua's cjson would write
// large numbers inexactly). Job is what callers get: JobRecord.Job. Amounts
// are milli-credits, times Unix ms.
type JobRecord struct {
	ID         string
	UpstreamID string
	Route      string
	Status     string
	Rates      map[string]int64
	EstPages   int
	Estimate   int64
	Debited    int64
	Pages      map[string]int
	Reported   map[string]int
	Failed     int
	Final      string
	CreatedMS  int64
	UpdatedMS  int64
	ExpiresMS  int64
	FinishedMS int64
	TTLMS      int64
	RetainMS   int64
	// DueMS is the time of the job's timer in the embedded store (0: none;
	// Redis keeps its timers apart).
	DueMS int64
}

// recordInt is a number written as a decimal string, read from a string
// or a JSON number.
type recordInt int64

func (n recordInt) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, strconv.FormatInt(int64(n), 10)), nil
}

func (n *recordInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("job record: %q is not an integer", b)
	}
	*n = recordInt(v)
	return nil
}

func toRecord[V ~int | ~int64](m map[string]V) map[string]recordInt {
	out := make(map[string]recordInt, len(m))
	for k, v := range m {
		out[k] = recordInt(v)
	}
	return out
}

func fromRecord[V ~int | ~int64](m map[string]recordInt) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = V(v)
	}
	return out
}

// MarshalJSON writes the shared shape: redisstore's names (job_json),
// every number a decimal string.
func (r JobRecord) MarshalJSON() ([]byte, error) {
	m := map[string]any{"upstream_id": r.UpstreamID, "route": r.Route, "status": r.Status, "final": r.Final,
		"rates": toRecord(r.Rates), "pages": toRecord(r.Pages), "reported": toRecord(r.Reported)}
	if r.ID != "" {
		m["id"] = r.ID
	}
	for name, v := range map[string]int64{"est_pages": int64(r.EstPages), "estimate": r.Estimate,
		"debited": r.Debited, "failed": int64(r.Failed), "created": r.CreatedMS, "updated": r.UpdatedMS,
		"expires": r.ExpiresMS, "finished": r.FinishedMS, "ttl": r.TTLMS, "retain": r.RetainMS} {
		m[name] = recordInt(v)
	}
	if r.DueMS != 0 {
		m["due"] = recordInt(r.DueMS)
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the shared shape, or the one boltstore wrote before
// the stores shared this type (the second name of each pair below, numbers
// as JSON numbers): existing files still open.
func (r *JobRecord) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var bad error
	read := func(v any, names ...string) {
		for _, n := range names {
			if raw, ok := m[n]; ok && bad == nil {
				bad = json.Unmarshal(raw, v)
				return
			}
		}
	}
	num := func(names ...string) int64 {
		var n recordInt
		read(&n, names...)
		return int64(n)
	}
	var rates, pages, reported map[string]recordInt
	read(&rates, "rates")
	read(&pages, "pages")
	read(&reported, "reported")
	*r = JobRecord{Rates: fromRecord[int64](rates), Pages: fromRecord[int](pages), Reported: fromRecord[int](reported),
		EstPages: int(num("est_pages")), Estimate: num("estimate", "est"), Debited: num("debited"),
		Failed: int(num("failed")), CreatedMS: num("created", "created_ms"), UpdatedMS: num("updated", "updated_ms"),
		ExpiresMS: num("expires", "expires_ms"), FinishedMS: num("finished", "finished_ms"),
		TTLMS: num("ttl", "ttl_ms"), RetainMS: num("retain", "retain_ms"), DueMS: num("due")}
	read(&r.ID, "id")
	read(&r.UpstreamID, "upstream_id", "up")
	read(&r.Route, "route")
	read(&r.Status, "status", "s")
	read(&r.Final, "final")
	return bad
}

// Finished reports whether the job is frozen.
func (r *JobRecord) Finished() bool { return Job{Status: r.Status}.Finished() }

// Classes are the job's page classes in charging order: by name.
func (r *JobRecord) Classes() []string {
	return slices.Sorted(maps.Keys(r.Rates))
}

// Owed is the cost of the pages reported but not charged.
func (r *JobRecord) Owed() int64 {
	var x int64
	for c, rate := range r.Rates {
		x += int64(r.Reported[c]-r.Pages[c]) * rate
	}
	return x
}

// MaxRate is the job's highest rate.
func (r *JobRecord) MaxRate() int64 {
	return slices.Max(append(slices.Collect(maps.Values(r.Rates)), 0))
}

// Job is the record as callers see it, of account's job id, with nothing
// reserved (the store fills Reserved from the job's hold). The record's
// own ID, when it has one, wins over id.
func (r *JobRecord) Job(account, id string) Job {
	if r.ID != "" {
		id = r.ID
	}
	ms := func(v int64) time.Time { return time.UnixMilli(v).UTC() }
	j := Job{ID: id, AccountID: account, UpstreamID: r.UpstreamID, Route: r.Route, Status: r.Status,
		Rates: make(map[string]Credits, len(r.Rates)), EstimatedPages: r.EstPages,
		Estimate: Credits(r.Estimate), Debited: Credits(r.Debited),
		Pages: make(map[string]int, len(r.Rates)), Reported: make(map[string]int, len(r.Rates)),
		Failed: r.Failed, Final: r.Final, CreatedAt: ms(r.CreatedMS), UpdatedAt: ms(r.UpdatedMS),
		ExpiresAt: ms(r.ExpiresMS), TTL: time.Duration(r.TTLMS) * time.Millisecond}
	for c, rate := range r.Rates {
		j.Rates[c] = Credits(rate)
		j.Pages[c] = r.Pages[c]
		j.Reported[c] = r.Reported[c]
	}
	if r.FinishedMS > 0 {
		j.FinishedAt = ms(r.FinishedMS)
	}
	return j
}
