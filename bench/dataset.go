package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/filecast/filecast"
)

// dataset is the generated log files the runs send.
type dataset struct {
	dir      string
	files    []string // paths, in order
	bytes    int64    // as sent (on disk)
	logBytes int64    // uncompressed
	lines    int64
	chunks   [][]byte // the files' bytes cut into chunk-sized values, for the ceilings
}

// prepare generates the dataset for cfg (or finds it in the cache) and
// loads it for the ceilings.
func prepare(ctx context.Context, cfg config, genlogs string, logw *os.File) (*dataset, error) {
	dir := filepath.Join(cfg.Cache, fmt.Sprintf("logs-%d-%d-%d-%d", cfg.Size, cfg.Files, cfg.Gzip, cfg.Seed))
	cmd := exec.CommandContext(ctx, genlogs, "-dir", dir, "-days", fmt.Sprint(cfg.Files),
		"-size", fmt.Sprint(cfg.Size), "-gzip", fmt.Sprint(cfg.Gzip), "-seed", fmt.Sprint(cfg.Seed))
	cmd.Stderr = logw
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("generate the dataset: %w", err)
	}
	var m struct {
		Files []struct {
			Name     string `json:"name"`
			Bytes    int64  `json:"bytes"`
			LogBytes int64  `json:"log_bytes"`
		} `json:"files"`
		Lines int64 `json:"lines"`
	}
	b, err := os.ReadFile(filepath.Join(dir, ".genlogs.json"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return nil, fmt.Errorf("read the dataset's manifest: %w", err)
	}
	d := &dataset{dir: dir, lines: m.Lines}
	for _, f := range m.Files {
		path := filepath.Join(dir, f.Name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		d.files = append(d.files, path)
		d.bytes += int64(len(b))
		d.logBytes += f.LogBytes
		for len(b) > 0 {
			n := min(len(b), filecast.DefaultChunkSize)
			d.chunks = append(d.chunks, b[:n:n])
			b = b[n:]
		}
	}
	return d, nil
}
