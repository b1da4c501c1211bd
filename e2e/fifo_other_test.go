//go:build !unix

package e2e

import "os"

// mkfifo: without named pipes, a directory stands for a file that is not a
// regular one (the starter refuses both the same way).
func mkfifo(path string) error { return os.Mkdir(path, 0o700) }
