package caddymodule

import (
	"net/http"
	"strings"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
)

// HeaderDryRun, set to "true" on a request to a metered route, asks for
// the price instead of the work: the request is measured and priced, never
// forwarded, never charged, never written to the ledger.
const HeaderDryRun = "X-Meter-Dry-Run"

func isDryRun(r *http.Request) bool {
	v := strings.ToLower(strings.TrimSpace(r.Header.Get(HeaderDryRun)))
	return v == "true" || v == "1"
}

// dryRunFile is one file of the request, as the dry run shows it.
type dryRunFile struct {
	Name  string `json:"name,omitempty"`
	Kind  string `json:"kind"`
	Size  int64  `json:"size"`
	Pages int    `json:"pages"`
}

// dryRunResponse is the body of a dry run's 200.
type dryRunResponse struct {
	DryRun bool `json:"dry_run"`
	// Total is what the request would be charged (for rules priced on the
	// response: what would be reserved).
	Total meter.Credits  `json:"total"`
	Lines []pricing.Line `json:"lines"`
	// Estimate is true when Total is an estimate (a rule priced on the
	// response: output pages, header units): what is reserved; the real
	// count is charged.
	Estimate bool `json:"estimate,omitempty"`
	// Minimum is the smallest hold the route accepts instead of Total
	// (at_least), when it has one.
	Minimum *meter.Credits `json:"minimum,omitempty"`
	// Pages and Files are what was measured.
	Pages int          `json:"pages"`
	Files []dryRunFile `json:"files"`
	// Affordable says whether the account could pay for it now.
	Affordable bool          `json:"affordable"`
	Available  meter.Credits `json:"available"`
	// Job is, on a job route, what the submission would hold: its
	// estimated pages and credits (Affordable then says whether the
	// estimate could be held).
	Job *dryRunJob `json:"job,omitempty"`
	// Cost and RequiredFeatures repeat Total and Lines under the names of
	// PSPDFKit's /analyze_build answer, on a meter_quote's answer only.
	Cost             *meter.Credits     `json:"cost,omitempty"`
	RequiredFeatures map[string]feature `json:"required_features,omitempty"`
}

type dryRunJob struct {
	EstimatedPages int                      `json:"estimated_pages"`
	Estimate       meter.Credits            `json:"estimate"`
	Rates          map[string]meter.Credits `json:"rates"`
}

func (rq *request) dryRun(w http.ResponseWriter) error {
	ctx, cancel := rq.h.app.storeCtx(rq.r.Context())
	acct, err := rq.h.app.store.Account(ctx, rq.key.AccountID)
	cancel()
	if err != nil {
		rq.refuse(w, err)
		return nil
	}
	resp, err := rq.quoteResponse(acct)
	if err != nil {
		rq.refuse(w, err)
		return nil
	}
	resp.DryRun = true
	if rq.key.Mode == meter.ModeTest {
		resp.Affordable = true
	}
	if isQuote(rq.r) {
		resp.addFeatures()
	}
	rq.h.money.set(w.Header(), 0, acct.Available)
	w.Header().Set(HeaderDryRun, "true")
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// quoteResponse is the quote and measure of the request, and whether the
// account could pay for it now (its job's estimate on a job route).
func (rq *request) quoteResponse(acct meter.Account) (dryRunResponse, error) {
	resp := dryRunResponse{
		Total:      rq.quote.Total,
		Lines:      rq.quote.Lines,
		Pages:      rq.in.Usage.Pages,
		Files:      make([]dryRunFile, 0, len(rq.in.Usage.Files)),
		Affordable: acct.Available >= rq.quote.Total,
		Available:  acct.Available,
		Estimate:   rq.quote.Estimate,
	}
	if m := rq.quote.Minimum; m < rq.quote.Total {
		resp.Minimum = &m
		resp.Affordable = resp.Affordable || acct.Available >= m
	}
	if rq.h.Job != nil {
		rates := jobRates(rq.quote)
		pages, estimate, err := rq.jobEstimate(rates)
		if err != nil {
			return resp, err
		}
		resp.Job = &dryRunJob{EstimatedPages: pages, Estimate: estimate, Rates: rates}
		resp.Affordable = acct.Available >= estimate
	}
	for _, f := range rq.in.Usage.Files {
		resp.Files = append(resp.Files, dryRunFile{Name: f.Name, Kind: f.Kind, Size: f.Size, Pages: f.Pages})
	}
	return resp, nil
}
