package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one child process whose stdout and stderr go to files.
type process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr string // log file paths
	exited         chan struct{}
	err            error // from Wait, once exited is closed
	killed         bool  // by kill (SIGKILL), on purpose
}

// startProcess runs bin with args, logging to dir/name.stdout and
// dir/name.stderr. env is added to a copy of the test's environment from
// which anything that could point the process elsewhere (TEMPORAL_*,
// DATABRICKS_*, ARM_*, COHORT_*) was removed.
func startProcess(dir, name, bin string, args, env []string) (*process, error) {
	p := &process{
		name:   name,
		stdout: filepath.Join(dir, name+".stdout"),
		stderr: filepath.Join(dir, name+".stderr"),
		exited: make(chan struct{}),
	}
	out, err := os.Create(p.stdout)
	if err != nil {
		return nil, err
	}
	errf, err := os.Create(p.stderr)
	if err != nil {
		out.Close()
		return nil, err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = out, errf
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		out.Close()
		errf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		out.Close()
		errf.Close()
		close(p.exited)
	}()
	return p, nil
}

// cleanEnv is the test's environment without the variables that would make a
// child talk to another Temporal server or Databricks workspace.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TEMPORAL_") || strings.HasPrefix(k, "DATABRICKS_") ||
			strings.HasPrefix(k, "ARM_") || strings.HasPrefix(k, "COHORT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() error {
	if !p.running() {
		return nil
	}
	p.killed = true
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It reports an unclean exit (not 0 after SIGTERM) as an error.
func (p *process) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(grace):
		if err := p.kill(); err != nil {
			return err
		}
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, grace)
	}
}

// waitLog waits until the process's stdout or stderr contains want, and
// returns the line holding it. It fails early when the process exits.
func (p *process) waitLog(want string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, f := range []string{p.stdout, p.stderr} {
			data, _ := os.ReadFile(f)
			if i := bytes.Index(data, []byte(want)); i >= 0 {
				line := data[i:]
				if j := bytes.IndexByte(line, '\n'); j >= 0 {
					line = line[:j]
				}
				return string(line), nil
			}
		}
		if !p.running() {
			return "", fmt.Errorf("%s exited (%v) before logging %q", p.name, p.err, want)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not log %q within %s", p.name, want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logTail returns the last lines of the process's output, for failure
// messages.
func (p *process) logTail() string {
	var b strings.Builder
	for _, f := range []string{p.stdout, p.stderr} {
		if fi, err := os.Stat(f); err == nil && fi.Size() == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- %s (last %d lines) ---\n%s", f, tailLines, tail(f, tailLines))
	}
	return b.String()
}

const tailLines = 40

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > n+1 {
		lines = lines[len(lines)-n-1:]
	}
	return strings.Join(lines, "")
}
