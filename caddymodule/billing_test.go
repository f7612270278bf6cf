package caddymodule

import (
	"testing"

	"github.com/creditgate/creditgate/meter"
)

func TestMergeMember(t *testing.T) {
	b := &BillingConfig{Case: "camel"}
	v := b.chargeObject(5000, 100000)
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`{"id": "p-1"}`, `{"id": "p-1","billing":{"creditsCharged":5,"availableCredits":100}}`, true},
		{"{}\n", "{\"billing\":{\"creditsCharged\":5,\"availableCredits\":100}}\n", true},
		{`{"note": "a } in a string"}`, `{"note": "a } in a string","billing":{"creditsCharged":5,"availableCredits":100}}`, true},
		{`{"billing": 1, "id": 2}`, `{"billing":{"creditsCharged":5,"availableCredits":100},"id":2}`, true},
		{`[1, 2]`, `[1, 2]`, false},
		{`{"id": `, `{"id": `, false},
		{`null`, `null`, false},
	} {
		got, ok := mergeMember([]byte(tc.in), "billing", v)
		if string(got) != tc.want || ok != tc.ok {
			t.Errorf("%q: got %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBillingNames(t *testing.T) {
	j := meter.Job{ID: "job_1", Status: meter.JobRunning, Rates: map[string]meter.Credits{"large-format": 10000},
		Pages: map[string]int{"large-format": 2}, Reported: map[string]int{"large-format": 3}}
	for _, tc := range []struct {
		c    string
		want []string
	}{
		{"snake", []string{"job_id", "status", "credits_debited", "credits_reserved", "large-format_credits_per_page",
			"large-format_page_count", "successful_page_count", "failed_page_count", "estimated_pages", "credits_owed"}},
		{"camel", []string{"jobId", "status", "creditsDebited", "creditsReserved", "largeFormatCreditsPerPage",
			"largeFormatPageCount", "successfulPageCount", "failedPageCount", "estimatedPages", "creditsOwed"}},
	} {
		o := (&BillingConfig{Case: tc.c}).jobObject(j)
		if len(o) != len(tc.want) {
			t.Fatalf("%s: %d members, want %d: %v", tc.c, len(o), len(tc.want), o)
		}
		for i, m := range o {
			if m.name != tc.want[i] {
				t.Errorf("%s: member %d is %q, want %q", tc.c, i, m.name, tc.want[i])
			}
		}
	}
}
