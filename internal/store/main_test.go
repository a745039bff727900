package store

import (
	"os"
	"testing"

	"github.com/filecast/filecast/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
