package filecast_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/filecast/filecast/internal/redistest"
)

// TestMain fails the package's tests if a goroutine is still running once
// they all returned: every goroutine a Client starts has an owner that
// waits for it (STYLE.md, rule 7).
func TestMain(m *testing.M) { goleak.VerifyTestMain(pooled{m}) }

// pooled runs the tests, then stops the Redis Clusters they shared, so
// their clients' goroutines are gone before goleak looks.
type pooled struct{ m *testing.M }

func (p pooled) Run() int { return redistest.Main(p.m) }
