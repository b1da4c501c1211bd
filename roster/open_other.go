//go:build !unix

package roster

import "os"

// openNonBlocking opens path for reading; ReadFile's Stat before it keeps
// pipes and devices from being opened.
func openNonBlocking(path string) (*os.File, error) {
	return os.Open(path)
}
