package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/cohort-dev/cohort/testkit/ports"
	"github.com/cohort-dev/cohort/workflows"
)

// temporalServer is a Temporal CLI dev server persisted to a SQLite file, so
// it can be stopped and started again on the same port and database.
type temporalServer struct {
	bin, dir, db string
	port         int
	namespaces   []string
	proc         *process
	starts       int
}

func (s *temporalServer) address() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server and waits until every namespace answers.
func (s *temporalServer) start() error {
	s.starts++
	args := []string{"server", "start-dev", "--headless",
		"--ip", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--db-filename", s.db, "--log-level", "warn",
		// SQLite serializes all of Temporal's persistence on one connection;
		// without an fsync per commit the dev server runs about twice as
		// fast. A killed or stopped server loses nothing this way (the OS
		// still has the pages); only a machine crash would.
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=off"}
	for _, ns := range s.namespaces {
		args = append(args, "--namespace", ns)
	}
	p, err := startProcess(s.dir, fmt.Sprintf("temporal-%d", s.starts), s.bin, args, nil)
	if err != nil {
		return err
	}
	s.proc = p
	return s.waitReady(60 * time.Second)
}

func (s *temporalServer) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if !s.proc.running() {
			return fmt.Errorf("temporal server exited: %v\n%s", s.proc.err, s.proc.logTail())
		}
		last = s.ping(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal server at %s not ready within %s: %v", s.address(), timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ping connects and describes every namespace.
func (s *temporalServer) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, err := client.NewNamespaceClient(client.Options{HostPort: s.address(), Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, ns := range s.namespaces {
		if _, err := nc.Describe(ctx, ns); err != nil {
			return fmt.Errorf("describe namespace %s: %w", ns, err)
		}
	}
	return nil
}

// stop sends SIGTERM and waits for the server to exit and free its port.
func (s *temporalServer) stop() error {
	if s.proc == nil {
		return nil
	}
	err := s.proc.stop(30 * time.Second)
	if perr := ports.WaitFree(s.port, 15*time.Second); perr != nil && err == nil {
		err = perr
	}
	return err
}

// restart stops the server (SIGTERM), leaves it down for downtime, and
// starts it again on the same port and file.
func (s *temporalServer) restart(t *testing.T, downtime time.Duration) {
	t.Helper()
	start := time.Now()
	if err := s.stop(); err != nil {
		// An unclean exit after SIGTERM is worth a look, not a failure.
		t.Logf("temporal server stop: %v", err)
	}
	t.Logf("temporal server stopped in %s", time.Since(start).Round(time.Millisecond))
	time.Sleep(downtime)
	if err := s.start(); err != nil {
		t.Fatalf("restart temporal server: %v", err)
	}
	t.Logf("temporal server restarted on %s in %s", s.address(), time.Since(start).Round(time.Millisecond))
}

func (s *temporalServer) logTail() string {
	if s.proc == nil {
		return ""
	}
	return s.proc.logTail()
}

// client dials the server in namespace ns for the test's own checks.
func (s *temporalServer) client(t *testing.T, ns string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: s.address(), Namespace: ns, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("dial temporal at %s: %v", s.address(), err)
	}
	t.Cleanup(c.Close)
	return c
}

func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// waitBatch waits until the batch's current run has closed, tolerating a
// server that is briefly unavailable, and fails unless it completed.
func waitBatch(t *testing.T, tc client.Client, batchID string, timeout time.Duration) {
	t.Helper()
	id := workflows.BatchWorkflowID(batchID)
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		desc, err := tc.DescribeWorkflowExecution(ctx, id, "")
		cancel()
		if err != nil {
			last = err.Error()
		} else {
			st := desc.GetWorkflowExecutionInfo().GetStatus()
			switch st {
			case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
				return
			case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
				last = st.String()
			default:
				t.Fatalf("batch %s ended %s, want COMPLETED", batchID, st)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s not completed within %s (last: %s)", batchID, timeout, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// workflowRuns counts the runs of every workflow of type wfType in the
// client's namespace, by workflow ID, from the visibility store. It waits
// until the count of closed runs reaches at least minClosed, since
// visibility trails the history by a little.
func workflowRuns(t *testing.T, tc client.Client, ns, wfType string, minClosed int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		runs, closed, err := listRuns(tc, ns, fmt.Sprintf("WorkflowType = '%s'", wfType))
		if err == nil && closed >= minClosed {
			return runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("list %s workflows in %s: %d closed runs (want >= %d), err %v", wfType, ns, closed, minClosed, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func listRuns(tc client.Client, ns, query string) (runs map[string]int, closed int, err error) {
	runs = map[string]int{}
	var token []byte
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: ns, Query: query, PageSize: 1000, NextPageToken: token,
		})
		cancel()
		if err != nil {
			return nil, 0, err
		}
		for _, e := range resp.GetExecutions() {
			runs[e.GetExecution().GetWorkflowId()]++
			if e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				closed++
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return runs, closed, nil
		}
	}
}

// allWorkflowIDs lists every workflow ID in the namespace (any type, any
// status).
func allWorkflowIDs(t *testing.T, tc client.Client, ns string) map[string]int {
	t.Helper()
	runs, _, err := listRuns(tc, ns, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			t.Fatalf("list workflows in %s: %v", ns, err)
		}
	}
	return runs
}

// batchIDFrom parses "-> batch ID" from the starter's first output line.
func batchIDFrom(t *testing.T, stdout string) string {
	t.Helper()
	first, _, _ := strings.Cut(stdout, "\n")
	_, after, ok := strings.Cut(first, "-> batch ")
	id := strings.TrimSpace(after)
	if !ok || id == "" || strings.ContainsAny(id, " \t") {
		t.Fatalf("starter's first line = %q, want it to end with \"-> batch ID\"", first)
	}
	return id
}
