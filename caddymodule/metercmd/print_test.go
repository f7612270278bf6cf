package metercmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// TestPrintJobFromTheAPIsJSON: a job as the admin API sends it (meter.Job's
// JSON) decodes into meter.Job and prints its row.
func TestPrintJobFromTheAPIsJSON(t *testing.T) {
	exp := time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)
	raw, err := json.Marshal(meter.Job{ID: "job_1", UpstreamID: "up-1", Status: "running", Debited: 2500, Reserved: 7000,
		Pages: map[string]int{"drawing": 2, "document": 3}, Failed: 1, ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	var j meter.Job
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printJob(&out, j)
	want := []string{"job_1", "up-1", "running", "2.5", "7", "document=3 drawing=2", "1", "2026-12-07T03:04:05Z"}
	row := strings.Fields(strings.Split(out.String(), "\n")[1])
	if strings.Join(row, "|") != strings.Join(append(want[:5:5], "document=3", "drawing=2", "1", want[7]), "|") {
		t.Fatalf("row %q; want %q", row, want)
	}
}
