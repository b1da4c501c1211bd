// Package ports finds free TCP ports on 127.0.0.1 for the processes the
// end-to-end tests and the bench start (emulator, Temporal server, worker),
// and waits for one to be given back. One copy for both, so they pick ports
// by the same rules.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// Free asks the kernel for a TCP port on 127.0.0.1 that was free a moment ago.
func Free() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeLow returns a free port on 127.0.0.1 below the kernel's ephemeral
// range, with room above it for the server's internal ports: the Temporal
// server keeps its ports in PostgreSQL as a smallint (at most 32767).
func FreeLow() (int, error) {
	base := 20000 + rand.IntN(10000)
	for p := base; p < base+2000; p += 10 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d", base, base+2000)
}

// WaitFree waits until nothing listens on port any more, or timeout passes.
func WaitFree(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d still in use after %s: %w", port, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
