package roster

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFileErr calls ReadFile and wants a *FileError naming path whose
// message contains want.
func readFileErr(t *testing.T, ctx context.Context, path, want string) *FileError {
	t.Helper()
	data, err := ReadFile(ctx, path)
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("ReadFile(%s) = %d bytes, %v; want a *FileError", path, len(data), err)
	}
	if !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadFile(%s) error = %q, want %q: ...%s...", path, err, path, want)
	}
	return fe
}

func TestReadFile_regular(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	want := "email\na@b.example\n"
	if err := os.WriteFile(path, []byte(want), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(context.Background(), path)
	if err != nil || string(got) != want {
		t.Fatalf("ReadFile = %q, %v; want %q", got, err, want)
	}
}

func TestReadFile_tooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: MaxFileSize+1 bytes that take no disk space.
	if _, err := f.WriteString("email,display_name\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	readFileErr(t, context.Background(), path, "expected a roster of at most 64 MiB, found 67108865 bytes; split it into several files")
}

// endless is a file that keeps growing (its bytes are whatever p held).
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

func TestReadBounded_growing(t *testing.T) {
	if _, err := readBounded(context.Background(), endless{}, 10); !errors.Is(err, errTooLarge) {
		t.Errorf("readBounded(endless) = %v, want errTooLarge", err)
	}
	data, err := readBounded(context.Background(), io.LimitReader(endless{}, MaxFileSize), 0)
	if err != nil || len(data) != MaxFileSize {
		t.Errorf("readBounded(MaxFileSize bytes) = %d bytes, %v; want all of them", len(data), err)
	}
}

// cancelAfter cancels its context once n bytes were read.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	c.n -= len(p)
	if c.n <= 0 {
		c.cancel()
	}
	return endless{}.Read(p)
}

func TestReadBounded_interrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{n: 3 * readBlock, cancel: cancel}
	_, err := readBounded(ctx, r, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("readBounded = %v, want context.Canceled", err)
	}
	if r.n < -readBlock {
		t.Errorf("read %d bytes past the cancel, want at most one block", -r.n)
	}
}

func TestReadFile_interrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	if err := os.WriteFile(path, []byte("email\na@b.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fe := readFileErr(t, ctx, path, "reading interrupted (context canceled); nothing was done")
	if !errors.Is(fe, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", fe)
	}
}
