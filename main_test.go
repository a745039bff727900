package filecast_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/filecast/filecast/internal/redistest"
)

// TestMain fails the package's tests if a goroutine is still running once
// they all returned: every goroutine a Client starts has an owner that
// waits for it (STYLE.md, rule 7).
//
// One goroutine of rueidis is let be: after a cluster's topology changed
// (a failover, a slot moved), rueidis closes the connections to the nodes
// it dropped 5 s later, from a goroutine that sleeps until then and ends by
// itself (cluster.go, _refresh); a test that moved slots just before it
// ended leaves one behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pooled{m},
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"))
}

// pooled runs the tests, then stops the Redis Clusters they shared, so
// their clients' goroutines are gone before goleak looks.
type pooled struct{ m *testing.M }

func (p pooled) Run() int { return redistest.Main(p.m) }
