package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
)

// --metrics-addr: send and recv serve Prometheus metrics over HTTP, from a
// registry of their own. The library keeps counters (Client.Stats); a
// collector turns them into metrics on each scrape, with the channel's
// group lag and budget read from Redis (Client.Status), cached briefly.
// docs/OPERATIONS.md lists every metric.

// addMetricsFlag defines --metrics-addr on a command.
func addMetricsFlag(cmd *cobra.Command, addr *string) {
	cmd.Flags().StringVar(addr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics while running (e.g. :9464 or 127.0.0.1:9464)")
}

// metricsServer serves the metrics of one client and channel at
// http://ADDR/metrics. A nil *metricsServer (no --metrics-addr) does
// nothing.
type metricsServer struct {
	closeOnce sync.Once
	ln        net.Listener
	log       *slog.Logger
	channel   string
	ctx       context.Context // ends at Close: a scrape waiting on Redis gives up
	cancel    context.CancelFunc
	srv       *http.Server
	done      chan struct{} // closed when srv.Serve has returned
}

// listenMetrics opens addr for metrics, before the command connects to
// Redis or sends anything. A malformed address is a usage error (exit 2); a
// port in use or not permitted is an error of the moment (exit 1: a
// service restarts and tries again). An empty addr returns nil. The caller
// defers Close, and calls Serve once it has a client.
func listenMetrics(g *globals, addr, channel string) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	if _, err := strconv.ParseUint(addr, 10, 16); err == nil { // a port alone
		return nil, usagef("--metrics-addr %s: give HOST:PORT or :PORT; to listen on port %s on every interface, write :%s", addr, addr, addr)
	}
	ln, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("--metrics-addr %s: address already in use (by another process: choose a free port)", addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("--metrics-addr %s: not permitted to listen there (ports below 1024 need privileges)", addr)
	case err != nil:
		return nil, usagef("--metrics-addr %s: %v (give HOST:PORT or :PORT, e.g. :9464)", addr, errors.Unwrap(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &metricsServer{ln: ln, log: g.logger(), channel: channel, ctx: ctx, cancel: cancel}, nil
}

// Serve starts answering scrapes with the metrics of c, from a registry of
// its own, until Close.
func (m *metricsServer) Serve(c *filecast.Client) {
	if m == nil {
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&metricsCollector{ctx: m.ctx, c: c, channel: m.channel, log: m.log},
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		m.srv.Serve(m.ln) // returns at Shutdown or Close
	}()
	m.log.Info("serving Prometheus metrics", "url", "http://"+m.ln.Addr().String()+"/metrics")
}

// Close stops serving: it lets the scrapes in progress finish (for up to
// 5 seconds; then their connections are closed), closes the port and waits
// for the serving goroutine. A command closes it before the Client the
// scrapes read; closing it again does nothing.
func (m *metricsServer) Close() {
	if m == nil {
		return
	}
	m.closeOnce.Do(m.close)
}

func (m *metricsServer) close() {
	m.cancel()
	if m.srv == nil { // never served
		m.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m.srv.Shutdown(ctx) != nil {
		m.srv.Close()
	}
	<-m.done
}

// Reading the channel's status costs a few round trips per file in it:
// scrapes within statusFresh of a read share it, and a read that takes
// longer than statusTimeout (a slow or unreachable Redis) fails the
// channel's metrics, not the scrape.
const (
	statusFresh   = 2 * time.Second
	statusTimeout = 3 * time.Second
)

// metricsCollector makes the metrics of one client and one channel. It
// copies nothing in the background: every scrape reads Client.Stats, and
// the channel's status if the last read is older than statusFresh.
type metricsCollector struct {
	ctx     context.Context // ends when the server stops
	c       *filecast.Client
	channel string
	log     *slog.Logger

	mu     sync.Mutex // held while the status is read: scrapes share one read
	status *filecast.ChannelStatus
	readAt time.Time
	errors int64 // failed status reads
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("filecast_"+name, help, labels, nil)
}

var (
	mFilesSent     = desc("files_sent_total", "Files this process completed sending (files a rerun skipped as sent before are not counted).")
	mBytesSent     = desc("bytes_sent_total", "Bytes of file data this process stored in Redis, counted as they are committed.")
	mFilesReceived = desc("files_received_total", "Files this process handled and acknowledged.")
	mBytesReceived = desc("bytes_received_total", "Bytes of the files this process handled and acknowledged, counted once each file is acknowledged.")
	mBytesRead     = desc("bytes_read_total", "Verified bytes this process read from Redis and handed on, counted as they arrive (a retried file counts again).")
	mFailures      = desc("failures_total", "Files that did not go through, by kind: corrupt (integrity check failed), local (receiver blocked by a fault of its own side), handler (handler kept failing, file given up), lost (taken over by another member), aborted (by the sender), gone (no longer in Redis), send (a send failed).", "kind")
	mIntegrity     = desc("integrity_errors_total", "Reads of a file that found data failing its integrity check (chunk digest or length, whole-file digest or size, damaged index).")
	mRetries       = desc("retries_total", "Handler attempts beyond each file's first.")
	mInFlight      = desc("files_in_flight", "Files being sent (direction=send) or handled (direction=receive) now.", "direction")
	mWaits         = desc("budget_waits_total", "Times a sender found the channel's budget full and had to wait.")
	mWaited        = desc("budget_wait_seconds_total", "Time senders spent waiting for budget, counted when each wait ends.")
	mWaiting       = desc("budget_waiting", "Senders waiting for budget now.")
	mRoundTrip     = desc("redis_roundtrip_seconds", "How long Redis took to answer the commands that control transfers (not blocking reads, not chunk values).")
	mUp            = desc("up", "1 if the last read of the channel's status from Redis succeeded, else 0 (the channel's metrics are then left out).", "channel")
	mStatusErrors  = desc("status_errors_total", "Reads of the channel's status from Redis that failed or timed out.", "channel")
	mBudgetBytes   = desc("budget_bytes", "Bytes of file data the channel holds in Redis.", "channel")
	mBudgetMax     = desc("budget_max_bytes", "The channel's budget: the most bytes of file data it may hold in Redis.", "channel")
	mLagFiles      = desc("group_lag_files", "Files the group has not acknowledged yet (delivered or not).", "channel", "group")
	mLagBytes      = desc("group_lag_bytes", "Bytes of the files the group has not acknowledged (expected size of those still uploading).", "channel", "group")
	mLagAge        = desc("group_lag_seconds", "Age of the oldest file the group has not acknowledged (0 if none).", "channel", "group")
	mBlocked       = desc("group_blocked_members", "Members of the group blocked by a fault of their own side (disk full, target unwritable).", "channel", "group")
	mDeadLetters   = desc("group_failed_files", "Files the group gave up on and still keeps (dead letters: filecast retry delivers them again).", "channel", "group")
)

var allDescs = []*prometheus.Desc{mFilesSent, mBytesSent, mFilesReceived, mBytesReceived, mBytesRead, mFailures, mIntegrity,
	mRetries, mInFlight, mWaits, mWaited, mWaiting, mRoundTrip, mUp, mStatusErrors, mBudgetBytes, mBudgetMax,
	mLagFiles, mLagBytes, mLagAge, mBlocked, mDeadLetters}

func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	s := m.c.Stats()
	counter(mFilesSent, float64(s.FilesSent))
	counter(mBytesSent, float64(s.BytesSent))
	counter(mFilesReceived, float64(s.FilesReceived))
	counter(mBytesReceived, float64(s.BytesReceived))
	counter(mBytesRead, float64(s.BytesRead))
	f := s.Failures
	for _, k := range []struct {
		kind string
		n    int64
	}{{"corrupt", f.Corrupt}, {"local", f.Local}, {"handler", f.Handler}, {"lost", f.Lost},
		{"aborted", f.Aborted}, {"gone", f.Gone}, {"send", f.Send}} {
		counter(mFailures, float64(k.n), k.kind)
	}
	counter(mIntegrity, float64(s.IntegrityErrors))
	counter(mRetries, float64(s.Retries))
	gauge(mInFlight, float64(s.Sending), "send")
	gauge(mInFlight, float64(s.Receiving), "receive")
	counter(mWaits, float64(s.BudgetWaits))
	counter(mWaited, s.BudgetWaited.Seconds())
	gauge(mWaiting, float64(s.WaitingForBudget))
	rt := s.RoundTrip
	buckets := make(map[float64]uint64, len(rt.Bounds))
	for i, b := range rt.Bounds {
		buckets[b.Seconds()] = rt.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(mRoundTrip, rt.Count, rt.Sum.Seconds(), buckets)

	st, errs := m.readStatus()
	counter(mStatusErrors, float64(errs), m.channel)
	if st == nil {
		gauge(mUp, 0, m.channel)
		return
	}
	gauge(mUp, 1, m.channel)
	gauge(mBudgetBytes, float64(st.Bytes), m.channel)
	gauge(mBudgetMax, float64(st.MaxBytes), m.channel)
	now := time.Now()
	for _, g := range st.Groups {
		age := 0.0
		if !g.Oldest.IsZero() {
			age = max(now.Sub(g.Oldest).Seconds(), 0)
		}
		blocked, kept := 0, 0
		for _, mb := range g.Members {
			if mb.Blocked != nil {
				blocked++
			}
		}
		for _, ff := range g.Failed {
			if ff.State == "kept" {
				kept++
			}
		}
		gauge(mLagFiles, float64(g.Unacked), m.channel, g.Name)
		gauge(mLagBytes, float64(g.UnackedBytes), m.channel, g.Name)
		gauge(mLagAge, age, m.channel, g.Name)
		gauge(mBlocked, float64(blocked), m.channel, g.Name)
		gauge(mDeadLetters, float64(kept), m.channel, g.Name)
	}
}

// readStatus returns the channel's status, read again if the last read is
// older than statusFresh (nil if that read failed), and how many reads
// failed so far.
func (m *metricsCollector) readStatus() (*filecast.ChannelStatus, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readAt.IsZero() || time.Since(m.readAt) >= statusFresh {
		ctx, cancel := context.WithTimeout(m.ctx, statusTimeout)
		st, err := m.c.Status(ctx, m.channel)
		cancel()
		m.status, m.readAt = st, time.Now()
		if err != nil {
			m.status = nil
			m.errors++
			m.log.Debug("metrics: read the channel's status", "channel", m.channel, "err", err)
		}
	}
	return m.status, m.errors
}
