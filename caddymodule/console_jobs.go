package caddymodule

import (
	"context"

	"github.com/creditgate/creditgate/meter"
)

// recentJobs are the jobs named by the account's newest 500 ledger
// entries (the jobs that charged it lately), newest first, at most 20,
// each read live. The stores keep no list of an account's jobs (a job is
// found by its id), and the job scripts are on the request path, so the
// list comes from the ledger, one page of it: a job that has charged
// nothing yet is found by its id only.
func recentJobs(ctx context.Context, s meter.Store, account string) ([]meter.Job, error) {
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: account, Limit: 500})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var jobs []meter.Job
	for _, e := range es {
		if e.JobID == "" || seen[e.JobID] {
			continue
		}
		seen[e.JobID] = true
		j, err := s.Job(ctx, account, e.JobID)
		if meter.ErrorCode(err) == meter.ECodeJobNotFound {
			continue // its record was purged after its retention
		}
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
		if len(jobs) == 20 {
			break
		}
	}
	return jobs, nil
}
