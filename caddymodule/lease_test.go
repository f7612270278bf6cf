package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
)

// redis_lease in the meter global option, and its refusals.
func TestCaddyfileRedisLease(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"redis_lease", `{"redis":"redis://x","redis_lease":{}}`},
		{"redis_lease 5", `{"redis":"redis://x","redis_lease":{"min_rate":5}}`},
		{"redis_lease off", `{"redis":"redis://x","redis_lease":{"off":true}}`},
	} {
		m, err := adapt(t, "{\n\tmeter {\n\t\tredis redis://x\n\t\t"+tt.line+"\n\t}\n}\n:80 {\n\trespond ok\n}")
		if err != nil {
			t.Fatalf("%s: %v", tt.line, err)
		}
		app, _ := json.Marshal(m["apps"].(map[string]any)["meter"])
		if string(app) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.line, app, tt.want)
		}
	}
	for _, tt := range []struct{ line, want string }{
		{"redis_lease fast", `redis_lease "fast" is neither off nor a rate of at least 1 request per second, at Caddyfile:4`},
		{"redis_lease 0", `redis_lease "0" is neither off nor a rate`},
		{"redis_lease 5 6", "wrong argument count"},
	} {
		_, err := adapt(t, "{\n\tmeter {\n\t\tredis redis://x\n\t\t"+tt.line+"\n\t}\n}\n:80 {\n\trespond ok\n}")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.line, err, tt.want)
		}
	}
	// Leases are a Redis store's: on the embedded one, refused at load.
	a := &App{RedisLease: &RedisLease{}}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "redis_lease needs a Redis store") {
		t.Errorf("redis_lease without Redis: %v", err)
	}
	a.RedisLease.Off = true
	if err := a.Validate(); err != nil {
		t.Errorf("redis_lease off without Redis: %v", err)
	}
}
