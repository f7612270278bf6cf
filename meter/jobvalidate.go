package meter

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Job limits shared by the stores, so both refuse the same requests.
const (
	// MaxJobClasses bounds a job's page classes.
	MaxJobClasses = 32
	// MaxJobPages bounds each cumulative page count of a report.
	MaxJobPages = 1 << 40
	// DefaultJobRetain is how long a finished job's record stays readable
	// when JobRequest.Retain is 0.
	DefaultJobRetain = 30 * 24 * time.Hour
)

// The class names of pricing's page classes.
var jobClassName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// ValidJobRef reports whether s can be a job id or an upstream job id:
// 1 to MaxRefLen bytes of UTF-8 without control characters (ids end up in
// store keys and in JSON records, where those would not round-trip).
func ValidJobRef(s string) bool {
	if s == "" || len(s) > MaxRefLen || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// ValidateJobLookup checks the account and job id of a call that names an
// existing job. An impossible job id is reported as not found, like an
// unknown one.
func ValidateJobLookup(account, id string) error {
	if err := ValidateAccountID(account); err != nil {
		return err
	}
	if !ValidJobRef(id) {
		return Errorf(ECodeJobNotFound, "job %q not found", id)
	}
	return nil
}

// ValidateUpstreamJobID checks an upstream job id given to AttachJob.
func ValidateUpstreamJobID(id string) error {
	if !ValidJobRef(id) {
		return invalid("upstream job id must be 1 to %d bytes of UTF-8 without control characters", MaxRefLen)
	}
	return nil
}

func checkPeriod(p Period) error {
	if !p.Start.IsZero() && (p.ID() <= 0 || !p.End.After(p.Start)) {
		return invalid("period must start after 1970 and end after it starts")
	}
	return nil
}

// Validate checks a job creation.
func (r JobRequest) Validate() error {
	if err := ValidateAccountID(r.AccountID); err != nil {
		return err
	}
	if !ValidJobRef(r.ID) {
		return invalid("job id must be 1 to %d bytes of UTF-8 without control characters", MaxRefLen)
	}
	if err := checkLen("route", r.Route, MaxTextLen); err != nil {
		return err
	}
	if strings.ContainsRune(r.Route, 0) {
		return invalid("route must not contain NUL")
	}
	if len(r.Rates) == 0 || len(r.Rates) > MaxJobClasses {
		return invalid("a job needs 1 to %d page classes", MaxJobClasses)
	}
	for c, rate := range r.Rates {
		if !jobClassName.MatchString(c) {
			return invalid("page class %q: use a letter then letters, digits, _ or -", c)
		}
		if err := CheckAmount("rate of page class "+c, rate); err != nil {
			return err
		}
	}
	if r.EstimatedPages < 0 || r.EstimatedPages > MaxJobPages {
		return invalid("estimated pages must be between 0 and %d", MaxJobPages)
	}
	if err := CheckAmount("job estimate", r.Estimate); err != nil {
		return err
	}
	if r.TTL <= 0 {
		return invalid("job TTL must be positive")
	}
	if r.Retain < 0 {
		return invalid("job retention must not be negative")
	}
	return checkPeriod(r.Period)
}

// RetainOrDefault is how long the finished job's record is kept.
func (r JobRequest) RetainOrDefault() time.Duration {
	if r.Retain == 0 {
		return DefaultJobRetain
	}
	return r.Retain
}

// Validate checks what a report carries by itself (not its classes, which
// need the job: see ValidateFor).
func (r JobReport) Validate() error {
	if err := ValidateJobLookup(r.AccountID, r.JobID); err != nil {
		return err
	}
	for c, n := range r.Done {
		if n < 0 || n > MaxJobPages {
			return invalid("pages of class %q must be between 0 and %d", c, MaxJobPages)
		}
	}
	if r.Failed < 0 || r.Failed > MaxJobPages {
		return invalid("failed pages must be between 0 and %d", MaxJobPages)
	}
	switch r.Final {
	case "", JobCompleted, JobFailed:
	default:
		return invalid("final status must be %q or %q", JobCompleted, JobFailed)
	}
	if err := checkLen("request id", r.RequestID, MaxTextLen); err != nil {
		return err
	}
	return checkPeriod(r.Period)
}

// ValidateFor checks a report against its job: every class must be one of
// the job's, and the cost of all the pages done (the larger of the report's
// and the recorded counts) must stay within MaxCredits, so that every sum a
// store makes is exact.
func (r JobReport) ValidateFor(j Job) error {
	var cost float64 // float: a product may overflow int64 before the check
	for c := range r.Done {
		if _, ok := j.Rates[c]; !ok {
			return invalid("page class %q is not one of the job's", c)
		}
	}
	for c, rate := range j.Rates {
		n := max(r.Done[c], j.Reported[c])
		cost += float64(n) * float64(rate)
	}
	if cost > float64(MaxCredits) {
		return invalid("the reported pages cost more than %s credits", MaxCredits)
	}
	return nil
}
