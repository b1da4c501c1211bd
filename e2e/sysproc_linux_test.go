package e2e

import "syscall"

// sysProcAttr makes the kernel kill a child when the test binary dies (a
// panic or `go test -timeout`), so no server outlives the tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
