package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/jobtoken"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

// Request headers a job submission carries to the upstream (removed from
// what the client sent, like the other X-Meter-* headers). The upstream
// reports progress with the token; see docs/jobs.md.
const (
	UpstreamJob         = "X-Meter-Job"
	UpstreamJobToken    = "X-Meter-Job-Token"
	UpstreamJobProgress = "X-Meter-Job-Progress"
)

// HeaderJob names the job on the answer to its submission, and
// HeaderReserved what it holds.
const (
	HeaderJob      = "X-Meter-Job"
	HeaderReserved = "X-Credits-Reserved"
)

// JobConfig makes a meter route a job submission route: the request is
// priced by its pages as usual, but the price is held as the job's
// estimate and charged page by page as the upstream reports progress
// (see docs/jobs.md). The route's pricing must be per_page or
// page_classes rules only: their per-page rates are the job's rates.
type JobConfig struct {
	// TTL: a job that gets no charging progress report (or resume) for
	// this long expires, and its hold is released. Default: 24h.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// UpstreamID says where the upstream's 2xx answer names its job:
	// "json <query>" (a JSONPath into the answer's body) or "header
	// <name>". Default: "json $.id". Clients then name the job by that id
	// on the meter_job routes.
	UpstreamID string `json:"upstream_id,omitempty"`

	// DeclaredBytes is a JSONPath query selecting the sizes, in bytes, of
	// the files a JSON submission declares (uploaded later), e.g.
	// "$.files[*].size". With no document in the request, the estimate is
	// PagesPerMB pages per MB (10^6 bytes) of them, at the highest rate.
	DeclaredBytes string `json:"declared_bytes,omitempty"`

	// PagesPerMB is the pages assumed per MB of declared files. Default 10.
	PagesPerMB float64 `json:"pages_per_mb,omitempty"`

	// ProgressURL is sent to the upstream (X-Meter-Job-Progress) so it
	// knows where to report; the meter_job progress route. Optional.
	ProgressURL string `json:"progress_url,omitempty"`

	// Retention is how long a finished job's billing record is kept when
	// the account has no retention_days. Default: 30 days.
	Retention caddy.Duration `json:"retention,omitempty"`

	idQuery  *pricing.Query
	idHeader string
	declared *pricing.Query
}

func (jc *JobConfig) provision(rules []pricing.Spec) error {
	if jc.TTL == 0 {
		jc.TTL = caddy.Duration(24 * time.Hour)
	}
	if jc.PagesPerMB == 0 {
		jc.PagesPerMB = 10
	}
	if jc.Retention == 0 {
		jc.Retention = caddy.Duration(30 * 24 * time.Hour)
	}
	if jc.UpstreamID == "" {
		jc.UpstreamID = "json $.id"
	}
	switch {
	case jc.TTL < 0, jc.Retention < 0:
		return errors.New("meter: job: ttl and retention must be positive")
	case jc.PagesPerMB < 0 || math.IsNaN(jc.PagesPerMB) || jc.PagesPerMB > 1e6:
		return fmt.Errorf("meter: job: pages_per_mb must be between 0 and 1e6, got %v", jc.PagesPerMB)
	}
	kind, arg, _ := strings.Cut(jc.UpstreamID, " ")
	arg = strings.TrimSpace(arg)
	switch kind {
	case "json":
		q, err := pricing.CompileQuery(arg)
		if err != nil {
			return fmt.Errorf("meter: job: upstream_id: %w", err)
		}
		jc.idQuery = q
	case "header":
		if arg == "" {
			return errors.New("meter: job: upstream_id header needs a header name")
		}
		jc.idHeader = http.CanonicalHeaderKey(arg)
	default:
		return fmt.Errorf("meter: job: upstream_id %q: use `json <query>` or `header <name>`", jc.UpstreamID)
	}
	if jc.DeclaredBytes != "" {
		q, err := pricing.CompileQuery(jc.DeclaredBytes)
		if err != nil {
			return fmt.Errorf("meter: job: declared_bytes: %w", err)
		}
		jc.declared = q
	}
	for i, s := range rules {
		if s.PageClasses == nil && (s.PerPage == nil || s.Output || s.Header != "") {
			return fmt.Errorf("meter: job: rule %d: a job route is priced per page (per_page or page_classes rules only), since its pages are charged as the upstream reports them", i+1)
		}
	}
	return nil
}

// jobRates are the per-page rates of a job: one per quote line (the route
// has only page rules), the account's overrides applied by pricing.
func jobRates(q pricing.Quote) map[string]meter.Credits {
	rates := make(map[string]meter.Credits, len(q.Lines))
	for _, l := range q.Lines {
		if _, dup := rates[l.Name]; !dup {
			rates[l.Name] = l.UnitCost
		}
	}
	return rates
}

// jobEstimate is what a submission holds: the quote when it carries
// documents, else its declared bytes' pages at the highest rate.
func (rq *request) jobEstimate(rates map[string]meter.Credits) (pages int, estimate meter.Credits, err error) {
	jc := rq.h.Job
	if rq.in.Usage.Pages > 0 || jc.declared == nil || rq.in.JSON == nil {
		return rq.in.Usage.Pages, rq.quote.Total, nil
	}
	vals, err := jc.declared.Select(rq.in.JSON)
	if err != nil {
		return 0, 0, err
	}
	var bytes float64
	for _, v := range vals {
		n, ok := v.(float64)
		if !ok || n < 0 || n > 1<<50 {
			return 0, 0, meter.Errorf(meter.ECodeBadRequest, "declared file sizes (%s) must be numbers of bytes, got %v", jc.DeclaredBytes, v)
		}
		bytes += n
	}
	pf := math.Ceil(bytes / 1e6 * jc.PagesPerMB)
	if pf > 1<<40 {
		return 0, 0, meter.Errorf(meter.ECodeBadRequest, "the declared files are too large to price")
	}
	pages = int(pf)
	var top meter.Credits
	for _, r := range rates {
		top = max(top, r)
	}
	if top > 0 && meter.Credits(pages) > meter.MaxCredits/top {
		return 0, 0, meter.Errorf(meter.ECodeBadRequest, "the declared files are too large to price")
	}
	return pages, meter.Credits(pages) * top, nil
}

// jobSettlement submits a job: it holds the job's estimate, forwards the
// submission with the job's id and token, and keeps the job when the
// upstream accepts it (2xx), cancels it otherwise. Its pages are charged
// later, as the upstream reports them (see JobAPI).
type jobSettlement struct{}

// readsAnswer: the upstream's job id is in its answer.
func (jobSettlement) readsAnswer() bool { return true }

func (jobSettlement) hold(ctx context.Context, rq *request, id identity, period meter.Period, _ *usage.Body) (meter.Credits, error) {
	h := rq.h
	rates := jobRates(rq.quote)
	pages, estimate, err := rq.jobEstimate(rates)
	if err == nil && id.settings.PageLimit > 0 && pages > id.settings.PageLimit {
		err = meter.Errorf(meter.ECodePageLimitExceeded, "the job has an estimated %d pages; this account's limit is %d pages per job",
			pages, id.settings.PageLimit).With("pages", pages).With("page_limit", id.settings.PageLimit)
	}
	if err != nil {
		return estimate, err
	}
	retain := time.Duration(h.Job.Retention)
	if d := id.settings.RetentionDays; d > 0 {
		retain = time.Duration(d) * 24 * time.Hour
	}
	sctx, cancel := h.app.storeCtx(ctx)
	res, err := h.app.store.CreateJob(sctx, meter.JobRequest{
		AccountID:      id.key.AccountID,
		ID:             meter.NewID("job"),
		Route:          rq.route,
		Rates:          rates,
		EstimatedPages: pages,
		Estimate:       estimate,
		TTL:            time.Duration(h.Job.TTL),
		Retain:         retain,
		Period:         period,
	})
	cancel()
	if err != nil {
		return estimate, err
	}
	rq.job = &res.Job
	rq.res = meter.Reservation{ID: res.Job.ID, AccountID: id.key.AccountID, Amount: estimate, Available: res.Available}
	token, err := h.app.jobToken(id.key.AccountID, res.Job.ID)
	if err != nil {
		h.cancelJob(rq, "no job token: "+err.Error())
		// Not a refusal: an internal failure Caddy answers and logs.
		return estimate, toCaddy{err}
	}
	r := rq.r
	r.Header.Set(UpstreamAccount, id.key.AccountID)
	r.Header.Set(UpstreamReservation, meter.JobHoldPrefix+res.Job.ID)
	r.Header.Set(UpstreamJob, res.Job.ID)
	r.Header.Set(UpstreamJobToken, token)
	if h.Job.ProgressURL != "" {
		r.Header.Set(UpstreamJobProgress, h.Job.ProgressURL)
	}
	return estimate, nil
}

// settle runs when the submission's status is known: a 2xx keeps the
// job (even if the client has gone: the upstream has accepted it) and
// records the upstream's id; anything else cancels it.
func (jobSettlement) settle(rq *request, status int, hdr http.Header, _ pricing.Response) (meter.Credits, error) {
	if status < 200 || status >= 300 {
		rq.h.cancelJob(rq, fmt.Sprintf("the upstream answered %d", status))
		rq.outcome = outcomeVoided
		observeOutcome(rq.outcome, nil)
		hdr.Set(rq.h.money.cost, "0")
		hdr.Set(rq.h.money.remaining, (rq.res.Available + rq.res.Amount).String())
		return 0, nil
	}
	rq.outcome = outcomeJob
	observeOutcome(rq.outcome, nil)
	job := *rq.job
	if up := rq.upstreamJobID(hdr); up != "" {
		ctx, cancel := rq.h.app.storeCtx(rq.r.Context())
		err := rq.h.app.store.AttachJob(ctx, job.AccountID, job.ID, up)
		cancel()
		if err != nil {
			rq.h.logger.Error("recording the upstream's job id failed; clients cannot name the job by it",
				zap.String("job", job.ID), zap.String("upstream_id", up), zap.Error(err))
		} else {
			job.UpstreamID = up
		}
	} else {
		rq.h.logger.Warn("the upstream's answer names no job id; clients can name the job by its X-Meter-Job id only",
			zap.String("job", job.ID), zap.String("upstream_id", rq.h.Job.UpstreamID))
	}
	hdr.Set(HeaderJob, job.ID)
	hdr.Set(HeaderReserved, job.Reserved.String())
	rq.h.money.set(hdr, 0, rq.res.Available)
	if rq.h.Billing != nil {
		rq.merge = rq.h.Billing.jobObject(job)
	}
	return 0, nil
}

// upstreamJobID reads the upstream's job id from its answer.
func (rq *request) upstreamJobID(hdr http.Header) string {
	jc := rq.h.Job
	var v string
	if jc.idHeader != "" {
		v = hdr.Get(jc.idHeader)
		if jc.idHeader == "Location" {
			// A job URL: its last path segment.
			v = strings.TrimRight(v, "/")
			v = v[strings.LastIndexByte(v, '/')+1:]
		}
	} else if rq.body != nil {
		if vals, err := jc.idQuery.Select(rq.body); err == nil && len(vals) == 1 {
			switch x := vals[0].(type) {
			case string:
				v = x
			case float64:
				if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
					v = fmt.Sprintf("%.0f", x)
				}
			}
		}
	}
	if v == "" || len(v) > meter.MaxRefLen {
		return ""
	}
	return v
}

func (h *Handler) cancelJob(rq *request, why string) {
	ctx, cancel := h.app.storeCtx(rq.r.Context())
	defer cancel()
	if _, err := h.app.store.CancelJob(ctx, rq.job.AccountID, rq.job.ID); err != nil {
		// Its hold expires with the job's TTL.
		h.logger.Error("canceling a job failed", zap.String("job", rq.job.ID), zap.String("why", why), zap.Error(err))
		return
	}
	h.logger.Debug("job canceled", zap.String("job", rq.job.ID), zap.String("why", why))
}

// jobToken signs a job's progress token (see meter/jobtoken).
func (a *App) jobToken(account, job string) (string, error) {
	key, err := a.jobKey()
	if err != nil {
		return "", err
	}
	return jobtoken.Sign(key, account, job), nil
}

// parseJobToken checks a token and returns its account and job.
func (a *App) parseJobToken(tok string) (account, job string, err error) {
	key, err := a.jobKey()
	if err != nil {
		return "", "", err
	}
	return jobtoken.Parse(key, tok)
}

// jobKey is the job token secret: the job_secret option, or one kept in
// the data directory (created on first use), which serves one gateway;
// gateways sharing a store must share job_secret.
func (a *App) jobKey() ([]byte, error) {
	js := a.jobs
	js.keyOnce.Do(func() {
		if js.secret != nil {
			js.key = js.secret
			return
		}
		dir := a.DataDir
		if dir == "" {
			dir = filepath.Join(caddy.AppDataDir(), "creditgate")
		}
		js.key, js.keyErr = jobtoken.LoadOrCreateSecret(filepath.Join(dir, "job_secret"))
	})
	return js.key, js.keyErr
}
