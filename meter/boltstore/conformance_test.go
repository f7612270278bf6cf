package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/storetest"
)

// Each group of the suite gets a database file of its own.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) meter.Store { return openTemp(t, Options{}) })
}

// openTemp opens a store on a new file, closed at the end of the test.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "meter.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
