package usage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SpoolPrefix starts the name of every spool file, so that files a dead
// process left behind can be told apart in a shared temp dir.
const SpoolPrefix = "creditgate-spool-"

// createSpoolFile creates a spool file in dir (the system's temp dir if
// ""), locked for as long as it is open: the lock is how RemoveStaleSpools
// knows its owner is alive, whatever PID namespace that owner runs in.
func createSpoolFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, SpoolPrefix+"*")
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		_ = os.Remove(f.Name())
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// RemoveStaleSpools removes the spool files in dir (the system's temp dir
// if "") that no live process holds: those of a gateway that was killed
// (SIGKILL, OOM) before it could remove them. Files of live gateways
// sharing the dir are locked and kept. It returns how many files and bytes
// it removed.
func RemoveStaleSpools(dir string) (files int, bytes int64, err error) {
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), SpoolPrefix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		n, removed, err := removeIfUnlocked(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		if removed {
			files++
			bytes += n
		}
	}
	return files, bytes, errors.Join(errs...)
}

// removeIfUnlocked removes path if no process holds its lock.
func removeIfUnlocked(path string) (int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	if held, err := tryLockFile(f); err != nil || !held {
		return 0, false, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	// Removed while we hold the lock: no live process can have it.
	if err := os.Remove(path); err != nil {
		return 0, false, err
	}
	return st.Size(), true, nil
}
