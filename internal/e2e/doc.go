// Package e2e holds multi-process tests: several creditgate binaries
// sharing a real redis-server, a test upstream that fails and hangs, and
// faults injected into both (SIGKILL, a Redis crash and restart with AOF,
// a stalled Redis). The tests build the binary once and start every
// process themselves on free loopback ports.
package e2e
