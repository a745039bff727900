package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// scrape reads url over HTTP and parses the Prometheus text it serves.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s\n%s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the metrics of %s: %v", url, err)
	}
	return mfs
}

// metricValue returns the value of the sample of name whose labels
// include labels (name=value pairs), and whether there is one. A
// histogram's value is its sample count.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// metric is metricValue, failing the test if there is no such sample.
func metric(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metricValue(mfs, name, labels...)
	if !ok {
		t.Fatalf("no sample %s%q in the metrics", name, labels)
	}
	return v
}

// waitMetric scrapes url until the sample of name has value want.
func waitMetric(t *testing.T, url string, want float64, name string, labels ...string) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mfs := scrape(t, url)
		v, ok := metricValue(mfs, name, labels...)
		if ok && v == want {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%q = %v (present: %v), want %v", name, labels, v, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var metricsURL = regexp.MustCompile(`url=(http://\S+/metrics)`)

// metricsURLOf waits for a process run with -v --metrics-addr to say where
// it serves its metrics.
func metricsURLOf(t *testing.T, p *proc) string {
	t.Helper()
	var url string
	waitFor(t, 20*time.Second, "filecast "+quoteArgs(p.args)+" to serve metrics", func() bool {
		if p.exited() {
			t.Fatalf("exited before serving metrics:\n%s", p.wait())
		}
		if m := metricsURL.FindStringSubmatch(p.stderr()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return url
}

// --metrics-addr on send and recv: both serve their counters over HTTP
// while a live file is on its way and after it arrived, with the group lag
// of a group that reads nothing, and stop serving when they exit.
func TestCLIMetrics(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	out := t.TempDir()
	joinGroups(t, c.url, "m", "lazy")
	recv := c.start("recv", "m", "--group", "g", "--dir", out, "--metrics-addr", "127.0.0.1:0", "-v")
	recvURL := metricsURLOf(t, recv)
	waitJoined(t, c.srv, "m", "g", recv)

	send := c.startPiped("send", "m", "-", "--name", "live.log", "--metrics-addr", "127.0.0.1:0", "-v")
	sendURL := metricsURLOf(t, send)
	data := randomBytes(31, 10000)
	if _, err := send.stdin.Write(data); err != nil {
		t.Fatal(err)
	}
	// While the upload is open: in flight on both sides, every byte stored
	// and read, nothing completed yet.
	mfs := waitMetric(t, sendURL, float64(len(data)), "filecast_bytes_sent_total")
	if v := metric(t, mfs, "filecast_files_in_flight", "direction", "send"); v != 1 {
		t.Errorf("sender: files_in_flight{send} = %v during the upload, want 1", v)
	}
	if v := metric(t, mfs, "filecast_files_sent_total"); v != 0 {
		t.Errorf("sender: files_sent_total = %v during the upload, want 0", v)
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Errorf("sender: no go_goroutines: the Go collector is not registered")
	}
	if _, ok := mfs["process_cpu_seconds_total"]; !ok {
		t.Errorf("sender: no process_cpu_seconds_total: the process collector is not registered")
	}
	mfs = waitMetric(t, recvURL, float64(len(data)), "filecast_bytes_read_total")
	if v := metric(t, mfs, "filecast_files_in_flight", "direction", "receive"); v != 1 {
		t.Errorf("receiver: files_in_flight{receive} = %v while the file arrives, want 1", v)
	}
	if v := metric(t, mfs, "filecast_files_received_total"); v != 0 {
		t.Errorf("receiver: files_received_total = %v before the file ended, want 0", v)
	}

	send.stdin.Close()
	expectOK(t, send.wait())
	if _, err := http.Get(sendURL); err == nil {
		t.Errorf("the sender's metrics are still served after it exited")
	}

	mfs = waitMetric(t, recvURL, 1, "filecast_files_received_total")
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"filecast_bytes_received_total", nil, float64(len(data))},
		{"filecast_files_in_flight", []string{"direction", "receive"}, 0},
		{"filecast_failures_total", []string{"kind", "corrupt"}, 0},
		{"filecast_integrity_errors_total", nil, 0},
		{"filecast_up", []string{"channel", "m"}, 1},
	} {
		if v := metric(t, mfs, m.name, m.labels...); v != m.want {
			t.Errorf("receiver: %s%q = %v, want %v", m.name, m.labels, v, m.want)
		}
	}
	if v := metric(t, mfs, "filecast_redis_roundtrip_seconds"); v == 0 {
		t.Errorf("receiver: no Redis round trip observed")
	}
	// The status is cached for a moment: wait for one read after the ack.
	mfs = waitMetric(t, recvURL, 0, "filecast_group_lag_files", "channel", "m", "group", "g")
	if v := metric(t, mfs, "filecast_group_lag_files", "channel", "m", "group", "lazy"); v != 1 {
		t.Errorf("group_lag_files{lazy} = %v, want 1", v)
	}
	if v := metric(t, mfs, "filecast_group_lag_bytes", "channel", "m", "group", "lazy"); v != float64(len(data)) {
		t.Errorf("group_lag_bytes{lazy} = %v, want %d", v, len(data))
	}
	if v := metric(t, mfs, "filecast_group_lag_seconds", "channel", "m", "group", "lazy"); v <= 0 {
		t.Errorf("group_lag_seconds{lazy} = %v, want the age of the file it has not read", v)
	}
	if v := metric(t, mfs, "filecast_budget_bytes", "channel", "m"); v != float64(len(data)) {
		t.Errorf("budget_bytes = %v, want %d (held for lazy)", v, len(data))
	}
	if v := metric(t, mfs, "filecast_budget_max_bytes", "channel", "m"); v != float64(filecast.DefaultMaxBytes) {
		t.Errorf("budget_max_bytes = %v, want %d", v, filecast.DefaultMaxBytes)
	}

	recv.signal(syscall.SIGTERM)
	if r := recv.wait(); r.code != exitInterrupted {
		t.Errorf("recv after SIGTERM: want exit %d:\n%s", exitInterrupted, r)
	}
	if _, err := http.Get(recvURL); err == nil {
		t.Errorf("the receiver's metrics are still served after it exited")
	}
	sameFile(t, filepath.Join(out, "live.log"), data)
}

// A corrupt chunk shows as an integrity error and a corrupt failure in
// the receiver's metrics.
func TestCLIMetricsCorrupt(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "mc", "g")
	expectOK(t, c.run("send", "mc", writeTemp(t, "f.bin", string(randomBytes(32, 200_000))), "--chunk-size", "64KiB"))
	keys := chunksOf(c.srv, "mc", "2")
	if len(keys) != 1 {
		t.Fatalf("chunk 2 keys: %q, want one", keys)
	}
	c.srv.MustDo(t, "SETRANGE", keys[0], "10", "XYZ")
	recv := c.start("recv", "mc", "--group", "g", "--dir", t.TempDir(), "--metrics-addr", "127.0.0.1:0", "-v")
	url := metricsURLOf(t, recv)
	mfs := waitMetric(t, url, 1, "filecast_failures_total", "kind", "corrupt")
	if v := metric(t, mfs, "filecast_integrity_errors_total"); v != 1 {
		t.Errorf("integrity_errors_total = %v, want 1", v)
	}
	if v := metric(t, mfs, "filecast_files_received_total"); v != 0 {
		t.Errorf("files_received_total = %v, want 0", v)
	}
	waitMetric(t, url, 1, "filecast_group_failed_files", "channel", "mc", "group", "g")
}

// An address that cannot be served is refused before anything is sent or
// joined: a port in use with exit 1 (a service restarts and tries again),
// nonsense as a usage error (exit 2).
func TestCLIMetricsAddrRefused(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	joinGroups(t, c.url, "busy", "g")
	file := writeTemp(t, "f.txt", "hello\n")

	r := c.run("send", "busy", file, "--metrics-addr", busy)
	expectFail(t, r, exitError, "--metrics-addr "+busy, "address already in use")
	if ids := liveIDs(t, c.srv, "busy"); len(ids) != 0 {
		t.Errorf("files sent despite the refused address: %q", ids)
	}
	r = c.run("send", "busy", file, "--follow", "--metrics-addr", busy)
	expectFail(t, r, exitError, "--metrics-addr", "address already in use")
	r = c.run("send", "busy", "--watch", t.TempDir(), "--metrics-addr", busy)
	expectFail(t, r, exitError, "--metrics-addr", "address already in use")
	r = c.run("recv", "busy", "--group", "other", "--stdout", "--metrics-addr", busy)
	expectFail(t, r, exitError, "--metrics-addr", "address already in use")
	if hasGroup(c.srv, "busy", "other") {
		t.Errorf("recv joined its group despite the refused address")
	}
	r = c.run("recv", "busy", "--group", "g", "--stdout", "--metrics-addr", "no-port")
	expectFail(t, r, exitUsage, "--metrics-addr no-port")
	// Refused before connecting: a usage error comes first.
	r = c.run("send", "busy", file, "--metrics-addr", busy, "--redis", "redis://127.0.0.1:1/0")
	expectFail(t, r, exitError, "--metrics-addr", "address already in use")
	if ids := liveIDs(t, c.srv, "busy"); len(ids) != 0 {
		t.Errorf("files sent despite the refused address: %q", ids)
	}
}

// The metrics server stops with its command: no goroutine is left and the
// port is closed.
func TestServeMetricsStops(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	ctx := context.Background()
	c, err := filecast.New(ctx, filecast.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Join(ctx, "ch", "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, "ch"); err != nil { // the connections the collector uses are open
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()

	m, err := listenMetrics(&globals{}, "127.0.0.1:0", "ch")
	if err != nil {
		t.Fatal(err)
	}
	m.Serve(c)
	url := "http://" + m.ln.Addr().String() + "/metrics"
	mfs := scrape(t, url)
	if v := metric(t, mfs, "filecast_up", "channel", "ch"); v != 1 {
		t.Errorf("filecast_up = %v, want 1", v)
	}
	m.Close()
	if _, err := http.Get(url); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("scrape after Close: %v, want the connection refused", err)
	}
	// A command that fails to connect closes the port it never served.
	m, err = listenMetrics(&globals{}, "127.0.0.1:0", "ch")
	if err != nil {
		t.Fatal(err)
	}
	addr := m.ln.Addr().String()
	m.Close()
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("the port of a server never served is still open after Close")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after stop, %d before; stacks:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With Redis gone, a scrape still answers, within the status read's
// timeout, with the process's own counters and filecast_up 0 instead of
// the channel's metrics.
func TestServeMetricsRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	ctx := context.Background()
	c, err := filecast.New(ctx, filecast.Options{URL: srv.URL(), RetryFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := listenMetrics(&globals{}, "127.0.0.1:0", "ch")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Serve(c)
	srv.Kill()
	mfs := scrape(t, "http://"+m.ln.Addr().String()+"/metrics")
	if v := metric(t, mfs, "filecast_up", "channel", "ch"); v != 0 {
		t.Errorf("filecast_up = %v with Redis down, want 0", v)
	}
	if v := metric(t, mfs, "filecast_status_errors_total", "channel", "ch"); v != 1 {
		t.Errorf("status_errors_total = %v, want 1", v)
	}
	if _, ok := metricValue(mfs, "filecast_budget_bytes", "channel", "ch"); ok {
		t.Errorf("budget_bytes served with Redis down, want it left out")
	}
	if _, ok := mfs["filecast_files_sent_total"]; !ok {
		t.Errorf("the process's own counters are missing with Redis down")
	}
}
