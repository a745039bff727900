package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/filecast/filecast"
)

// progress shows the files a command moves: live bars on a terminal, plain
// lines every few seconds with --progress elsewhere, nothing otherwise.
// Messages the command prints while it runs go through Writer, so that on
// a terminal they appear above the bars instead of tearing them.
//
// It polls Client.Transfers for the files in flight; the command reports
// each file it finished with done, for the totals.
type progress struct {
	c       *filecast.Client
	receive bool
	stderr  io.Writer

	mu       sync.Mutex
	bars     *mpb.Progress // nil unless on a terminal
	totalBar *mpb.Bar
	rows     map[string]*row
	total    totals
	stopped  bool
	rate     meter // of the bytes this run moved
	// idleSince is when the last file in flight ended (zero while some are)
	idleSince time.Time
	// what the last --progress lines showed
	lastFiles int
	lastBytes int64

	quit chan struct{}
	wg   sync.WaitGroup
}

// progressMode says how a command shows progress.
type progressMode int

const (
	progressOff   progressMode = iota
	progressBars               // live bars (stderr is a terminal)
	progressLines              // plain lines every --progress-interval
)

// progressModeOf picks the mode: bars where stderr is a terminal that
// carries no JSON, plain lines where asked, else nothing.
func progressModeOf(stderr io.Writer, asked, off, jsonOnStderr bool) progressMode {
	switch {
	case off:
		return progressOff
	case isTerminal(stderr) && !jsonOnStderr:
		return progressBars
	case asked:
		return progressLines
	}
	return progressOff
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// totals sum what a command moved: files done and in flight.
type totals struct {
	wantFiles int   // files to send, 0 if not known (a receiver, a follower)
	wantBytes int64 // their bytes, -1 if not known (stdin among them)
	files     int   // files done
	bytes     int64 // bytes of the files done, resumed ones included
	moved     int64 // bytes this run moved for the files done
}

// startProgress starts showing progress in mode; files and size are what
// a sender is about to send (0 and -1 if not known).
func startProgress(c *filecast.Client, pf progressFlags, mode progressMode, receive bool, stderr io.Writer, files int, size int64) *progress {
	p := &progress{c: c, receive: receive, stderr: stderr, rows: make(map[string]*row), quit: make(chan struct{}),
		total: totals{wantFiles: files, wantBytes: size}}
	switch mode {
	case progressOff:
		return p
	case progressBars:
		p.bars = mpb.New(mpb.WithOutput(stderr), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithWidth(24))
		if files != 1 { // one file's bar says it all
			p.addTotalBar()
		}
	}
	p.wg.Add(1)
	go p.run(mode, pf.every)
	return p
}

// Writer returns where the command prints its messages while p runs.
func (p *progress) Writer() io.Writer { return progressWriter{p} }

type progressWriter struct{ p *progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	bars := w.p.bars
	w.p.mu.Unlock()
	if bars != nil {
		if n, err := bars.Write(b); err == nil {
			return n, nil
		}
	}
	return w.p.stderr.Write(b)
}

// done counts a file the command finished: size bytes, of which moved
// were moved by this run (the rest was resumed or skipped).
func (p *progress) done(size, moved int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total.files++
	p.total.bytes += max(size, 0)
	p.total.moved += max(moved, 0)
}

// Totals returns what the command moved so far.
func (p *progress) Totals() totals {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Stop removes the bars; messages go straight to stderr from then on.
func (p *progress) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.mu.Unlock()
	close(p.quit)
	p.wg.Wait()
	p.mu.Lock()
	bars, rows := p.bars, p.rows
	p.rows = nil
	p.mu.Unlock()
	if bars == nil {
		return
	}
	for _, r := range rows {
		r.drop()
	}
	if p.totalBar != nil {
		p.totalBar.Abort(true)
	}
	bars.Wait() // a last frame without the dropped bars
	p.mu.Lock()
	p.bars = nil
	p.mu.Unlock()
}

func (p *progress) run(mode progressMode, plainEvery time.Duration) {
	defer p.wg.Done()
	every := 200 * time.Millisecond
	if mode == progressLines {
		every = max(plainEvery, 10*time.Millisecond)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-p.quit:
			return
		case now := <-tick.C:
			p.poll(now)
			if mode == progressLines {
				p.printLines()
			}
		}
	}
}

// poll updates a row per file in flight, adding rows for new ones and
// dropping those that ended. It calls the bars without holding p.mu: their
// goroutine takes it to draw the totals.
func (p *progress) poll(now time.Time) {
	seen := make(map[string]bool)
	for _, t := range p.c.Transfers() {
		if t.Receive != p.receive {
			continue
		}
		// Not the ID: a file being sent has none until it is announced.
		key := fmt.Sprint(t.Channel, "\x00", t.Name, "\x00", t.Started.UnixNano())
		seen[key] = true
		p.mu.Lock()
		r, found := p.rows[key]
		if !found {
			r = &row{name: t.Name, size: t.Size}
			p.rows[key] = r
		}
		bars := p.bars
		p.mu.Unlock()
		if !found && bars != nil {
			r.bar = newFileBar(bars, r)
		}
		r.update(t, now)
	}
	var ended []*row
	p.mu.Lock()
	for key, r := range p.rows {
		if !seen[key] {
			ended = append(ended, r)
			delete(p.rows, key)
		}
	}
	_, moved := p.inFlight()
	switch {
	case len(p.rows) > 0:
		p.idleSince = time.Time{}
	case p.idleSince.IsZero():
		p.idleSince = now
	}
	if p.idle(now) {
		p.rate = meter{} // the next file's rate starts afresh
	} else {
		p.rate.sample(p.total.moved+moved, now)
	}
	p.mu.Unlock()
	for _, r := range ended {
		r.drop()
	}
}

// idle reports whether no file has been in flight for a while: small files
// that come and go between two polls keep a sender busy.
func (p *progress) idle(now time.Time) bool {
	return !p.idleSince.IsZero() && now.Sub(p.idleSince) > 2*time.Second
}

// inFlight returns the bytes of the files in flight, and of them those
// this run moved.
func (p *progress) inFlight() (done, moved int64) {
	for _, r := range p.rows {
		s := r.snapshot()
		done += s.done
		moved += s.done - s.resumed
	}
	return done, moved
}

// totalLine describes the totals, for the total bar and --progress.
func (p *progress) totalLine() string {
	p.mu.Lock()
	t := p.total
	done, _ := p.inFlight()
	rate, busy := p.rate.perSecond, !p.idle(time.Now())
	p.mu.Unlock()
	all := t.bytes + done
	var b strings.Builder
	verb := "sent"
	if p.receive {
		verb = "received"
	}
	if t.wantFiles > 0 {
		fmt.Fprintf(&b, "%s %d/%d files", verb, t.files, t.wantFiles)
	} else {
		fmt.Fprintf(&b, "%s %d %s", verb, t.files, plural(t.files, "file", "files"))
	}
	if t.wantFiles > 0 && t.wantBytes > 0 {
		fmt.Fprintf(&b, ", %s of %s (%d%%)", human(all), human(t.wantBytes), min(100, all*100/t.wantBytes))
	} else {
		fmt.Fprintf(&b, ", %s", human(all))
	}
	switch {
	case p.c.Stats().WaitingForBudget > 0:
		b.WriteString(", waiting for budget")
	case !busy && p.receive:
		b.WriteString(", waiting for files")
	case busy:
		fmt.Fprintf(&b, ", %s/s", human(int64(rate)))
		if t.wantFiles > 0 && t.wantBytes > 0 && rate > 0 && all < t.wantBytes {
			fmt.Fprintf(&b, ", ETA %v", eta(t.wantBytes-all, rate))
		}
	}
	return b.String()
}

// printLines prints --progress's lines: one per file in flight that moved
// since the last time, and the totals if anything did. A transfer that
// waits (for budget, for the sender) is not repeated every interval.
func (p *progress) printLines() {
	p.mu.Lock()
	var lines []string
	for _, r := range p.rows {
		if s := r.snapshot(); s.done != r.printed || !r.shown {
			r.printed, r.shown = s.done, true
			lines = append(lines, "progress: "+r.line())
		}
	}
	moved := p.total.files != p.lastFiles || p.total.bytes != p.lastBytes
	p.lastFiles, p.lastBytes = p.total.files, p.total.bytes
	p.mu.Unlock()
	if len(lines) == 0 && !moved {
		return // nothing moved: an idle receiver, a sender waiting, say nothing new
	}
	total := "progress: " + p.totalLine()
	slices.Sort(lines)
	for _, l := range append(lines, total) {
		fmt.Fprintln(p.stderr, l)
	}
}

// row is one file in flight. poll writes it; the bar's decorators read it
// on the bars' goroutine.
type row struct {
	name string
	bar  *mpb.Bar
	// what the last --progress line showed (printLines, under progress.mu)
	printed int64
	shown   bool

	mu      sync.Mutex
	size    int64
	done    int64
	resumed int64
	rate    meter
}

type rowState struct {
	size, done, resumed int64
	rate                float64
}

// update takes a new sample of the file's transfer.
func (r *row) update(t filecast.Transfer, now time.Time) {
	r.mu.Lock()
	r.rate.sample(t.Done-t.Resumed, now)
	r.size, r.done, r.resumed = t.Size, t.Done, t.Resumed
	s := r.state()
	r.mu.Unlock()
	if r.bar != nil {
		if s.size > 0 {
			r.bar.SetTotal(s.size, false)
		}
		r.bar.SetCurrent(s.done)
	}
}

func (r *row) snapshot() rowState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state()
}

func (r *row) state() rowState {
	return rowState{size: r.size, done: r.done, resumed: r.resumed, rate: r.rate.perSecond}
}

// stats describes the row's bytes, rate and ETA: "512.0 MiB of 1.0 GiB
// (50%), 210.3 MiB/s, ETA 3s", or without size and ETA where the size is
// not known.
func (r *row) stats() string {
	s := r.snapshot()
	var b strings.Builder
	if s.size >= 0 {
		pct := int64(100)
		if s.size > 0 {
			pct = s.done * 100 / s.size
		}
		fmt.Fprintf(&b, "%s of %s (%d%%)", human(s.done), human(s.size), pct)
	} else {
		b.WriteString(human(s.done))
	}
	fmt.Fprintf(&b, ", %s/s", human(int64(s.rate)))
	if s.resumed > 0 {
		fmt.Fprintf(&b, ", %s resumed", human(s.resumed))
	}
	if s.size > 0 && s.rate > 0 && s.done < s.size {
		fmt.Fprintf(&b, ", ETA %v", eta(s.size-s.done, s.rate))
	}
	return b.String()
}

func (r *row) line() string { return r.name + " " + r.stats() }

// meter smooths a rate from samples of a growing count.
type meter struct {
	perSecond float64
	last      int64
	at        time.Time
}

// sample records that the count was n at now. The rate follows what moved
// in the last few seconds, not the average since the start: a receiver
// idle for an hour shows the speed of the file it is receiving now.
func (m *meter) sample(n int64, now time.Time) {
	if !m.at.IsZero() && now.After(m.at) {
		inst := max(0, float64(n-m.last)/now.Sub(m.at).Seconds())
		if m.perSecond == 0 {
			m.perSecond = inst
		} else {
			m.perSecond = 0.3*inst + 0.7*m.perSecond
		}
	}
	m.last, m.at = n, now
}

// eta is how long n more bytes take at rate, rounded for people.
func eta(n int64, rate float64) time.Duration {
	d := time.Duration(float64(n) / rate * float64(time.Second))
	if d < time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}

// newFileBar adds a bar for r: its name, the bar (a spinner where the
// size is not known), then its stats.
func newFileBar(bars *mpb.Progress, r *row) *mpb.Bar {
	name := decor.Name(shorten(r.name, 32), decor.WCSyncSpaceR)
	stats := decor.Any(func(decor.Statistics) string { return r.stats() }, decor.WCSyncSpace)
	if r.snapshot().size < 0 {
		return bars.AddSpinner(0, mpb.PrependDecorators(name), mpb.AppendDecorators(stats), mpb.BarPriority(1))
	}
	return bars.AddBar(0, mpb.PrependDecorators(name), mpb.AppendDecorators(stats), mpb.BarPriority(1))
}

// drop removes r's bar, if it has one.
func (r *row) drop() {
	if r.bar != nil {
		r.bar.Abort(true)
	}
}

// addTotalBar adds the line of totals, kept below the files' bars.
func (p *progress) addTotalBar() {
	p.totalBar = p.bars.New(0, mpb.NopStyle(), mpb.BarPriority(1<<30),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return p.totalLine() })))
}

// shorten cuts a long name in the middle, keeping both ends.
func shorten(name string, n int) string {
	r := []rune(name)
	if len(r) <= n {
		return name
	}
	return string(r[:n/2-1]) + "…" + string(r[len(r)-(n-n/2):])
}

// progressFlags are the flags of a command that shows progress.
type progressFlags struct {
	plain, off bool
	every      time.Duration
}

func (pf *progressFlags) add(f *pflag.FlagSet) {
	f.BoolVar(&pf.plain, "progress", false, "print progress lines (each file in flight and the totals) also when stderr is not a terminal, where live bars are shown anyway")
	f.DurationVar(&pf.every, "progress-interval", 2*time.Second, "how often --progress prints its lines")
	f.BoolVar(&pf.off, "no-progress", false, "show no progress bars on a terminal")
}

// mode picks how to show progress on stderr; busy says stderr's terminal
// also shows the command's JSON or data, which bars would tear.
func (pf progressFlags) mode(stderr io.Writer, busy bool) progressMode {
	return progressModeOf(stderr, pf.plain, pf.off, busy)
}
