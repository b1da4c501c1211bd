package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness started and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set when done is closed
}

// procs tracks every process started, so that all of them are stopped on
// any exit path (normal end, error, Ctrl-C).
var procs struct {
	mu   sync.Mutex
	list []*proc
}

// startProc starts cmd in its own process group (so a terminal Ctrl-C
// reaches only the harness, which then stops its children in order). If
// lineFn is set, it is called for each stdout line (stdout is also copied to
// log); stderr always goes to log.
func startProc(name string, cmd *exec.Cmd, log io.Writer, lineFn func(string)) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = log
	var stdout io.ReadCloser
	if lineFn != nil {
		var err error
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	} else {
		cmd.Stdout = log
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	procs.mu.Lock()
	procs.list = append(procs.list, p)
	procs.mu.Unlock()
	var copied sync.WaitGroup
	if stdout != nil {
		copied.Add(1)
		go func() {
			defer copied.Done()
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64*1024), 1<<20)
			for sc.Scan() {
				fmt.Fprintln(log, sc.Text())
				lineFn(sc.Text())
			}
			_, _ = io.Copy(io.Discard, stdout)
		}()
	}
	go func() {
		copied.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process (by its pid only), waits up to grace,
// then SIGKILLs it, and always waits for it.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		fmt.Fprintf(os.Stderr, "bench: %s (pid %d) did not stop within %s: killing it\n", p.name, p.pid(), grace)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	procs.mu.Lock()
	for i, q := range procs.list {
		if q == p {
			procs.list = append(procs.list[:i], procs.list[i+1:]...)
			break
		}
	}
	procs.mu.Unlock()
}

// stopAll stops every process still running, newest first.
func stopAll() {
	procs.mu.Lock()
	list := append([]*proc(nil), procs.list...)
	procs.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(20 * time.Second)
	}
}

// waitFor polls check every 250 ms until it succeeds, p exits, or timeout.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s: %v", timeout, last)
}

// clockTicks is USER_HZ, 100 on every Linux this runs on (Go cannot call
// sysconf without cgo).
const clockTicks = 100

// procUsage is one reading of a process's CPU time and memory.
type procUsage struct {
	CPU   time.Duration // utime + stime
	RSS   int64         // VmRSS, bytes
	HWM   int64         // VmHWM (peak RSS), bytes
	Valid bool
}

// readUsage reads /proc/PID/stat and /proc/PID/status.
func readUsage(pid int) (procUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procUsage{}, err
	}
	cpu, err := parseStatCPU(string(stat))
	if err != nil {
		return procUsage{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procUsage{}, err
	}
	rss, hwm := parseStatusMem(string(status))
	return procUsage{CPU: cpu, RSS: rss, HWM: hwm, Valid: true}, nil
}

// readTreeUsage sums the CPU time (its own and its reaped children's) and
// the memory (VmRSS, VmHWM) of pid and every live descendant: a server that
// is a script, a Temporal server and a PostgreSQL with its backends. A
// backend that exited is counted through its parent's reaped-children time.
func readTreeUsage(root int) (procUsage, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return procUsage{}, err
	}
	parent := map[int]int{}
	stats := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		if i < 0 || len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid], stats[pid] = ppid, string(stat)
	}
	inTree := func(pid int) bool {
		for ; pid > 1; pid = parent[pid] {
			if pid == root {
				return true
			}
		}
		return false
	}
	var u procUsage
	for pid, stat := range stats {
		if !inTree(pid) {
			continue
		}
		cpu, err := parseStatCPU(stat)
		if err != nil {
			continue
		}
		u.CPU += cpu + parseStatChildrenCPU(stat)
		if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			rss, hwm := parseStatusMem(string(status))
			u.RSS += rss
			u.HWM += hwm
		}
		u.Valid = u.Valid || pid == root
	}
	if !u.Valid {
		return u, fmt.Errorf("process %d is gone", root)
	}
	return u, nil
}

// parseStatChildrenCPU returns cutime+cstime (fields 16 and 17) from a
// /proc/PID/stat line, or 0 if they cannot be read.
func parseStatChildrenCPU(stat string) time.Duration {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 15 {
		return 0
	}
	cut, err1 := strconv.ParseInt(f[13], 10, 64)
	cst, err2 := strconv.ParseInt(f[14], 10, 64)
	if errors.Join(err1, err2) != nil {
		return 0
	}
	return time.Duration(cut+cst) * time.Second / clockTicks
}

// parseStatCPU returns utime+stime from a /proc/PID/stat line. The command
// name (field 2) may contain spaces and parentheses, so fields are counted
// after the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no ')'")
	}
	f := strings.Fields(stat[i+1:])
	// After ')': state(3) ppid(4) ... utime is field 14, stime field 15,
	// i.e. f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the name", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// parseStatusMem returns VmRSS and VmHWM in bytes from /proc/PID/status.
func parseStatusMem(status string) (rss, hwm int64) {
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && strings.EqualFold(f[1], "kB") {
			n *= 1024
		}
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}
