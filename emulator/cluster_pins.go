// Cluster pins: pin and unpin.

package emulator

import (
	"fmt"
	"net/http"
)

// pinCluster pins (or unpins) a cluster: a pinned cluster is kept after
// termination and cannot be permanently deleted. At most MaxPinnedClusters
// are pinned per workspace.
func (s *Server) pinCluster(pin bool) func(*call) {
	return func(c *call) {
		id, ok := s.clusterIDFromBody(c)
		if !ok {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		cl, ok := s.lookupCluster(c, id)
		if !ok {
			return
		}
		if cl.Pinned == pin {
			c.ok(map[string]any{})
			return
		}
		if pin {
			n := 0
			for _, o := range s.st.Clusters {
				if o.Pinned {
					n++
				}
			}
			if max := s.opts.MaxPinnedClusters; on(max) && n >= max {
				c.fail(http.StatusBadRequest, "QUOTA_EXCEEDED", fmt.Sprintf("Cannot pin cluster %s: the workspace already has %d pinned clusters, the maximum allowed. Unpin a cluster first.", id, n))
				return
			}
			cl.Pinned = true
			s.recordEvent(cl, s.now().UnixMilli(), eventPinned, map[string]any{"user": c.caller.name})
		} else {
			cl.Pinned = false
			cl.UnpinnedAt = s.now().UnixMilli()
			s.recordEvent(cl, cl.UnpinnedAt, eventUnpinned, map[string]any{"user": c.caller.name})
		}
		s.put(kindCluster, cl.ID, cl)
		c.ok(map[string]any{})
	}
}
