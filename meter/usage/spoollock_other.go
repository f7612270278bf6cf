//go:build !unix

package usage

import "os"

// Without flock, spool files are not locked and never judged stale: an
// open file cannot be removed there anyway.
func lockFile(*os.File) error { return nil }

func tryLockFile(*os.File) (bool, error) { return false, nil }
