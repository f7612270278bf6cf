// Package redistest starts real redis-server processes on free loopback
// ports for tests. It never talks to a server it did not start, so tests
// may do anything to it, including FLUSHALL.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/freeport"
)

// Server is one redis-server process owned by a test.
type Server struct {
	Addr   string
	Dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	args   []string
}

// Start launches redis-server on a free loopback port with its data in a
// fresh temporary directory. Extra arguments are passed as config
// (e.g. "--appendonly", "yes"). The server is stopped by Stop.
func Start(extra ...string) (*Server, error) {
	return launch("", nil, extra...)
}

// launch starts redis-server in a fresh directory. A non-empty conf is
// written there as its config file, which comes first on the command line,
// followed by pre (e.g. "--sentinel").
func launch(conf string, pre []string, extra ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found in PATH: run `make test`, which installs it (Debian package redis-server)")
	}
	dir, err := os.MkdirTemp("", "creditgate-redis-")
	if err != nil {
		return nil, err
	}
	if conf != "" {
		path := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		pre = append([]string{path}, pre...)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir}
		s.args = append(append(append([]string(nil), pre...),
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--dir", dir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
		), extra...)
		if lastErr = s.start(bin); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func (s *Server) start(bin string) error {
	s.cmd = exec.Command(bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	s.exited = exited
	go func() { s.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start: %s", s.logTail())
		default:
		}
		c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer within 10s: %s", s.Addr, s.logTail())
}

// Restart stops the server (SIGINT, letting it persist) and starts it
// again on the same port and directory.
func (s *Server) Restart() error {
	s.Kill()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return err
	}
	return s.start(bin)
}

// Crash kills the process with SIGKILL, as the OOM killer would, keeping
// its data directory for Restart. (What the kernel had buffered survives:
// this is not a power cut.)
func (s *Server) Crash() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// Pause stops the process with SIGSTOP: it keeps its connections open and
// answers nothing, like a server stalled on a slow disk, until Resume.
func (s *Server) Pause() error {
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	// The signal is delivered asynchronously: on a loaded machine the
	// process may still answer for a moment. Return once the kernel has it
	// stopped (state T in /proc), so that a test's calls after Pause meet a
	// stalled server (TestStalledAndDeadServerLeakNothing once saw a
	// batch of 40 calls answered after Pause).
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return nil // no /proc: as before, the signal alone
		}
		// pid (comm) state ...: comm may hold spaces, the state follows its ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return nil
		}
	}
	return fmt.Errorf("redistest: redis-server %d not stopped 2s after SIGSTOP", s.cmd.Process.Pid)
}

// Resume continues a paused process.
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Kill stops the process, keeping its data directory so that Restart can
// bring it back with its data (with AOF on).
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Process.Signal(syscall.SIGCONT) // if paused
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
}

// Stop ends the server and removes its directory.
func (s *Server) Stop() {
	s.Kill()
	os.RemoveAll(s.Dir)
}

// URL returns a redis:// URL for the server.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a new client of the server.
func (s *Server) Client() *redis.Client { return redis.NewClient(&redis.Options{Addr: s.Addr}) }

// CPU is the CPU time the server has used so far, user and system (INFO
// cpu): what a benchmark costs Redis, steadier than wall time on a shared
// machine.
func CPU(ctx context.Context, c redis.UniversalClient) (time.Duration, error) {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("redistest: INFO cpu: %s: %w", line, err)
			}
			sum += f
		}
	}
	return time.Duration(sum * float64(time.Second)), nil
}

func (s *Server) logTail() string {
	matches, _ := filepath.Glob(filepath.Join(s.Dir, "redis-*.log"))
	var lines []string
	for _, m := range matches {
		f, err := os.Open(m)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// New starts a server for one test and stops it when the test ends.
func New(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s, err := Start(extra...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func freePort() (int, error) { return freeport.Port() }
