package usage

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSpoolHolder is not a test: run by TestRemoveStaleSpools as another
// process, it spools a body into $SPOOL_DIR, prints the file's name and
// waits to be killed.
func TestSpoolHolder(t *testing.T) {
	dir := os.Getenv("SPOOL_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	b, err := Spool(bytes.NewReader(make([]byte, 4096)), Options{MaxBody: 1 << 20, MemoryThreshold: 1024, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString(b.file.Name() + "\n")
	time.Sleep(time.Minute)
}

// Spool files of a process killed with SIGKILL stay behind; at start, a
// gateway removes those no live process holds, and keeps the others: a
// live process's (another gateway sharing temp_dir), its own, and files
// that are not spool files.
func TestRemoveStaleSpools(t *testing.T) {
	dir := t.TempDir()
	holder := exec.Command(os.Args[0], "-test.run=^TestSpoolHolder$")
	holder.Env = append(os.Environ(), "SPOOL_DIR="+dir)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	theirs := strings.TrimSpace(line)
	if !strings.HasPrefix(filepath.Base(theirs), SpoolPrefix) {
		t.Fatalf("spool file %s lacks the prefix %s", theirs, SpoolPrefix)
	}
	mine, err := Spool(bytes.NewReader(make([]byte, 2048)), Options{MaxBody: 1 << 20, MemoryThreshold: 1024, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	other := filepath.Join(dir, "not-a-spool")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	if n, _, err := RemoveStaleSpools(dir); n != 0 || err != nil {
		t.Fatalf("with both holders alive: removed %d, %v", n, err)
	}
	if err := holder.Process.Kill(); err != nil { // SIGKILL: no cleanup
		t.Fatal(err)
	}
	_ = holder.Wait()
	if _, err := os.Stat(theirs); err != nil {
		t.Fatalf("the killed process's spool file is already gone: %v", err)
	}
	n, size, err := RemoveStaleSpools(dir)
	if n != 1 || size != 4096 || err != nil {
		t.Fatalf("after SIGKILL: removed %d files, %d bytes, %v; want 1 file of 4096 bytes", n, size, err)
	}
	for path, want := range map[string]bool{theirs: false, mine.file.Name(): true, other: true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", path, err == nil, want)
		}
	}
	name := mine.file.Name()
	if err := mine.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Fatalf("a closed body's file is still there: %v", err)
	}
}
