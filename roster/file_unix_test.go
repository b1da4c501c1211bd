//go:build unix

package roster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReadFile_notRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.csv")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	link := filepath.Join(dir, "zero.csv")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		// No writer ever opens the FIFO: a blocking open would hang here.
		{fifo, "expected a regular file (a CSV saved to disk), found a named pipe (FIFO)"},
		{"/dev/zero", "found a character device"},
		{link, "found a character device"},
		{dir, "found a directory"},
		{sock, "found a socket"},
		{filepath.Join(dir, "missing.csv"), "expected a roster file, found no such file"},
	}
	for _, tt := range tests {
		readFileErr(t, context.Background(), tt.path, tt.want)
	}
}
