package workflows

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cohort-dev/cohort/roster"
	"github.com/cohort-dev/cohort/wire"
)

// Every activity a workflow can schedule is a row of the wiring table, so
// the worker registers it on the queue it is scheduled on; and every row is
// scheduled somewhere. The workflows name activities only by the wire.*Name
// constants, so the source says which they can schedule.
func TestWiringTable_coversEveryScheduledActivity(t *testing.T) {
	rows, used := wiringSource(t)
	for _, name := range slices.Sorted(maps.Keys(used)) {
		if !rows[name] {
			t.Errorf("wire.%s is used in %s but is no row of the wiring table (wiring.go): no worker would register it", name, used[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rows)) {
		if used[name] == "" {
			t.Errorf("wire.%s is a row of the wiring table but no workflow schedules it", name)
		}
	}
	if len(rows) != len(Activities()) {
		t.Errorf("%d rows found in the source, Activities() has %d", len(rows), len(Activities()))
	}
}

// wiringSource reads the package's non-test files: rows are the wire
// constants named by the table's Activity literals, used the wire.*Name
// constants used anywhere else (with a file that uses each).
func wiringSource(t *testing.T) (rows map[string]bool, used map[string]string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	rows, used = map[string]bool{}, map[string]string{}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		inRow := map[ast.Node]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				for _, row := range activityRows(n) {
					for _, el := range row.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						if key, ok := kv.Key.(*ast.Ident); ok && key.Name == "Name" {
							if name, ok := wireName(kv.Value); ok {
								rows[name] = true
								inRow[kv.Value] = true
							}
						}
					}
				}
			case *ast.SelectorExpr:
				if name, ok := wireName(n); ok && !inRow[n] {
					used[name] = file
				}
			}
			return true
		})
	}
	return rows, used
}

// activityRows are the rows of lit when it is a []Activity literal.
func activityRows(lit *ast.CompositeLit) []*ast.CompositeLit {
	arr, ok := lit.Type.(*ast.ArrayType)
	if !ok {
		return nil
	}
	if id, ok := arr.Elt.(*ast.Ident); !ok || id.Name != "Activity" {
		return nil
	}
	var rows []*ast.CompositeLit
	for _, el := range lit.Elts {
		if row, ok := el.(*ast.CompositeLit); ok {
			rows = append(rows, row)
		}
	}
	return rows
}

// wireName is X of an expression wire.X whose name ends in Name (the
// activity names; wire has no other constants so named that workflows use).
func wireName(e ast.Expr) (string, bool) {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok || pkg.Name != "wire" || !strings.HasSuffix(sel.Sel.Name, "Name") {
		return "", false
	}
	return sel.Sel.Name, true
}

// Workflows schedule each activity on its row's queue: a provisioning run
// (the seven steps), a run of the earlier shape, an offboard and a
// reconcile batch (setup, the event read, load, survey, usage), their
// activities seen as the test server starts them.
func TestWiringTable_scheduledOnItsQueue(t *testing.T) {
	runs := []struct {
		name string
		run  func(env *testsuite.TestWorkflowEnvironment)
	}{
		{"provision", func(env *testsuite.TestWorkflowEnvironment) {
			mockSteps(env, time.Second, nil)
			runTaro(env, 0)
		}},
		{"earlier shape", func(env *testsuite.TestWorkflowEnvironment) {
			env.OnGetVersion(sevenActivities, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			env.OnActivity(wire.ProvisionAccessName, mock.Anything, mock.Anything).Return(wire.ProvisionAccessResult{UserID: taroUserID}, nil)
			env.OnActivity(wire.ProvisionClusterName, mock.Anything, mock.Anything).Return(wire.ProvisionClusterResult{ClusterID: taroClusterID}, nil)
			runTaro(env, 0)
		}},
		{"offboard", func(env *testsuite.TestWorkflowEnvironment) {
			for name, res := range map[string]any{
				wire.PriorRunsName: wire.PriorRunsResult{}, wire.RemoveAssignmentName: wire.RemoveAssignmentResult{},
				wire.RemoveClustersName: wire.RemoveClustersResult{}, wire.RevokeGrantsName: wire.RevokeGrantsResult{},
				wire.DropSchemaName: wire.DropSchemaResult{}, wire.RemoveUserName: wire.RemoveUserResult{},
			} {
				env.OnActivity(name, mock.Anything, mock.Anything).Return(res, nil)
			}
			env.ExecuteWorkflow(ParticipantWorkflowName, ParticipantInput{BatchID: "b1", Participant: taro, Catalog: "cohort",
				Mode: wire.ModeOffboard, Offboard: wire.OffboardOptions{DropSchemas: true}})
		}},
		{"reconcile batch", func(env *testsuite.TestWorkflowEnvironment) {
			env.OnActivity(wire.SetupBatchName, mock.Anything, mock.Anything).Return(setup, nil)
			env.OnActivity(wire.ReadEventName, mock.Anything, mock.Anything).After(time.Minute).Return(wire.ReadEventResult{Snapshot: "snap"}, nil)
			env.OnActivity(wire.LoadChunkName, mock.Anything, mock.Anything).Return(wire.LoadChunkResult{Participants: people(2)}, nil)
			env.OnActivity(wire.PrefetchSurveyName, mock.Anything, mock.Anything).Return(wire.PrefetchSurveyResult{}, nil)
			env.OnActivity(wire.SurveyChunkName, mock.Anything, mock.Anything).Return(wire.SurveyChunkResult{Surveys: make([]wire.Survey, 2)}, nil)
			env.OnActivity(wire.UsageChunkName, mock.Anything, mock.Anything).Return(wire.UsageChunkResult{Usage: make([]wire.ParticipantUsage, 2)}, nil)
			env.ExecuteWorkflow(BatchWorkflowName, BatchInput{BatchID: "reconcile-x", Roster: roster.Ref{Key: "k", Count: 2}, ChunkSize: 2,
				MaxInFlight: 2, ParallelChunks: 1, ChunksPerRun: 10, StepTimeout: time.Hour, Mode: wire.ModeReconcile})
		}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			env := newSurveyEnv(t)
			var started []string
			env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
				started = append(started, info.ActivityType.Name)
				if want := activityNamed(info.ActivityType.Name).Queue; info.TaskQueue != want {
					t.Errorf("%s scheduled on %s; the wiring table says %s", info.ActivityType.Name, info.TaskQueue, want)
				}
			})
			r.run(env)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			if len(started) < 2 {
				t.Errorf("activities started: %v; want the run's steps", started)
			}
		})
	}
}
