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
// Two goroutines of rueidis are let be, each sleeping for a delay it
// chose and then ending by itself, whatever the client's state:
//   - after a cluster's topology changed (a failover, a slot moved), it
//     closes the connections to the nodes it dropped 5 s later
//     (cluster.go, _refresh);
//   - it refreshes a cluster's topology after a random delay of up to a
//     second once a command met a MOVED or a lost node (singleflight.go,
//     DelayDo).
//
// A test that moved slots or stopped a node just before it ended leaves one
// behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pooled{m},
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"))
}

// pooled runs the tests, then stops the Redis Clusters they shared, so
// their clients' goroutines are gone before goleak looks.
type pooled struct{ m *testing.M }

func (p pooled) Run() int { return redistest.Main(p.m) }
