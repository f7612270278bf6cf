package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
)

func init() {
	caddy.RegisterModule(JobAPI{})
	httpcaddyfile.RegisterHandlerDirective("meter_job", parseDirective[JobAPI])
}

// Job actions of the meter_job handler.
const (
	// JobStatus forwards the client's job status request and merges the
	// job's billing object into the upstream's JSON answer.
	JobStatus = "status"
	// JobResume resumes a blocked job (paying its owed pages), then
	// forwards the client's resume request to the upstream.
	JobResume = "resume"
	// JobBilling answers the job's billing record itself.
	JobBilling = "billing"
	// JobProgress takes the upstream's progress reports (job token auth).
	JobProgress = "progress"
)

// JobAPI is the `meter_job` handler: the routes around a long-running
// job (see docs/jobs.md). Clients call status, resume and billing with
// their API key and name the job by the upstream's id (or the
// X-Meter-Job id); the upstream calls progress with the job's token.
type JobAPI struct {
	// Action is status, resume, billing or progress.
	Action string `json:"action"`
	// ID is the job id, usually a placeholder such as {re.job.1}.
	// Default: the last path segment (status, billing) or the one before
	// it (resume: .../jobs/{id}/resume).
	ID string `json:"id,omitempty"`
	// KeyHeader is the header with the client's API key, as for meter.
	KeyHeader string `json:"key_header,omitempty"`
	// Billing names and cases the billing object. Default: "billing",
	// snake case.
	Billing *BillingConfig `json:"billing,omitempty"`

	auth   authenticator
	app    *App
	store  jobAPIStore
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (JobAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.meter_job",
		New: func() caddy.Module { return new(JobAPI) },
	}
}

// Provision gets the meter app.
func (a *JobAPI) Provision(ctx caddy.Context) error {
	switch a.Action {
	case JobStatus, JobResume, JobBilling, JobProgress:
	default:
		return errors.New("meter_job: action must be status, resume, billing or progress, got " + strconv.Quote(a.Action))
	}
	if a.Billing == nil {
		a.Billing = &BillingConfig{}
	}
	if err := a.Billing.provision(); err != nil {
		return err
	}
	a.logger = ctx.Logger()
	var err error
	if a.app, a.auth, err = authFor(ctx, a.KeyHeader); err != nil {
		return fmt.Errorf("meter_job: %w", err)
	}
	a.store = a.app.store
	return nil
}

// ServeHTTP serves one job call.
func (a *JobAPI) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The progress token is the one X-Meter-* header taken from a request
	// (the upstream's); every path below may reach next, so the client's
	// X-Meter-* headers go first.
	tok := r.Header.Get(UpstreamJobToken)
	stripMeterHeaders(r.Header)
	if a.Action == JobProgress {
		return a.progress(w, r, tok)
	}
	id, err := a.auth.identify(r.Context(), r)
	if err != nil {
		writeError(w, err)
		return nil
	}
	job, err := a.find(r, id.key.AccountID)
	if a.Action == JobStatus && meter.ErrorCode(err) == meter.ECodeJobNotFound {
		// A job creditgate did not meter (submitted before it was
		// deployed, or not a job at all): reading it moves no money, so it
		// goes to the upstream as it is.
		return next.ServeHTTP(w, r)
	}
	if err != nil {
		writeError(w, err)
		return nil
	}
	switch a.Action {
	case JobBilling:
		writeJSON(w, http.StatusOK, a.record(job))
		return nil
	case JobResume:
		// Resuming pays the owed pages: only a live key of an enabled
		// account may.
		if id.key.Mode == meter.ModeTest {
			writeError(w, meter.Errorf(meter.ECodeTestKeyNotAllowed, "a test key cannot resume a job: use a live key"))
			return nil
		}
		if err := id.enabled(); err != nil {
			writeError(w, err)
			return nil
		}
		period, err := id.settings.PeriodAt(time.Now(), id.created)
		if err != nil {
			writeError(w, err)
			return nil
		}
		ctx, cancel := a.app.storeCtx(r.Context())
		res, err := a.store.ResumeJob(ctx, job.AccountID, job.ID, period, requestID(r))
		cancel()
		if err != nil {
			var e *meter.Error
			if errors.As(err, &e) {
				if avail, ok := e.Details["available"].(meter.Credits); ok {
					w.Header().Set(a.app.money.remaining, avail.String())
				}
			}
			w.Header().Set(a.app.money.cost, "0")
			writeError(w, err)
			return nil
		}
		if res.Charged > 0 {
			a.logger.Info("job resumed", zap.String("account", job.AccountID), zap.String("job", job.ID),
				zap.Stringer("charged", res.Charged))
		}
		a.app.money.set(w.Header(), res.Charged, res.Available)
		job = res.Job
	}
	// status and resume go on to the upstream, with the billing object
	// merged into its JSON answer.
	r.Header.Set(UpstreamAccount, job.AccountID)
	r.Header.Set(UpstreamJob, job.ID)
	mw := &mergeWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w},
		field: a.Billing.Field, value: a.Billing.jobObject(job)}
	err = next.ServeHTTP(mw, r)
	mw.finish()
	return err
}

// find resolves the request's job: by the upstream's id, else by ours.
func (a *JobAPI) find(r *http.Request, account string) (meter.Job, error) {
	ref := a.jobRef(r)
	if ref == "" || len(ref) > meter.MaxRefLen {
		return meter.Job{}, meter.Errorf(meter.ECodeJobNotFound, "no job id in the request")
	}
	ctx, cancel := a.app.storeCtx(r.Context())
	defer cancel()
	return findJob(ctx, a.store, account, ref)
}

// findJob finds an account's job by the upstream's id, or by creditgate's
// own (job_...).
func findJob(ctx context.Context, s meter.JobStore, account, ref string) (meter.Job, error) {
	job, err := s.JobByUpstream(ctx, account, ref)
	if meter.ErrorCode(err) == meter.ECodeJobNotFound && strings.HasPrefix(ref, "job_") {
		job, err = s.Job(ctx, account, ref)
	}
	if meter.ErrorCode(err) == meter.ECodeJobNotFound {
		err = meter.Errorf(meter.ECodeJobNotFound, "job %q not found", ref)
	}
	return job, err
}

func (a *JobAPI) jobRef(r *http.Request) string {
	if a.ID != "" {
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if repl == nil {
			return a.ID
		}
		return repl.ReplaceAll(a.ID, "")
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	i := len(segs) - 1
	if a.Action == JobResume {
		i--
	}
	if i < 0 {
		return ""
	}
	return segs[i]
}

// record is the billing endpoint's answer.
func (a *JobAPI) record(j meter.Job) map[string]any {
	return map[string]any{
		"job_id":        j.ID,
		"upstream_id":   j.UpstreamID,
		"status":        j.Status,
		"created_at":    j.CreatedAt,
		"expires_at":    j.ExpiresAt,
		a.Billing.Field: a.Billing.jobObject(j),
	}
}

// maxProgressBody bounds a progress report.
const maxProgressBody = 64 << 10

// progressReport is the body of a progress report (docs/jobs.md).
type progressReport struct {
	// Pages are the pages done so far, by class (cumulative).
	Pages map[string]int `json:"pages"`
	// FailedPages are the pages failed so far (cumulative).
	FailedPages int `json:"failed_pages"`
	// Status is "running" (default), "completed" or "failed".
	Status string `json:"status"`
}

// progress takes a report from the upstream.
func (a *JobAPI) progress(w http.ResponseWriter, r *http.Request, tok string) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, meter.Errorf(meter.ECodeNotFound, "%s is not allowed here: POST a progress report", r.Method))
		return nil
	}
	if tok == "" {
		tok = bearer(r.Header.Get("Authorization"))
	}
	account, jobID, err := a.app.parseJobToken(tok)
	if err != nil {
		writeError(w, err)
		return nil
	}
	var rep progressReport
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxProgressBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		writeError(w, meter.Errorf(meter.ECodeBadRequest, "a progress report is a JSON object "+
			`{"pages": {"<class>": <done so far>}, "failed_pages": <n>, "status": "running"|"completed"|"failed"}: %v`, err))
		return nil
	}
	final := ""
	switch rep.Status {
	case "", "running":
	case "completed":
		final = meter.JobCompleted
	case "failed":
		final = meter.JobFailed
	default:
		writeError(w, meter.Errorf(meter.ECodeBadRequest, "status %q: use running, completed or failed", rep.Status))
		return nil
	}
	// The period is the account's: read its settings (cached with keys
	// would need a key; a report is rare next to requests).
	ctx, cancel := a.app.storeCtx(r.Context())
	acct, err := a.store.Account(ctx, account)
	cancel()
	if err != nil {
		writeError(w, err)
		return nil
	}
	period, err := acct.Settings.PeriodAt(time.Now(), acct.CreatedAt)
	if err != nil {
		writeError(w, err)
		return nil
	}
	ctx, cancel = a.app.storeCtx(r.Context())
	res, err := a.store.ReportJob(ctx, meter.JobReport{
		AccountID: account, JobID: jobID, Done: rep.Pages, Failed: rep.FailedPages, Final: final,
		RequestID: requestID(r), Period: period,
	})
	cancel()
	if err != nil {
		code := meter.ErrorCode(err)
		if code == meter.ECodeJobExpired || code == meter.ECodeJobFinished || code == meter.ECodeJobNotFound {
			w.Header().Set(HeaderJobAction, "stop")
		}
		writeError(w, err)
		return nil
	}
	if res.Charged > 0 {
		meterMetrics.debited.Add(creditsFloat(res.Charged))
	}
	action := "continue"
	switch {
	case res.Job.Status == meter.JobBlocked:
		action = "pause"
		a.logger.Info("job blocked: insufficient credits", zap.String("account", account),
			zap.String("job", jobID), zap.Stringer("owed", res.Job.Owed()))
	case res.Job.Finished():
		action = "stop"
	}
	w.Header().Set(HeaderJobAction, action)
	a.app.money.set(w.Header(), res.Charged, res.Available)
	writeJSON(w, http.StatusOK, map[string]any{
		"job_id":        res.Job.ID,
		"upstream_id":   res.Job.UpstreamID,
		"status":        res.Job.Status,
		"action":        action,
		"charged":       res.Charged,
		a.Billing.Field: a.Billing.jobObject(res.Job),
	})
	return nil
}

// HeaderJobAction tells the upstream, on a progress answer, what to do:
// continue, pause (blocked: wait for a resume) or stop.
const HeaderJobAction = "X-Meter-Job-Action"

// mergeWriter holds back a 2xx JSON answer (up to maxMergeBody) to merge
// a member into it; anything else passes through untouched.
type mergeWriter struct {
	*caddyhttp.ResponseWriterWrapper
	field string
	value any

	status  int
	holding bool
	buf     bytes.Buffer
}

func (mw *mergeWriter) WriteHeader(status int) {
	if mw.status != 0 || mw.holding {
		return
	}
	h := mw.Header()
	if status >= 200 && status < 300 && isJSON(h.Get("Content-Type")) && h.Get("Content-Encoding") == "" {
		mw.holding, mw.status = true, status
		return
	}
	mw.status = status
	mw.ResponseWriterWrapper.WriteHeader(status)
}

func (mw *mergeWriter) Write(b []byte) (int, error) {
	if mw.status == 0 && !mw.holding {
		mw.WriteHeader(http.StatusOK)
	}
	if !mw.holding {
		return mw.ResponseWriterWrapper.Write(b)
	}
	if mw.buf.Len()+len(b) > maxMergeBody {
		// Too large to hold: send it as it is.
		mw.release()
		return mw.ResponseWriterWrapper.Write(b)
	}
	return mw.buf.Write(b)
}

// ReadFrom is overridden because the wrapper's would bypass Write.
func (mw *mergeWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{mw}, r)
}

// FlushError keeps a held answer held.
func (mw *mergeWriter) FlushError() error {
	if mw.holding {
		return nil
	}
	if mw.status == 0 {
		mw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(mw.ResponseWriterWrapper.ResponseWriter).Flush()
}

// release sends what is held, unchanged.
func (mw *mergeWriter) release() {
	mw.holding = false
	mw.ResponseWriterWrapper.WriteHeader(mw.status)
	_, _ = mw.ResponseWriterWrapper.Write(mw.buf.Bytes())
	mw.buf.Reset()
}

// finish sends a held answer, merged.
func (mw *mergeWriter) finish() {
	if !mw.holding {
		return
	}
	if merged, ok := mergeMember(mw.buf.Bytes(), mw.field, mw.value); ok {
		mw.holding = false
		mw.Header().Set("Content-Length", strconv.Itoa(len(merged)))
		mw.ResponseWriterWrapper.WriteHeader(mw.status)
		_, _ = mw.ResponseWriterWrapper.Write(merged)
		return
	}
	mw.release()
}

// UnmarshalCaddyfile sets up the handler. Syntax:
//
//	meter_job status|resume|billing|progress [<id>] {
//		key_header <header>
//		billing    [<field>] [snake|camel]
//	}
func (a *JobAPI) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.NextArg() {
		return d.Err("meter_job: expected an action: status, resume, billing or progress")
	}
	a.Action = d.Val()
	switch a.Action {
	case JobStatus, JobResume, JobBilling:
		if d.NextArg() {
			a.ID = d.Val()
		}
	case JobProgress:
	default:
		return d.Errf("meter_job: unknown action %q (expected status, resume, billing or progress)", a.Action)
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "key_header":
			a.KeyHeader, err = keyHeaderArg(d, "meter_job", a.KeyHeader)
		case "billing":
			if a.Billing != nil {
				return d.Err("meter_job: billing given more than once")
			}
			a.Billing, err = unmarshalBilling(d)
		default:
			return d.Errf("meter_job: unknown subdirective %q (expected key_header or billing)", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*JobAPI)(nil)
	_ caddyhttp.MiddlewareHandler = (*JobAPI)(nil)
	_ caddyfile.Unmarshaler       = (*JobAPI)(nil)
)
