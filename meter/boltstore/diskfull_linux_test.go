package boltstore

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/creditgate/creditgate/meter"
)

// A full disk, simulated for real: a child process caps its file size
// (RLIMIT_FSIZE, with SIGXFSZ ignored, so a write past it fails with
// EFBIG as on a full disk) and grants credits until the file cannot grow.
// Every failed grant must be an internal error, and the file, reopened
// without the cap, must hold exactly the grants that succeeded.
func TestDiskFull(t *testing.T) {
	if path := os.Getenv("BOLTSTORE_DISKFULL"); path != "" {
		diskFullChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "meter.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFull$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BOLTSTORE_DISKFULL="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var ok, failed int
	if i := strings.Index(string(out), "diskfull:"); i < 0 {
		t.Fatalf("child said:\n%s", out)
	} else if _, err := fmt.Sscanf(string(out[i:]), "diskfull: %d ok %d failed", &ok, &failed); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	if failed == 0 {
		t.Fatalf("no write failed (%d succeeded): the cap did not bite", ok)
	}
	t.Logf("%d grants succeeded, %d failed", ok, failed)

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the file is damaged: %v", err)
	}
	a, err := s.Account(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: "a", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var sum meter.Credits
	for _, e := range es {
		sum += e.Amount
	}
	if a.Balance != c(float64(ok)) || len(es) != ok || sum != a.Balance {
		t.Errorf("balance %s, %d entries summing to %s; want %d of each", a.Balance, len(es), sum, ok)
	}
	// With room again, the store writes on.
	if _, err := s.Grant(ctx, meter.Grant{AccountID: "a", Amount: c(1), Type: meter.EntryPurchase}); err != nil {
		t.Error(err)
	}
}

func diskFullChild(t *testing.T, path string) {
	signal.Ignore(syscall.SIGXFSZ)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateAccount(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = uint64(fi.Size()) + 64<<10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot cap the file size: %v", err)
	}
	desc := strings.Repeat("x", 1000) // fills pages fast
	ok, failed := 0, 0
	for i := 0; i < 900 && failed < 10; i++ {
		_, err := s.Grant(ctx, meter.Grant{AccountID: "a", Amount: c(1), Type: meter.EntryPurchase, Description: desc})
		switch {
		case err == nil:
			ok++
		case meter.ErrorCode(err) == meter.ECodeMeteringUnavailable:
			failed++
		default:
			t.Fatalf("grant %d: %v; want metering_unavailable", i, err)
		}
	}
	fmt.Printf("diskfull: %d ok %d failed\n", ok, failed)
}
