package redistest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections from a local listener to a target address
// and can inject faults: cut connections, added latency and a black hole.
//
// Every connection accepted by the proxy is forwarded over its own new
// connection to the target.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // canceled by Close, aborts dials to the target
	cancel context.CancelFunc
	wg     sync.WaitGroup // all goroutines started by the proxy

	mu        sync.Mutex
	conns     map[*proxyConn]struct{}
	delay     time.Duration
	blackhole bool
	closed    bool
	closeErr  error
}

// proxyConn is one proxied connection. Its fields are guarded by Proxy.mu.
type proxyConn struct {
	client net.Conn
	server net.Conn      // nil until dialed, or for black-holed connections
	done   chan struct{} // closed when the connection is closed
	closed bool
}

// NewProxy starts a proxy listening on a free 127.0.0.1 port that forwards
// to target, a TCP address, and registers Close with t.Cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target: target,
		ln:     ln,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*proxyConn]struct{}),
	}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { p.Close() })
	return p
}

// Addr returns the proxy's listening address, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns "redis://" + Addr() + "/0".
func (p *Proxy) URL() string { return "redis://" + p.Addr() + "/0" }

// Conns returns the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// SetDelay makes the proxy wait d before forwarding each chunk of data, in
// both directions. Zero means no delay.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Blackhole turns the black hole on or off. While it is on, connections
// stay open but data read from either side is dropped, and new connections
// are accepted but never forwarded. Turning it off cuts every open
// connection, since all of them may have lost data; clients must
// reconnect.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	was := p.blackhole
	p.blackhole = on
	p.mu.Unlock()
	if was && !on {
		p.Cut()
	}
}

// Cut closes every open connection, on both sides. New connections are
// still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, pc := range conns {
		p.closeConn(pc)
	}
}

// Close stops listening, closes every connection and waits for all of the
// proxy's goroutines to exit. Calling Close again returns the same error.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return p.closeErr
	}
	p.closed = true
	p.closeErr = p.ln.Close()
	p.mu.Unlock()
	p.cancel()
	p.Cut()
	p.wg.Wait()
	return p.closeErr
}

// serve accepts connections until the listener is closed.
func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure, such as running out of file descriptors.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		pc := &proxyConn{client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[pc] = struct{}{}
		hole := p.blackhole
		p.mu.Unlock()
		p.wg.Add(1)
		if hole {
			go p.pipe(pc, nil, c)
		} else {
			go p.connect(pc)
		}
	}
}

// connect dials the target for pc and starts forwarding.
func (p *Proxy) connect(pc *proxyConn) {
	defer p.wg.Done()
	var d net.Dialer
	s, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		p.closeConn(pc)
		return
	}
	p.mu.Lock()
	if pc.closed { // cut while dialing
		p.mu.Unlock()
		s.Close()
		return
	}
	pc.server = s
	p.mu.Unlock()
	p.wg.Add(2)
	go p.pipe(pc, s, pc.client)
	go p.pipe(pc, pc.client, s)
}

// pipe copies from src to dst, applying the delay and black hole, until
// either side fails; then it closes pc. A nil dst discards everything.
func (p *Proxy) pipe(pc *proxyConn, dst, src net.Conn) {
	defer p.wg.Done()
	defer p.closeConn(pc)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			delay := p.delay
			p.mu.Unlock()
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-pc.done:
					t.Stop()
					return
				}
			}
			p.mu.Lock()
			hole := p.blackhole
			p.mu.Unlock()
			if !hole && dst != nil {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// closeConn closes both sides of pc and forgets it. It is idempotent.
func (p *Proxy) closeConn(pc *proxyConn) {
	p.mu.Lock()
	if pc.closed {
		p.mu.Unlock()
		return
	}
	pc.closed = true
	delete(p.conns, pc)
	server := pc.server
	p.mu.Unlock()
	close(pc.done)
	pc.client.Close()
	if server != nil {
		server.Close()
	}
}
