package roster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxFileSize is the largest roster file ReadFile reads: 64 MiB, about
// half a million rows of a full Entra bulk-create template.
const MaxFileSize = 64 << 20

// readBlock is how much ReadFile reads between checks of its context.
const readBlock = 1 << 20

// FileError is a roster file that cannot be read as one: not a regular
// file, too large, unreadable, or a read that was interrupted. Its message
// names the file.
type FileError struct {
	Path string
	Msg  string // what was expected and what was found
	Err  error  // the underlying error, if any
}

func (e *FileError) Error() string { return e.Path + ": " + e.Msg }

func (e *FileError) Unwrap() error { return e.Err }

// ReadFile reads a roster file for Parse. The file must be a regular file
// (not a pipe, device, socket or directory: those are refused without
// reading from them, so a FIFO never blocks and /dev/zero is never read) of
// at most MaxFileSize bytes. The read goes through that limit, so a file
// that grows while it is read is refused rather than read without end, and
// it stops with ctx (the starter's SIGINT/SIGTERM) between blocks of 1 MiB.
// Every error is a *FileError.
func ReadFile(ctx context.Context, path string) ([]byte, error) {
	fail := func(err error, format string, a ...any) error {
		return &FileError{Path: path, Msg: fmt.Sprintf(format, a...), Err: err}
	}
	// Stat first: it names a socket (which open cannot) and keeps a FIFO
	// from being opened at all in the usual case.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fail(err, "expected a roster file, %s", describeOpenError(err))
	}
	if msg := notRegular(st); msg != "" {
		return nil, fail(nil, "%s", msg)
	}
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, fail(err, "expected a readable roster file, %s", describeOpenError(err))
	}
	defer f.Close()
	// The file may have been replaced between Stat and open: what counts is
	// what was opened.
	if st, err = f.Stat(); err != nil {
		return nil, fail(err, "expected a readable roster file, found %v", err)
	}
	if msg := notRegular(st); msg != "" {
		return nil, fail(nil, "%s", msg)
	}
	tooLarge := func(size string) error {
		return fail(nil, "expected a roster of at most %d MiB, found %s; split it into several files", MaxFileSize>>20, size)
	}
	if st.Size() > MaxFileSize {
		return nil, tooLarge(fmt.Sprintf("%d bytes", st.Size()))
	}

	data, err := readBounded(ctx, f, st.Size())
	switch {
	case errors.Is(err, errTooLarge):
		return nil, tooLarge("more: it grew while it was read")
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, fail(err, "reading interrupted (%v); nothing was done", context.Cause(ctx))
	case err != nil:
		return nil, fail(err, "expected a readable roster file, found a read error: %v", err)
	}
	return data, nil
}

var errTooLarge = errors.New("more than MaxFileSize bytes")

// readBounded reads r to its end in blocks, checking ctx before each, and
// stops with errTooLarge past MaxFileSize bytes. hint is the expected size.
func readBounded(ctx context.Context, r io.Reader, hint int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(min(max(hint, 0), MaxFileSize)) + 1)
	r = io.LimitReader(r, MaxFileSize+1)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		_, err := io.CopyN(&buf, r, readBlock)
		if buf.Len() > MaxFileSize {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// notRegular says what st is if it is not a regular file, or "".
func notRegular(st fs.FileInfo) string {
	m := st.Mode()
	var what string
	switch {
	case m.IsRegular():
		return ""
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	default:
		what = "a special file (" + m.Type().String() + ")"
	}
	return "expected a regular file (a CSV saved to disk), found " + what + "; save the roster as a file and pass its path"
}

func describeOpenError(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "found no such file"
	case errors.Is(err, fs.ErrPermission):
		return "found one this user may not read"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "found " + pe.Err.Error()
	}
	return "found " + err.Error()
}
