// Cluster listing and the catalogues (Spark versions, node types).

package emulator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

var clusterStates = map[string]bool{"PENDING": true, "RUNNING": true, "RESTARTING": true, "RESIZING": true, "TERMINATING": true, "TERMINATED": true, "ERROR": true, "UNKNOWN": true}

const maxClusterPage = 100

func (s *Server) listClusters(c *call) {
	q := c.r.URL.Query()
	states := map[string]bool{}
	for _, v := range q["filter_by.cluster_states"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.ToUpper(strings.TrimSpace(st))
			if st == "" {
				continue
			}
			if !clusterStates[st] {
				c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid cluster state %s.", st))
				return
			}
			states[st] = true
		}
	}
	sources := map[string]bool{}
	for _, v := range q["filter_by.cluster_sources"] {
		for _, src := range strings.Split(v, ",") {
			if src = strings.ToUpper(strings.TrimSpace(src)); src != "" {
				sources[src] = true
			}
		}
	}
	policy := q.Get("filter_by.policy_id")
	pinned := q.Get("filter_by.is_pinned") == "true"
	if v := q.Get("filter_by.is_pinned"); v != "" && v != "true" && v != "false" {
		c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid filter_by.is_pinned %q.", v))
		return
	}
	size := maxClusterPage
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid page_size %q.", v))
			return
		}
		if n > 0 {
			size = min(n, maxClusterPage)
		}
	}
	from := 0
	if tok := q.Get("page_token"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "c:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "c:") || n < 0 {
			c.fail(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid page token %q.", tok))
			return
		}
		from = n
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeClusters(s.now())
	var matches []*cluster
	for _, cl := range s.st.Clusters {
		if len(states) > 0 && !states[cl.State] {
			continue
		}
		if policy != "" && fmt.Sprint(cl.Spec["policy_id"]) != policy {
			continue
		}
		if len(sources) > 0 && !sources["API"] {
			continue
		}
		if pinned && !cl.Pinned {
			continue
		}
		matches = append(matches, cl)
	}
	sort.Slice(matches, func(i, j int) bool { return matches[i].Seq > matches[j].Seq })
	from = min(from, len(matches))
	to := min(from+size, len(matches))
	out := []map[string]any{}
	for _, cl := range matches[from:to] {
		out = append(out, s.render(cl))
	}
	resp := map[string]any{"clusters": out}
	if to < len(matches) {
		resp["next_page_token"] = base64.RawURLEncoding.EncodeToString([]byte("c:" + strconv.Itoa(to)))
	}
	if from > 0 {
		resp["prev_page_token"] = base64.RawURLEncoding.EncodeToString([]byte("c:" + strconv.Itoa(max(0, from-size))))
	}
	c.ok(resp)
}

func (s *Server) sparkVersions(c *call) {
	c.ok(map[string]any{"versions": sparkVersions})
}

func (s *Server) listNodeTypes(c *call) {
	out := make([]map[string]any, 0, len(nodeTypes))
	for _, n := range nodeTypes {
		out = append(out, n.render())
	}
	c.ok(map[string]any{"node_types": out})
}
