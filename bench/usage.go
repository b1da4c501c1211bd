package main

// -usage (issue 19): how fast the usage read goes over N participants'
// cluster event logs, against the events rate bound. In process: the
// emulator (realistic latencies, Azure's rates, the time scale) and
// Cohort's UsageChunk activity through the real SDK, chunk by chunk as the
// chunk workflows run it (4 chunks at a time, 250 participants each); no
// Temporal (the clusters are passed by id, as a reconcile's survey does).
//
// The N clusters are made first on the same journal by an emulator with no
// latency and no rate limits (seeding is not what is measured), each
// created (its creation's run) and terminated, then started by the
// participant, run and terminated once: a few events each, one page.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"golang.org/x/sync/errgroup"

	"github.com/cohort-dev/cohort/activities"
	"github.com/cohort-dev/cohort/emulator"
	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/usage"
	"github.com/cohort-dev/cohort/wire"
)

// usageEventsRate is Cohort's default pace of clusters/events (config
// rate_limits.cluster_events), before the time scale.
const usageEventsRate = 10

// usageChunk and usageParallel are the default batch's chunk size and
// chunks at once.
const (
	usageChunk    = 250
	usageParallel = 4
)

// usageResult is one N's figures.
type usageResult struct {
	n                 int
	seed, first, next time.Duration // seeding; the first read; a second (daily) read
	pagesFirst        int64         // clusters/events pages the first read asked for
	pagesNext         int64
	throttled         int64 // 429s the emulator answered
	bound             time.Duration
}

// runUsage measures the usage read for each N.
func runUsage(ctx context.Context, o *options, work string) error {
	fmt.Printf("\n## Usage read (issue 19): emulator latency %s, rate limits %s, time scale %g; Cohort's events pace %g/s x scale\n\n",
		o.latency, o.rateLimits, o.timeScale, float64(usageEventsRate))
	fmt.Println("| N | seed | first read | pages/participant | bound (N x pages / rate) | wall / bound | daily re-read | pages/participant | 429s |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, n := range o.ns {
		r, err := usageRun(ctx, o, filepath.Join(work, fmt.Sprintf("usage-%d", n)), n)
		if err != nil {
			return fmt.Errorf("usage N=%d: %w", n, err)
		}
		fmt.Printf("| %d | %s | %s | %.2f | %s | %.2fx | %s | %.2f | %d |\n", r.n, r.seed.Round(time.Second), r.first.Round(100*time.Millisecond),
			float64(r.pagesFirst)/float64(n), r.bound.Round(100*time.Millisecond), r.first.Seconds()/r.bound.Seconds(),
			r.next.Round(100*time.Millisecond), float64(r.pagesNext)/float64(n), r.throttled)
	}
	return nil
}

func usageRun(ctx context.Context, o *options, dir string, n int) (usageResult, error) {
	r := usageResult{n: n}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, err
	}
	state := filepath.Join(dir, "emulator.jsonl")
	domain := fmt.Sprintf("usage%d.bench.example", n)
	start := time.Now()
	ids, err := seedClusters(ctx, o, state, domain, n)
	if err != nil {
		return r, fmt.Errorf("seed: %w", err)
	}
	r.seed = time.Since(start)

	emu, err := emulator.New(emulator.Options{Token: emuToken, StatePath: state, Latency: o.latency, RateLimits: o.rateLimits,
		TimeScale: o.timeScale, Seed: o.seed})
	if err != nil {
		return r, err
	}
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	w, err := benchWorkspace(srv.URL)
	if err != nil {
		return r, err
	}
	_, ws := activities.FromClients(nil, w)
	ps := make([]roster.Participant, n)
	for i := range ps {
		ps[i] = roster.Participant{Email: fmt.Sprintf("p%05d@%s", i, domain), DisplayName: fmt.Sprintf("P %d", i)}
	}
	store := roster.Store{Dir: filepath.Join(dir, "rosters")}
	ref, err := store.Put(ps)
	if err != nil {
		return r, err
	}
	a := &activities.Activities{Workspace: ws, Roster: store, Ledger: usage.Store{Dir: filepath.Join(dir, "rosters", "ledger")},
		Limits:   activities.NewLimits(activities.RateRates{ClusterEvents: usageEventsRate * o.timeScale, Clusters: 30 * o.timeScale}, 1),
		Settings: activities.Settings{TagKey: "CohortParticipant", NodeType: "Standard_DS3_v2"}}
	rate := usageEventsRate * o.timeScale
	for pass := range 2 {
		before := emu.Stats().Requests["clusters.events"]
		t0 := time.Now()
		if err := readAllUsage(ctx, a, ref, ids); err != nil {
			return r, err
		}
		wall := time.Since(t0)
		after := emu.Stats().Requests["clusters.events"]
		pages := after["200"] - before["200"]
		r.throttled += after["429"] - before["429"]
		if pass == 0 {
			r.first, r.pagesFirst = wall, pages
			r.bound = time.Duration(float64(pages) / rate * float64(time.Second))
		} else {
			r.next, r.pagesNext = wall, pages
		}
	}
	return r, nil
}

// readAllUsage runs UsageChunk over the roster in chunks, usageParallel at once.
func readAllUsage(ctx context.Context, a *activities.Activities, ref roster.Ref, ids []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(usageParallel)
	for off := 0; off < ref.Count; off += usageChunk {
		limit := min(usageChunk, ref.Count-off)
		g.Go(func() error {
			in := wire.UsageChunkInput{Roster: ref, Offset: off, Limit: limit, WorkflowIDs: make([]string, limit), ClusterIDs: make([][]string, limit)}
			for i := range limit {
				in.ClusterIDs[i] = []string{ids[off+i]}
			}
			res, err := a.UsageChunk(gctx, in)
			if err != nil {
				return err
			}
			for _, u := range res.Usage {
				if u.Error != "" {
					return fmt.Errorf("%s: %s", u.Email, u.Error)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// seedClusters makes n clusters on the journal at state, each tagged for
// one participant, run once and terminated, on an emulator with no
// latency and no rate limits.
func seedClusters(ctx context.Context, o *options, state, domain string, n int) ([]string, error) {
	emu, err := emulator.New(emulator.Options{Token: emuToken, StatePath: state, TimeScale: o.timeScale, Seed: o.seed})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	w, err := benchWorkspace(srv.URL)
	if err != nil {
		return nil, err
	}
	pol, err := w.ClusterPolicies.GetByName(ctx, "Personal Compute")
	if err != nil {
		return nil, err
	}
	versions, err := w.Clusters.SparkVersions(ctx)
	if err != nil || len(versions.Versions) == 0 {
		return nil, fmt.Errorf("spark versions: %v", err)
	}
	ids := make([]string, n)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			email := fmt.Sprintf("p%05d@%s", i, domain)
			resp, err := w.Clusters.Create(gctx, compute.CreateCluster{ClusterName: strings.Split(email, "@")[0], SparkVersion: versions.Versions[0].Key,
				NodeTypeId: "Standard_DS3_v2", PolicyId: pol.PolicyId, NumWorkers: 0,
				SparkConf:  map[string]string{"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
				CustomTags: map[string]string{"ResourceClass": "SingleNode", "CohortParticipant": email}, DataSecurityMode: compute.DataSecurityModeSingleUser,
				SingleUserName: emulator.AdminUserName, AutoterminationMinutes: 60, ApplyPolicyDefaultValues: true, ForceSendFields: []string{"NumWorkers"}})
			if err != nil {
				return fmt.Errorf("create cluster for %s: %w", email, err)
			}
			id := resp.ClusterId
			if err := cycle(gctx, w, id); err != nil {
				return err
			}
			mu.Lock()
			ids[i] = id
			mu.Unlock()
			return nil
		})
	}
	return ids, g.Wait()
}

// cycle terminates a new cluster, starts it once it is terminated, and
// terminates it again once it runs.
func cycle(ctx context.Context, w *databricks.WorkspaceClient, id string) error {
	wait := func(want ...compute.State) error {
		for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			c, err := w.Clusters.Get(ctx, compute.GetClusterRequest{ClusterId: id})
			if err != nil {
				return err
			}
			for _, s := range want {
				if c.State == s {
					return nil
				}
			}
		}
		return fmt.Errorf("cluster %s never %v", id, want)
	}
	if _, err := w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id}); err != nil {
		return err
	}
	if err := wait(compute.StateTerminated); err != nil {
		return err
	}
	if _, err := w.Clusters.Start(ctx, compute.StartCluster{ClusterId: id}); err != nil {
		return err
	}
	if err := wait(compute.StateRunning); err != nil {
		return err
	}
	_, err := w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: id})
	return err
}

// benchWorkspace is an SDK workspace client of the admin on the emulator at host.
func benchWorkspace(host string) (*databricks.WorkspaceClient, error) {
	return databricks.NewWorkspaceClient(&databricks.Config{Host: host, Token: emuToken, RateLimitPerSecond: 10000,
		RetryTimeoutSeconds: 60, ConfigFile: "/dev/null"})
}
