// Package freeport hands out free loopback ports for tests, never the same
// one twice in a process. The kernel may give a just-closed port again;
// two servers of one test on one port would not fail to start where they
// set SO_REUSEPORT (Caddy does): connections would be spread between them,
// and a request meant for a site would now and then reach the admin API.
package freeport

import (
	"fmt"
	"net"
	"sync"
)

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// Port returns a loopback TCP port that was free a moment ago and that
// Port has not returned before in this process.
func Port() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !used[port] {
			used[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("freeport: no unused port in 100 tries")
}

// Addr is Port as "127.0.0.1:<port>".
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}
