package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCaddyfilePlans(t *testing.T) {
	m, err := adapt(t, `{
	meter {
		plan builder {
			monthly_quota 10
			quota_unit "AI scans"
		}
		plan studio {
			monthly_quota 50.5
			overage_cap 5
			rate drawing 8
			rate document 2
			page_limit 30
			low_balance_threshold 3
			retention_days 7
			enabled true
		}
		default_plan builder
	}
}
:8080 {
	respond "ok"
}
`)
	if err != nil {
		t.Fatal(err)
	}
	app, _ := json.Marshal(m["apps"].(map[string]any)["meter"])
	want := `{"default_plan":"builder","plans":[{"monthly_quota":10,"name":"builder","quota_unit":"AI scans"},` +
		`{"enabled":true,"low_balance_threshold":3,"monthly_quota":50.5,"name":"studio","overage_cap":5,"page_limit":30,"rates":{"document":2,"drawing":8},"retention_days":7}]}`
	if string(app) != want {
		t.Errorf("meter app:\n got %s\nwant %s", app, want)
	}

	for name, tt := range map[string]struct{ body, want string }{
		"unknown setting": {`plan a {
			free 1
		}`, `unknown setting "free"`},
		"repeated setting": {`plan a {
			monthly_quota 1
			monthly_quota 2
		}`, `monthly_quota given more than once`},
		"repeated plan": {`plan a
		plan a`, `plan "a" declared twice`},
		"bad name":         {`plan Big`, `plan name "Big"`},
		"negative":         {"plan a {\n\t\t\toverage_cap -1\n\t\t}", `expected a non-negative amount`},
		"rate args":        {"plan a {\n\t\t\trate drawing\n\t\t}", `rate takes a name and an amount`},
		"enabled":          {"plan a {\n\t\t\tenabled maybe\n\t\t}", `expected true or false`},
		"bad default name": {`default_plan "No Such"`, `plan name "No Such"`},
		"two defaults": {`default_plan a
		default_plan b`, `default_plan given more than once`},
	} {
		_, err := adapt(t, "{\n\tmeter {\n\t\t"+tt.body+"\n\t}\n}\n:8080 {\n\trespond ok\n}\n")
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%s: %v, want %q with its line", name, err, tt.want)
		}
	}
}
