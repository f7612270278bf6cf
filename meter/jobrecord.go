package meter

import (
	"encoding/json"
	"fmt"
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

// jobJSON is JobRecord's JSON shape. The names after the Redis ones are
// those boltstore wrote before the two shared this type (numbers as JSON
// numbers): records of that format still open.
type jobJSON struct {
	ID         string               `json:"id,omitempty"`
	UpstreamID string               `json:"upstream_id"`
	Route      string               `json:"route"`
	Status     string               `json:"status"`
	Rates      map[string]recordInt `json:"rates"`
	EstPages   recordInt            `json:"est_pages"`
	Estimate   recordInt            `json:"estimate"`
	Debited    recordInt            `json:"debited"`
	Pages      map[string]recordInt `json:"pages"`
	Reported   map[string]recordInt `json:"reported"`
	Failed     recordInt            `json:"failed"`
	Final      string               `json:"final"`
	Created    recordInt            `json:"created"`
	Updated    recordInt            `json:"updated"`
	Expires    recordInt            `json:"expires"`
	Finished   recordInt            `json:"finished"`
	TTL        recordInt            `json:"ttl"`
	Retain     recordInt            `json:"retain"`
	Due        recordInt            `json:"due,omitempty"`

	OldUp       string    `json:"up,omitempty"`
	OldStatus   string    `json:"s,omitempty"`
	OldEst      recordInt `json:"est,omitempty"`
	OldCreated  recordInt `json:"created_ms,omitempty"`
	OldUpdated  recordInt `json:"updated_ms,omitempty"`
	OldExpires  recordInt `json:"expires_ms,omitempty"`
	OldFinished recordInt `json:"finished_ms,omitempty"`
	OldTTL      recordInt `json:"ttl_ms,omitempty"`
	OldRetain   recordInt `json:"retain_ms,omitempty"`
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

// MarshalJSON writes the shared shape.
func (r JobRecord) MarshalJSON() ([]byte, error) {
	return json.Marshal(jobJSON{ID: r.ID, UpstreamID: r.UpstreamID, Route: r.Route, Status: r.Status,
		Rates: toRecord(r.Rates), EstPages: recordInt(r.EstPages), Estimate: recordInt(r.Estimate),
		Debited: recordInt(r.Debited), Pages: toRecord(r.Pages), Reported: toRecord(r.Reported),
		Failed: recordInt(r.Failed), Final: r.Final, Created: recordInt(r.CreatedMS),
		Updated: recordInt(r.UpdatedMS), Expires: recordInt(r.ExpiresMS), Finished: recordInt(r.FinishedMS),
		TTL: recordInt(r.TTLMS), Retain: recordInt(r.RetainMS), Due: recordInt(r.DueMS)})
}

// UnmarshalJSON reads the shared shape or boltstore's older one.
func (r *JobRecord) UnmarshalJSON(b []byte) error {
	var j jobJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	first := func(s ...string) string {
		for _, v := range s {
			if v != "" {
				return v
			}
		}
		return ""
	}
	num := func(n ...recordInt) int64 { return int64(slices.Max(n)) }
	*r = JobRecord{ID: j.ID, UpstreamID: first(j.UpstreamID, j.OldUp), Route: j.Route,
		Status: first(j.Status, j.OldStatus), Rates: fromRecord[int64](j.Rates), EstPages: int(j.EstPages),
		Estimate: num(j.Estimate, j.OldEst), Debited: int64(j.Debited), Pages: fromRecord[int](j.Pages),
		Reported: fromRecord[int](j.Reported), Failed: int(j.Failed), Final: j.Final,
		CreatedMS: num(j.Created, j.OldCreated), UpdatedMS: num(j.Updated, j.OldUpdated),
		ExpiresMS: num(j.Expires, j.OldExpires), FinishedMS: num(j.Finished, j.OldFinished),
		TTLMS: num(j.TTL, j.OldTTL), RetainMS: num(j.Retain, j.OldRetain), DueMS: int64(j.Due)}
	return nil
}

// Finished reports whether the job is frozen.
func (r *JobRecord) Finished() bool { return Job{Status: r.Status}.Finished() }

// Classes are the job's page classes in charging order: by name.
func (r *JobRecord) Classes() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for c := range r.Rates {
			if !yield(c) {
				return
			}
		}
	})
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
	var m int64
	for _, rate := range r.Rates {
		m = max(m, rate)
	}
	return m
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
