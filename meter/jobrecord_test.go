package meter_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// One record type for both stores: the shape redisstore's job_json
// writes, boltstore's older shape (still on disk in existing files), and
// a record written by this type all read the same.
func TestJobRecordFormats(t *testing.T) {
	want := meter.JobRecord{UpstreamID: "up-1", Route: "/jobs", Status: meter.JobRunning,
		Rates: map[string]int64{"page": 1000, "image": 2500}, EstPages: 4, Estimate: 4000, Debited: 3500,
		Pages: map[string]int{"page": 1, "image": 1}, Reported: map[string]int{"page": 2, "image": 1},
		Failed: 1, Final: "", CreatedMS: 1700000000000, UpdatedMS: 1700000001000, ExpiresMS: 1700003600000,
		TTLMS: 3600000, RetainMS: 86400000}
	for _, tc := range []struct {
		name, raw string
		want      meter.JobRecord
	}{
		{"redis (job_json)", `{"id":"j1","upstream_id":"up-1","route":"/jobs","status":"running",` +
			`"rates":{"page":"1000","image":"2500"},"est_pages":"4","estimate":"4000","debited":"3500",` +
			`"pages":{"page":"1","image":"1"},"reported":{"page":"2","image":"1"},"failed":"1","final":"",` +
			`"created":"1700000000000","updated":"1700000001000","expires":"1700003600000","finished":"0",` +
			`"ttl":"3600000","retain":"86400000"}`, withID(want, "j1")},
		{"bolt, older shape", `{"up":"up-1","route":"/jobs","s":"running","rates":{"page":1000,"image":2500},` +
			`"est_pages":4,"est":4000,"debited":3500,"pages":{"page":1,"image":1},"reported":{"page":2,"image":1},` +
			`"failed":1,"created_ms":1700000000000,"updated_ms":1700000001000,"expires_ms":1700003600000,` +
			`"ttl_ms":3600000,"retain_ms":86400000,"due":1700003600000}`, withDue(want, 1700003600000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got meter.JobRecord
			if err := json.Unmarshal([]byte(tc.raw), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("read\n%+v\nwant\n%+v", got, tc.want)
			}
			raw, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var again meter.JobRecord
			if err := json.Unmarshal(raw, &again); err != nil || !reflect.DeepEqual(again, tc.want) {
				t.Fatalf("written %s, read back %+v, %v", raw, again, err)
			}
			j := got.Job("acct", "j1")
			if j.ID != "j1" || j.AccountID != "acct" || j.Estimate != 4000 || j.Rates["image"] != 2500 ||
				j.Reported["page"] != 2 || !j.FinishedAt.IsZero() || j.TTL.Hours() != 1 {
				t.Fatalf("job %+v", j)
			}
		})
	}
}

func withID(r meter.JobRecord, id string) meter.JobRecord { r.ID = id; return r }
func withDue(r meter.JobRecord, ms int64) meter.JobRecord { r.DueMS = ms; return r }

// A number that is not an integer is refused, not read as 0.
func TestJobRecordBadNumber(t *testing.T) {
	var r meter.JobRecord
	if err := json.Unmarshal([]byte(`{"status":"running","debited":"1e3"}`), &r); err == nil {
		t.Fatalf("read %+v", r)
	}
}
