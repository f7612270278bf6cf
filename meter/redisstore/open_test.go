package redisstore

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

func TestOpen(t *testing.T) {
	s, err := Open(ctx, srv.URL(), Options{Prefix: "opened"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := newID("open")
	if _, err := s.CreateAccount(ctx, id, c(1)); err != nil {
		t.Fatal(err)
	}
	cl := srv.Client()
	defer cl.Close()
	if n, _ := cl.Exists(ctx, "opened:{"+id+"}:account").Result(); n != 1 {
		t.Error("Prefix not used")
	}

	_, err = Open(ctx, srv.URL(), Options{Prefix: "a{b}"})
	if err == nil {
		t.Error("a prefix with braces was accepted")
	}
}

func TestOpenErrorsAreClearAndSecret(t *testing.T) {
	tests := []struct {
		name, url string
		want      []string
	}{
		{"not a redis URL", "http://localhost:6379", []string{"invalid redis URL", "http"}},
		{"unparsable", "redis://user:hunter2@[::1", []string{"invalid redis URL"}},
		{"unreachable", "redis://user:hunter2@127.0.0.1:1/0", []string{"redis at 127.0.0.1:1", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := Open(ctx, tt.url, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q leaks the password", msg)
			}
		})
	}
}

func TestServerGoneIsUnavailable(t *testing.T) {
	own := redistest.New(t)
	s, err := Open(ctx, own.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount(ctx, "gone", c(5)); err != nil {
		t.Fatal(err)
	}
	own.Stop()

	start := time.Now()
	_, err = s.Account(ctx, "gone")
	wantCode(t, err, meter.ECodeMeteringUnavailable)
	_, err = s.LookupKey(ctx, meter.HashKey("k"))
	wantCode(t, err, meter.ECodeMeteringUnavailable)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	s.Close()
	_, err = s.Account(ctx, "gone")
	if !errors.Is(err, redis.ErrClosed) || meter.ErrorCode(err) != meter.ECodeMeteringUnavailable {
		t.Errorf("after Close: %v", err)
	}
}

// The function library is loaded when a call misses it, also after the
// server lost it (FUNCTION FLUSH, or a restart without persistence).
func TestFunctionsFlushed(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(3))
	cl := srv.Client()
	defer cl.Close()
	if err := cl.FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, s, id, "r1", c(1))
	expect(t, s, id, c(3), c(1), entry{"purchase", c(3), c(3), false})
	libs, err := cl.FunctionList(ctx, redis.FunctionListQuery{LibraryNamePattern: "creditgate_*"}).Result()
	if err != nil || len(libs) != 1 {
		t.Fatalf("libraries %v, %v", libs, err)
	}
}

// A script error (a bug, not an outage) is internal, not unavailable.
func TestScriptErrorIsInternal(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(3))
	cl := srv.Client()
	defer cl.Close()
	if err := cl.HSet(ctx, s.accountKeys(id)[2], "r1", "not json").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := commit(s, id, "r1", c(1))
	wantCode(t, err, meter.ECodeInternal)
}

// A <group>_lib.lua is the helpers of the <group>_*.lua scripts, after
// lib.lua's, and no function itself.
func TestLibraryGroups(t *testing.T) {
	fsys := fstest.MapFS{
		"lib.lua":   {Data: []byte("local function base() return 'base:' .. KEYS[1] end\n")},
		"plain.lua": {Data: []byte("return base()")},
		"x_lib.lua": {Data: []byte("local function xh() return 'x+' .. base() end\n")},
		"x_b.lua":   {Data: []byte("return xh() .. ARGV[1]")},
	}
	version, code := buildLibrary(fsys)
	cl := srv.Client()
	defer cl.Close()
	if err := cl.FunctionLoad(ctx, code).Err(); err != nil {
		t.Fatalf("%v\n%s", err, code)
	}
	defer cl.FunctionDelete(ctx, "creditgate_"+version)
	for fn, want := range map[string]string{"plain": "base:k", "x_b": "x+base:k!"} {
		if got, err := cl.FCall(ctx, "cg"+version+"_"+fn, []string{"k"}, "!").Text(); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", fn, got, err, want)
		}
	}
	if err := cl.FCall(ctx, "cg"+version+"_x_lib", []string{"k"}).Err(); err == nil {
		t.Error("x_lib is a function")
	}
}
