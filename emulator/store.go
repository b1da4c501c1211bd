package emulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// state is everything the emulator knows. It is guarded by Server.mu.
type state struct {
	Users    map[string]*user // by id
	byName   map[string]string
	Assign   map[int64]*assignment
	Catalogs map[string]*ucCatalog // by lower-case name
	Schemas  map[string]*schema    // by lower-case full name
	Grants   map[string]map[string][]string
	Clusters map[string]*cluster
	Tokens   map[string]string     // extra PATs -> user name
	Purged   map[string]int64      // clusters deleted by the retention rule -> unix ms
	Gone     map[string]*runTotals // run totals of purged and permanently deleted clusters (runs.go)
	seq      int64
}

func newState() *state {
	return &state{
		Users:    map[string]*user{},
		byName:   map[string]string{},
		Assign:   map[int64]*assignment{},
		Catalogs: map[string]*ucCatalog{},
		Schemas:  map[string]*schema{},
		Grants:   map[string]map[string][]string{},
		Clusters: map[string]*cluster{},
		Tokens:   map[string]string{},
		Purged:   map[string]int64{},
		Gone:     map[string]*runTotals{},
	}
}

func (st *state) nextSeq() int64 { st.seq++; return st.seq }

func (st *state) bumpSeq(n int64) {
	if n > st.seq {
		st.seq = n
	}
}

func (st *state) userByName(name string) *user {
	id, ok := st.byName[strings.ToLower(name)]
	if !ok {
		return nil
	}
	return st.Users[id]
}

// userByNameOrEmail finds a user whose userName or any email matches one of
// the given names (case-insensitively): the account's uniqueness rule.
func (st *state) userByNameOrEmail(userName string, emails []string) *user {
	if u := st.userByName(userName); u != nil {
		return u
	}
	want := map[string]bool{strings.ToLower(userName): true}
	for _, e := range emails {
		if e != "" {
			want[strings.ToLower(e)] = true
		}
	}
	for _, u := range st.Users {
		if want[strings.ToLower(u.UserName)] {
			return u
		}
		for _, e := range u.Emails {
			if want[strings.ToLower(e.Value)] {
				return u
			}
		}
	}
	return nil
}

// schemasIn counts a catalog's schemas, default and information_schema included.
func (st *state) schemasIn(catalog string) int {
	n := 0
	for _, sc := range st.Schemas {
		if sc.CatalogName == catalog {
			n++
		}
	}
	return n
}

// ObjectCounts counts the objects the emulator holds. Schemas leaves out the
// default and information_schema schemas every catalog is created with.
type ObjectCounts struct {
	Users          int `json:"users"`
	InactiveUsers  int `json:"inactive_users"`
	Assignments    int `json:"assignments"`
	Catalogs       int `json:"catalogs"`
	Schemas        int `json:"schemas"`
	Clusters       int `json:"clusters"`
	PinnedClusters int `json:"pinned_clusters"`
	// PurgedClusters counts clusters deleted by the retention rule.
	PurgedClusters int `json:"purged_clusters"`
}

func (st *state) counts() ObjectCounts {
	oc := ObjectCounts{Users: len(st.Users), Assignments: len(st.Assign), Catalogs: len(st.Catalogs), Clusters: len(st.Clusters), PurgedClusters: len(st.Purged)}
	for _, u := range st.Users {
		if !u.Active {
			oc.InactiveUsers++
		}
	}
	for _, sc := range st.Schemas {
		if !isBuiltinSchema(sc.Name) {
			oc.Schemas++
		}
	}
	for _, cl := range st.Clusters {
		if cl.Pinned {
			oc.PinnedClusters++
		}
	}
	return oc
}

// Journal kinds.
const (
	kindUser    = "user"
	kindAssign  = "assignment"
	kindCatalog = "catalog"
	kindSchema  = "schema"
	kindGrant   = "grant"
	kindCluster = "cluster"
	kindToken   = "token"
	kindPurged  = "purged_cluster"
	kindGone    = "gone_cluster_runs"
)

// record is one journal line: a put (V set) or a delete (D true) of one object.
type record struct {
	K  string          `json:"k"`
	ID string          `json:"id"`
	V  json.RawMessage `json:"v,omitempty"`
	D  bool            `json:"d,omitempty"`
}

func (st *state) apply(rec record) error {
	if rec.D {
		switch rec.K {
		case kindUser:
			if u, ok := st.Users[rec.ID]; ok {
				delete(st.byName, strings.ToLower(u.UserName))
				delete(st.Users, rec.ID)
			}
		case kindAssign:
			id, err := strconv.ParseInt(rec.ID, 10, 64)
			if err != nil {
				return err
			}
			delete(st.Assign, id)
		case kindCatalog:
			delete(st.Catalogs, rec.ID)
		case kindSchema:
			delete(st.Schemas, rec.ID)
		case kindGrant:
			delete(st.Grants, rec.ID)
		case kindCluster:
			delete(st.Clusters, rec.ID)
		case kindToken:
			delete(st.Tokens, rec.ID)
		case kindPurged:
			delete(st.Purged, rec.ID)
		case kindGone:
			delete(st.Gone, rec.ID)
		default:
			return fmt.Errorf("unknown kind %q", rec.K)
		}
		return nil
	}
	switch rec.K {
	case kindUser:
		var u user
		if err := json.Unmarshal(rec.V, &u); err != nil {
			return err
		}
		if old, ok := st.Users[u.ID]; ok {
			delete(st.byName, strings.ToLower(old.UserName))
		}
		st.Users[u.ID] = &u
		st.byName[strings.ToLower(u.UserName)] = u.ID
		st.bumpSeq(u.Seq)
	case kindAssign:
		var a assignment
		if err := json.Unmarshal(rec.V, &a); err != nil {
			return err
		}
		st.Assign[a.PrincipalID] = &a
		st.bumpSeq(a.Seq)
	case kindCatalog:
		var c ucCatalog
		if err := json.Unmarshal(rec.V, &c); err != nil {
			return err
		}
		st.Catalogs[rec.ID] = &c
		st.bumpSeq(c.Seq)
	case kindSchema:
		var sc schema
		if err := json.Unmarshal(rec.V, &sc); err != nil {
			return err
		}
		st.Schemas[rec.ID] = &sc
		st.bumpSeq(sc.Seq)
	case kindGrant:
		var g map[string][]string
		if err := json.Unmarshal(rec.V, &g); err != nil {
			return err
		}
		st.Grants[rec.ID] = g
	case kindCluster:
		var cl cluster
		if err := json.Unmarshal(rec.V, &cl); err != nil {
			return err
		}
		st.Clusters[rec.ID] = &cl
		st.bumpSeq(cl.Seq)
	case kindToken:
		var name string
		if err := json.Unmarshal(rec.V, &name); err != nil {
			return err
		}
		st.Tokens[rec.ID] = name
	case kindPurged:
		var at int64
		if err := json.Unmarshal(rec.V, &at); err != nil {
			return err
		}
		st.Purged[rec.ID] = at
	case kindGone:
		var t runTotals
		if err := json.Unmarshal(rec.V, &t); err != nil {
			return err
		}
		st.Gone[rec.ID] = &t
	default:
		return fmt.Errorf("unknown kind %q", rec.K)
	}
	return nil
}

// snapshot lists put records for every object, in a stable order.
func (st *state) snapshot() []record {
	var recs []record
	put := func(kind, id string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // all state types marshal
		}
		recs = append(recs, record{K: kind, ID: id, V: b})
	}
	for _, id := range slices.Sorted(maps.Keys(st.Users)) {
		put(kindUser, id, st.Users[id])
	}
	ids := make([]int64, 0, len(st.Assign))
	for id := range st.Assign {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		put(kindAssign, strconv.FormatInt(id, 10), st.Assign[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.Catalogs)) {
		put(kindCatalog, id, st.Catalogs[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.Schemas)) {
		put(kindSchema, id, st.Schemas[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.Grants)) {
		put(kindGrant, id, st.Grants[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.Clusters)) {
		put(kindCluster, id, st.Clusters[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.Tokens)) {
		put(kindToken, id, st.Tokens[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.Purged)) {
		put(kindPurged, id, st.Purged[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.Gone)) {
		put(kindGone, id, st.Gone[id])
	}
	return recs
}

// journal is an append-only JSON-lines file of mutations. Each answered mutation is
// written (not fsynced) before the answer, so killing the process loses nothing
// that was answered; the file is compacted to one record per object on open and
// close.
type journal struct {
	path string
	f    *os.File
	log  *slog.Logger
}

func openJournal(path string, st *state, log *slog.Logger) (*journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var rec record
		err := json.Unmarshal(line, &rec)
		if err == nil {
			err = st.apply(rec)
		}
		if err != nil {
			if i == len(lines)-1 {
				// A torn final line from a killed process: it was never answered.
				log.Warn("ignoring torn last journal line", "path", path, "line", i+1, "err", err)
				continue
			}
			return nil, fmt.Errorf("read state %s line %d: %w", path, i+1, err)
		}
	}
	j := &journal{path: path, log: log}
	if err := j.compact(st); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	j.f = f
	return j, nil
}

// compact rewrites the journal as one put per object (write to a temp file, rename).
func (j *journal) compact(st *state) error {
	tmp := j.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("compact state %s: %w", j.path, err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	for _, rec := range st.snapshot() {
		b, _ := json.Marshal(rec)
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("compact state %s: %w", j.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("compact state %s: %w", j.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("compact state %s: %w", j.path, err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("compact state %s: %w", j.path, err)
	}
	return nil
}

func (j *journal) append(rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = j.f.Write(b)
	return err
}

func (j *journal) close(st *state) error {
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("close state %s: %w", j.path, err)
	}
	return j.compact(st)
}

// put records an object change in the journal. Callers hold s.mu.
func (s *Server) put(kind, id string, v any) {
	if s.journal == nil || s.closed {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = s.journal.append(record{K: kind, ID: id, V: b})
	}
	if err != nil {
		s.log.Error("write state journal", "kind", kind, "id", id, "err", err)
	}
}

// del records an object removal in the journal. Callers hold s.mu.
func (s *Server) del(kind, id string) {
	if s.journal == nil || s.closed {
		return
	}
	if err := s.journal.append(record{K: kind, ID: id, D: true}); err != nil {
		s.log.Error("write state journal", "kind", kind, "id", id, "err", err)
	}
}
