package workflows

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// A provisioning batch and an offboard list the clusters once
// (clustersListedOnce), whatever their number of chunks, and each
// participant run gets the ids that listing found tagged for them; a
// reconcile's chunks get the event's read as before, not the listing.
func TestBatchWorkflow_listsClustersOnce(t *testing.T) {
	cases := []struct {
		name, mode string
		opts       wire.OffboardOptions
		all        bool
	}{
		{"provision", wire.ModeProvision, wire.OffboardOptions{}, false},
		{"offboard", wire.ModeOffboard, wire.OffboardOptions{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(setup, nil).Maybe()
			var mu sync.Mutex
			var reads []wire.ReadEventInput
			env.OnActivity(wire.ReadEventName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in wire.ReadEventInput) (wire.ReadEventResult, error) {
					mu.Lock()
					defer mu.Unlock()
					reads = append(reads, in)
					return wire.ReadEventResult{Snapshot: "listing-1"}, nil
				})
			var loads []wire.LoadChunkInput
			env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in wire.LoadChunkInput) (wire.LoadChunkResult, error) {
					mu.Lock()
					defer mu.Unlock()
					loads = append(loads, in)
					ps := people(4)[in.Offset : in.Offset+in.Limit]
					tagged := make([][]string, len(ps))
					for i, p := range ps {
						tagged[i] = []string{"c-" + p.Email}
					}
					return wire.LoadChunkResult{Participants: ps, Tagged: tagged}, nil
				})
			got := map[string]ParticipantInput{}
			env.OnWorkflow(ParticipantWorkflowName, mock.Anything, mock.Anything).Return(
				func(_ workflow.Context, in ParticipantInput) (ParticipantResult, error) {
					mu.Lock()
					defer mu.Unlock()
					got[in.Participant.Email] = in
					return ParticipantResult{Email: in.Participant.Email, Mode: in.Mode}, nil
				})
			env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "b1", Roster: roster.Ref{Key: "k", Count: 4}, ChunkSize: 2,
				MaxInFlight: 4, ParallelChunks: 2, ChunksPerRun: 5, StepTimeout: time.Hour, Mode: tc.mode, Offboard: tc.opts})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			if len(reads) != 1 || !reads[0].ClustersOnly || reads[0].AllClusters != tc.all {
				t.Errorf("reads = %+v, want one, clusters only, all clusters %t", reads, tc.all)
			}
			if len(loads) != 2 {
				t.Fatalf("chunks loaded = %d, want 2", len(loads))
			}
			for _, l := range loads {
				if l.Clusters != "listing-1" {
					t.Errorf("LoadChunk input %+v, want the batch's listing", l)
				}
			}
			for _, p := range people(4) {
				in := got[p.Email]
				if !in.ClustersListed || !slices.Equal(in.Tagged, []string{"c-" + p.Email}) {
					t.Errorf("%s: listed %t, tagged %v; want listed, [c-%s]", p.Email, in.ClustersListed, in.Tagged, p.Email)
				}
			}
		})
	}
}

// A participant's provisioning with the batch's listing hands create_cluster
// the listing's ids for them (Listed): its lookup reads those by id.
func TestParticipantWorkflow_createClusterTakesTheListing(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.PriorRunsName, mock.Anything, mock.Anything).Return(wire.PriorRunsResult{UserCreated: true}, nil).Maybe()
	var cin wire.CreateClusterInput
	mockSteps(env, 0, map[string]any{
		wire.CreateUserName: wire.CreateUserResult{UserID: taroUserID}, // existed before: a lookup
		wire.CreateClusterName: func(_ context.Context, in wire.CreateClusterInput) (wire.CreateClusterResult, error) {
			cin = in
			return wire.CreateClusterResult{ClusterID: taroClusterID, URL: taroURL}, nil
		},
	})
	env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort",
		Cluster:        wire.ClusterSpec{PolicyID: "pc", SparkVersion: "16.4.x-cpu-ml-scala2.12", NodeType: "Standard_DS3_v2"},
		ClustersListed: true, Tagged: []string{"c1", "c2"}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if !cin.Lookup || !cin.Listed || !slices.Equal(cin.Tagged, []string{"c1", "c2"}) {
		t.Errorf("CreateCluster input lookup %t, listed %t, tagged %v; want a lookup among [c1 c2] of the listing", cin.Lookup, cin.Listed, cin.Tagged)
	}
}

// An offboard's remove_clusters gets the recorded cluster and the listing's
// ids, and what it kept (not Cohort's) is among the changes.
func TestParticipantWorkflow_offboardRemovesByID(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(wire.PriorRunsName, mock.Anything, mock.Anything).Return(wire.PriorRunsResult{UserCreated: true, ClusterID: "recorded"}, nil)
	env.OnActivity(wire.RemoveAssignmentName, mock.Anything, mock.Anything).Return(wire.RemoveAssignmentResult{}, nil)
	var rin wire.RemoveClustersInput
	env.OnActivity(wire.RemoveClustersName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in wire.RemoveClustersInput) (wire.RemoveClustersResult, error) {
			rin = in
			return wire.RemoveClustersResult{ClusterIDs: []string{"recorded"}, Kept: []string{"cluster lookalike (not Cohort's)"}}, nil
		})
	env.OnActivity(wire.RevokeGrantsName, mock.Anything, mock.Anything).Return(wire.RevokeGrantsResult{}, nil)
	env.OnActivity(wire.RemoveUserName, mock.Anything, mock.Anything).Return(wire.RemoveUserResult{}, nil)
	env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort",
		Mode: wire.ModeOffboard, ClustersListed: true, Tagged: []string{"recorded", "lookalike"}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var got ParticipantResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if rin.Recorded != "recorded" || !rin.Listed || !slices.Equal(rin.Tagged, []string{"recorded", "lookalike"}) {
		t.Errorf("RemoveClusters input = %+v, want the recorded id and the listing's", rin)
	}
	if !slices.Contains(got.Changes, "cluster recorded permanently deleted") || !slices.Contains(got.Changes, "kept cluster lookalike (not Cohort's)") {
		t.Errorf("changes = %q, want the removed and the kept cluster", got.Changes)
	}
}
