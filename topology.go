package filecast

import (
	"context"

	"github.com/filecast/filecast/internal/store"
)

// Topology describes what a client is connected to.
type Topology struct {
	// Mode is "standalone", "cluster" (a Redis Cluster: a file's chunks
	// spread over every primary) or "sentinel" (a primary found by Sentinel).
	Mode      string `json:"mode"`
	Primaries int    `json:"primaries"` // primaries serving data (1 unless a cluster)
	Replicas  int    `json:"replicas"`  // their replicas, in all
	Server    string `json:"server"`    // server name and version
}

func (t Topology) String() string {
	return store.Topology{Mode: t.Mode, Primaries: t.Primaries, Replicas: t.Replicas, Server: t.Server}.String()
}

// Topology returns what the client is connected to.
func (c *Client) Topology(ctx context.Context) (Topology, error) {
	t, err := c.st.Topology(ctx)
	return Topology{Mode: t.Mode, Primaries: t.Primaries, Replicas: t.Replicas, Server: t.Server}, err
}
