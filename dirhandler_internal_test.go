package filecast

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A receiver SIGKILLed between writing its probe and removing it left the
// probe in the target directory (found by TestChaosReceiverKilled); the
// next receiver removes the probes of processes that are gone, and only
// those.
func TestDeadReceiversProbesRemoved(t *testing.T) {
	dir := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := probePrefix + strconv.Itoa(gone.Process.Pid)
	alive := probePrefix + strconv.Itoa(os.Getppid())
	for _, name := range []string{dead, alive} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	removeDeadProbes(root)
	if _, err := os.Stat(filepath.Join(dir, dead)); !os.IsNotExist(err) {
		t.Errorf("the probe of a process that is gone is still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, alive)); err != nil {
		t.Errorf("the probe of a running process was removed: %v", err)
	}
}
