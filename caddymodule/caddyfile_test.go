package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func adapt(t *testing.T, src string) (map[string]any, error) {
	t.Helper()
	cfg, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatal(err)
	}
	return m, nil
}

// find returns the first handler object with "handler": name.
func find(v any, name string) map[string]any {
	switch x := v.(type) {
	case map[string]any:
		if x["handler"] == name {
			return x
		}
		for _, c := range x {
			if f := find(c, name); f != nil {
				return f
			}
		}
	case []any:
		for _, c := range x {
			if f := find(c, name); f != nil {
				return f
			}
		}
	}
	return nil
}

func TestCaddyfileAdapt(t *testing.T) {
	m, err := adapt(t, `{
	meter {
		redis redis://127.0.0.1:6379/2
		key_cache_ttl 3s
		store_timeout 500ms
		redis_batch 8
	}
}
:8080 {
	reverse_proxy localhost:9000
	meter {
		per_page 0.5
		route convert
		key_header X-API-Key
		max_body 10MB
		memory_threshold 256KiB
		temp_dir /var/tmp
		max_files 5
		max_pages 2000
		count_timeout 3s
		reservation_ttl 2m
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	app, _ := json.Marshal(m["apps"].(map[string]any)["meter"])
	if want := `{"key_cache_ttl":3000000000,"redis":"redis://127.0.0.1:6379/2","redis_batch":8,"store_timeout":500000000}`; string(app) != want {
		t.Errorf("meter app:\n got %s\nwant %s", app, want)
	}
	h, _ := json.Marshal(find(m, "meter"))
	want := `{"count_timeout":3000000000,"handler":"meter","key_header":"X-API-Key","max_body":10000000,"max_files":5,"max_pages":2000,"memory_threshold":262144,"reservation_ttl":120000000000,"route":"convert","rules":[{"per_page":0.5}],"temp_dir":"/var/tmp"}`
	if string(h) != want {
		t.Errorf("meter handler:\n got %s\nwant %s", h, want)
	}
	// The directive is ordered before reverse_proxy without an order line.
	routes, _ := json.Marshal(m)
	if strings.Index(string(routes), `"handler":"meter"`) > strings.Index(string(routes), `"handler":"reverse_proxy"`) {
		t.Error("meter is not ordered before reverse_proxy")
	}
}

func TestCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown subdirective", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\tper_pgae 2\n\t}\n}", `unknown subdirective "per_pgae", at Caddyfile:4`},
		{"repeated subdirective", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\tper_page 2\n\t}\n}", "per_page given more than once, at Caddyfile:4"},
		{"no rule", ":80 {\n\tmeter {\n\t\troute x\n\t}\n}", "no pricing rule"},
		{"bad credits", ":80 {\n\tmeter {\n\t\tper_page one\n\t}\n}", `per_page: expected a non-negative number of credits (up to 3 decimals), got "one", at Caddyfile:3`},
		{"negative credits", ":80 {\n\tmeter {\n\t\tper_page -1\n\t}\n}", "non-negative"},
		{"too many decimals", ":80 {\n\tmeter {\n\t\tper_page 0.0001\n\t}\n}", "up to 3 decimals"},
		{"bad size", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\tmax_body lots\n\t}\n}", `max_body: expected a size such as 100MB or 512KiB, got "lots", at Caddyfile:4`},
		{"bad duration", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\treservation_ttl soon\n\t}\n}", "reservation_ttl: expected a positive duration"},
		{"extra argument", ":80 {\n\tmeter {\n\t\tper_page 1 2\n\t}\n}", `per_page takes one value, got extra "2"`},
		{"missing value", ":80 {\n\tmeter {\n\t\tper_page\n\t}\n}", "per_page needs a value"},
		{"bad max_files", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\tmax_files 0\n\t}\n}", "max_files: expected a positive integer"},
		{"bad max_pages", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\tmax_pages 1e6\n\t}\n}", "max_pages: expected a positive integer"},
		{"unknown global option", "{\n\tmeter {\n\t\tredis redis://x\n\t\tredsi y\n\t}\n}\n:80 {\n\trespond ok\n}", `unknown option "redsi"`},
		{"bad redis_batch", "{\n\tmeter {\n\t\tredis redis://x\n\t\tredis_batch 0\n\t}\n}\n:80 {\n\trespond ok\n}", `redis_batch "0" is not a number from 1 to 256, at Caddyfile:4`},
		{"bad test mode", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\ttest live\n\t}\n}", `test: expected simulate or forward, got "live", at Caddyfile:4`},
		{"bad test_limit", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\ttest_limit 10/hour\n\t}\n}", `test_limit: expected a positive number of requests per day such as 100/day, got "10/hour", at Caddyfile:4`},
		{"key_header X-Meter-*", ":80 {\n\tmeter {\n\t\tper_page 1\n\t\tkey_header X-Meter-Key\n\t}\n}", `X-Meter-* request headers are the gateway's own, at Caddyfile:4`},
		{"global argument", "{\n\tmeter redis://x\n}\n:80 {\n\trespond ok\n}", "wrong argument count"},
		// An unset variable without a default is no silent embedded store.
		{"redis from an unset variable", "{\n\tmeter {\n\t\tredis {$CREDITGATE_TEST_UNSET}\n\t}\n}\n:80 {\n\trespond ok\n}", "redis needs a value, at Caddyfile:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// `redis {$VAR:off}`: Redis when the variable is set, else the embedded
// store (the examples in docs/examples run either way).
func TestCaddyfileRedisOff(t *testing.T) {
	src := "{\n\tmeter {\n\t\tredis {$CREDITGATE_TEST_REDIS:off}\n\t}\n}\n:80 {\n\trespond ok\n}"
	for _, tt := range []struct{ env, want string }{
		{"", `{}`},
		{"redis://127.0.0.1:6379/3", `{"redis":"redis://127.0.0.1:6379/3"}`},
	} {
		if tt.env != "" {
			t.Setenv("CREDITGATE_TEST_REDIS", tt.env)
		}
		m, err := adapt(t, src)
		if err != nil {
			t.Fatal(err)
		}
		if app, _ := json.Marshal(m["apps"].(map[string]any)["meter"]); string(app) != tt.want {
			t.Errorf("CREDITGATE_TEST_REDIS=%q: meter app %s, want %s", tt.env, app, tt.want)
		}
	}
}

func TestCaddyfileRedisForms(t *testing.T) {
	t.Setenv("PW", "s3cret")
	m, err := adapt(t, "{\n\tmeter {\n\t\tredis_sentinel mymaster 10.0.0.1:26379 10.0.0.2:26379\n\t\tredis_password {$PW}\n\t\tredis_tls\n\t}\n}\n:80 {\n\trespond ok\n}")
	if err != nil {
		t.Fatal(err)
	}
	app, _ := json.Marshal(m["apps"].(map[string]any)["meter"])
	if want := `{"redis_password":"s3cret","redis_sentinel":["mymaster","10.0.0.1:26379","10.0.0.2:26379"],"redis_tls":true}`; string(app) != want {
		t.Errorf("got %s\nwant %s", app, want)
	}
	for _, bad := range []*App{
		{Redis: "redis://x", RedisCluster: []string{"a:1"}},
		{RedisSentinel: []string{"mymaster"}},
		{Redis: "redis://x", RedisBatch: -1},
		{Redis: "redis://x", RedisBatch: 257},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// meter runs before every directive of its block that can answer, without
// an order line or a route block: each Caddyfile puts the other directive
// first, and the adapted routes must call meter first.
func TestCaddyfileMeterRunsFirst(t *testing.T) {
	for _, tt := range []struct{ name, directive string }{
		{"respond", `respond "answered"`},
		{"file_server", "file_server"},
		{"php_fastcgi", "php_fastcgi localhost:9001"},
		{"handle", "handle /x {\n\t\trespond \"answered\"\n\t}"},
		{"route", "route {\n\t\trespond \"answered\"\n\t}"},
		{"reverse_proxy", "reverse_proxy localhost:9000"},
		{"error", `error "answered" 500`},
		{"templates", "templates"},
		{"meter_job", "meter_job status"},
		{"meter_api", "meter_api"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := adapt(t, ":8080 {\n\t"+tt.directive+"\n\tmeter {\n\t\tper_page 1\n\t}\n}")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(m)
			js := string(raw)
			at := strings.Index(js, `"handler":"meter"`)
			if at < 0 {
				t.Fatalf("no meter handler in %s", js)
			}
			for _, other := range []string{`"answered"`, `"handler":"static_response"`, `"handler":"file_server"`,
				`"handler":"reverse_proxy"`, `"handler":"error"`, `"handler":"templates"`, `"handler":"meter_job"`,
				`"handler":"meter_api"`, `"handler":"rewrite"`} {
				if i := strings.Index(js, other); i >= 0 && i < at {
					t.Fatalf("%s comes before meter: %s", other, js)
				}
			}
		})
	}
}
