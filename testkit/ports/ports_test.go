package ports

import (
	"fmt"
	"net"
	"testing"
)

// TestFreeAndWaitFree: a port Free returns can be listened on; while it is,
// WaitFree gives up with an error; once closed, WaitFree returns nil.
func TestFreeAndWaitFree(t *testing.T) {
	for name, find := range map[string]func() (int, error){"Free": Free, "FreeLow": FreeLow} {
		p, err := find()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "FreeLow" && p > 32767-10 {
			t.Errorf("FreeLow = %d, want at most %d", p, 32767-10)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("%s = %d, cannot listen on it: %v", name, p, err)
		}
		if err := WaitFree(p, 0); err == nil {
			t.Errorf("WaitFree(%d) = nil while it is listened on, want an error", p)
		}
		l.Close()
		if err := WaitFree(p, 0); err != nil {
			t.Errorf("WaitFree(%d) after close: %v", p, err)
		}
	}
}
