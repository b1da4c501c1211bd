package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// emuProc is one fresh Databricks emulator process.
type emuProc struct {
	p          *proc
	host       string // http://127.0.0.1:PORT
	token      string
	configFile string // the worker config fragment it wrote
	logFile    string // its log; with -v (the cohort way) one line per request
	http       *http.Client
}

const emuToken = "dapi-bench-admin"

// startEmulator runs the emulator binary with the benchmark's settings and
// waits for its "listening on" line.
func startEmulator(ctx context.Context, o *options, dir, name string) (*emuProc, error) {
	cfgFile := filepath.Join(dir, name+"-emulator.yaml")
	args := []string{"--listen", "127.0.0.1:0", "--token", emuToken, "--user-token", "",
		"--latency", o.latency, "--rate-limits", o.rateLimits,
		"--time-scale", strconv.FormatFloat(o.timeScale, 'g', -1, 64),
		"--seed", strconv.FormatInt(o.seed, 10), "--write-config", cfgFile,
		// Strict as a real workspace, prepared as an admin would: Cohort's
		// catalog made beforehand (the metastore has no root storage).
		"--catalog", "cohort"}
	if name == "cohort" {
		// Every answered request with its latency: the breakdown's clock
		// of setup's reads and the user creates.
		args = append(args, "-v")
	}
	args = append(args, o.emulatorFlags...)
	log, err := os.Create(filepath.Join(dir, name+"-emulator.log"))
	if err != nil {
		return nil, err
	}
	hostc := make(chan string, 1)
	p, err := startProc(name+" emulator", exec.Command(o.bin("databricks-emulator"), args...), log, func(line string) {
		if h, ok := strings.CutPrefix(line, "listening on "); ok {
			select {
			case hostc <- strings.TrimSpace(h):
			default:
			}
		}
	})
	if err != nil {
		log.Close()
		return nil, err
	}
	e := &emuProc{p: p, token: emuToken, configFile: cfgFile, logFile: log.Name(), http: &http.Client{Timeout: 30 * time.Second}}
	select {
	case e.host = <-hostc:
	case <-p.done:
		return nil, fmt.Errorf("emulator exited before listening (see %s)", log.Name())
	case <-time.After(30 * time.Second):
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("emulator did not listen within 30s (see %s)", log.Name())
	case <-ctx.Done():
		p.stop(5 * time.Second)
		return nil, ctx.Err()
	}
	if !strings.HasPrefix(e.host, "http://127.0.0.1:") {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("emulator listens on %s, not on 127.0.0.1", e.host)
	}
	return e, nil
}

func (e *emuProc) stop() {
	if e != nil {
		e.p.stop(10 * time.Second)
	}
}

func (e *emuProc) get(ctx context.Context, path string) ([]byte, error) {
	return e.do(ctx, http.MethodGet, path)
}

func (e *emuProc) do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.host+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, body)
	}
	return body, nil
}

func (e *emuProc) config(ctx context.Context) (EmuConfig, error) {
	var c EmuConfig
	b, err := e.get(ctx, "/emulator/v1/config")
	if err != nil {
		return c, err
	}
	return c, jsonUnmarshal(b, &c, "emulator config")
}

func (e *emuProc) stats(ctx context.Context) (EmuStats, error) {
	b, err := e.get(ctx, "/emulator/v1/stats")
	if err != nil {
		return EmuStats{}, err
	}
	return ParseStats(b)
}

func (e *emuProc) resetStats(ctx context.Context) error {
	_, err := e.do(ctx, http.MethodPost, "/emulator/v1/stats/reset")
	return err
}
