package caddymodule

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/usage"
)

// A gateway that starts removes the spool files a killed gateway left in
// its temp_dir (unlocked: their owner is dead), and keeps other files; its
// own spool files are gone when their request ends.
func TestStaleSpoolFilesRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, usage.SpoolPrefix+"123456")
	other := filepath.Join(dir, "keep-me")
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, make([]byte, 1000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	u := newUpstream(t)
	g := startGateway(t, globalBlock+`
http://{SITE} {
	meter {
		per_page 1
		memory_threshold 1KB
		temp_dir `+dir+`
	}
	reverse_proxy `+strings.TrimPrefix(u.URL, "http://")+`
}
`)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the dead process's spool file is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("a file that is not a spool file was removed: %v", err)
	}
	key := g.newAccount(uniqueID("spool"), 10, meter.ModeLive)
	resp, _ := g.post("/", key, "application/pdf", pdftest.Pages(3))
	assertMoney(t, resp, "3", "7")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp_dir after the request: %v, want only keep-me", entries)
	}
}

// A request that declares a body larger than max_body and sends none of
// it gets 413 at once, from the declared length, and is not forwarded.
func TestDeclaredOversizedBodyRefusedAtOnce(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, globalBlock+`
http://{SITE} {
	handle /pages {
		meter {
			per_page 1
			max_body 1MB
		}
		reverse_proxy `+strings.TrimPrefix(u.URL, "http://")+`
	}
	handle /call {
		meter {
			per_call 1
			max_body 1MB
		}
		reverse_proxy `+strings.TrimPrefix(u.URL, "http://")+`
	}
}
`)
	id := uniqueID("declared")
	key := g.newAccount(id, 10, meter.ModeLive)
	for _, path := range []string{"/pages", "/call"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Headers only: 10 GB declared, not a byte of it sent.
			_, err = conn.Write([]byte("POST " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(g.URL, "http://") + "\r\nAuthorization: Bearer " + key +
				"\r\nContent-Type: application/pdf\r\nContent-Length: 10000000000\r\n\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			// A deadline only so that a hang fails instead of blocking.
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer while the body never arrives: %v", err)
			}
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if code, _ := errorCode(t, raw); resp.StatusCode != 413 || code != meter.ECodeBodyTooLarge {
				t.Fatalf("%d %s, want 413 body_too_large", resp.StatusCode, raw)
			}
			assertMoney(t, resp, "0", "10")
		})
	}
	if n := u.requests.Load(); n != 0 {
		t.Fatalf("the upstream got %d requests", n)
	}
	g.assertBalance(id, 10, 0)
}

// The admin API (which mints credits) on a unix socket that only its
// owner may open, as deploy/ sets it up: the socket gets mode 0600, and
// the CLI's client (caddycmd.AdminAPIRequest, behind `creditgate meter
// --address unix/...`) reaches the meter endpoints through it.
func TestAdminAPIOnUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	src := strings.Replace(globalBlock, "admin {ADMIN}", "admin unix/"+sock+"|0600", 1) + minimalSite
	startGateway(t, src)
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket mode %v, want a socket with 0600", st.Mode())
	}
	addr := "unix/" + sock + "|0600"
	resp, err := caddycmd.AdminAPIRequest(addr, "POST", "/meter/accounts", nil, strings.NewReader(`{"id":"sock_acme","credits":5}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create account over the socket: HTTP %d", resp.StatusCode)
	}
	resp, err = caddycmd.AdminAPIRequest(addr, "GET", "/meter/accounts/sock_acme", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var a meter.Account
	err = json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	if err != nil || a.Balance != credits(5) {
		t.Fatalf("account over the socket: %+v, %v", a, err)
	}
}
