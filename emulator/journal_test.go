package emulator

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

// dump renders the whole state at one instant for comparison.
func dump(t *testing.T, s *Server, at time.Time) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cl := range s.st.Clusters {
		s.advance(cl, at)
	}
	b, err := json.Marshal(s.st.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJournal_killAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "emulator.jsonl")
	e := setup(t, Options{StatePath: path, ClusterStartDelay: time.Hour})
	ctx := context.Background()
	var users []*iam.User
	for _, n := range []string{"a@event.org", "b@event.org", "c@event.org"} {
		users = append(users, e.participant(n))
	}
	if err := e.a.Users.DeleteById(ctx, users[2].Id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "main", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Grants.Update(ctx, catalog.UpdatePermissions{SecurableType: "schema", FullName: "main.a",
		Changes: []catalog.PermissionsChange{{Principal: users[0].UserName, Add: []catalog.Privilege{catalog.PrivilegeUseSchema}}}}); err != nil {
		t.Fatal(err)
	}
	w1, err := e.w.Clusters.Create(ctx, participantCluster("evt-a", users[0].UserName))
	if err != nil {
		t.Fatal(err)
	}
	w2, err := e.w.Clusters.Create(ctx, participantCluster("evt-b", users[1].UserName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Clusters.Delete(ctx, compute.DeleteCluster{ClusterId: w2.ClusterId}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Clusters.UpdatePermissions(ctx, compute.ClusterPermissionsRequest{ClusterId: w1.ClusterId,
		AccessControlList: []compute.ClusterAccessControlRequest{{UserName: users[0].UserName, PermissionLevel: compute.ClusterPermissionLevelCanRestart}}}); err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	e.control("POST", "/emulator/v1/tokens", map[string]string{"user_name": users[0].UserName}, &tok)

	// "kill -9": no Close, so no compaction; the journal is all there is.
	at := time.Now().Add(time.Minute)
	before := dump(t, e.emu, at)
	restarted, err := New(Options{Token: testToken, AccountID: testAccount, WorkspaceID: testWorkspace, StatePath: path})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer restarted.Close()
	if after := dump(t, restarted, at); after != before {
		t.Errorf("state after restart differs:\nbefore %s\nafter  %s", before, after)
	}
	if got := restarted.Stats().Objects; got != (ObjectCounts{Users: 2, Assignments: 2, Catalogs: 2, Schemas: 1, Clusters: 2}) {
		t.Errorf("objects after restart = %+v", got)
	}

	// The restarted server answers the SDK with the same objects.
	srv := httptest.NewServer(restarted)
	defer srv.Close()
	e2 := &env{t: t, emu: restarted, srv: srv}
	e2.a, e2.w = e2.accountClient(testToken, 2), e2.workspaceClient(testToken, 2)
	got, err := e2.a.Users.ListAll(ctx, iam.ListAccountUsersRequest{})
	if err != nil || len(got) != 2 || got[0].Id != users[0].Id {
		t.Errorf("users after restart = %+v, %v", got, err)
	}
	cl, err := e2.w.Clusters.GetByClusterId(ctx, w2.ClusterId)
	if err != nil || (cl.State != compute.StateTerminating && cl.State != compute.StateTerminated) {
		t.Errorf("terminated cluster after restart = %+v, %v", cl, err)
	}
	pw := e2.workspaceClient(tok.Token, 1)
	if _, err := pw.Clusters.GetByClusterId(ctx, w1.ClusterId); err != nil {
		t.Errorf("participant token after restart: %v", err)
	}
	// A torn last line (killed mid-write) is ignored; Close compacts.
	if err := restarted.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"k":"user","id":"9","v":{"id":"9","userN`)
	f.Close()
	again, err := New(Options{Token: testToken, AccountID: testAccount, WorkspaceID: testWorkspace, StatePath: path})
	if err != nil {
		t.Fatalf("load with torn line: %v", err)
	}
	defer again.Close()
	if after := dump(t, again, at); after != before {
		t.Errorf("state after torn line differs")
	}
}

func TestJournal_corruptMiddleLineFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl")
	os.WriteFile(path, []byte("{not json}\n{\"k\":\"token\",\"id\":\"t\",\"v\":\"u\"}\n"), 0o644)
	if _, err := New(Options{Token: "x", StatePath: path}); err == nil {
		t.Errorf("corrupt journal accepted")
	}
}
