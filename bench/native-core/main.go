// PROTOTYPE, NOT THE PRODUCT (issue #12; BENCHMARKS.md, "a native serving core, prototyped").
//
// native-core measures one question: what would kubegate's data path cost if TLS, HTTP/1.1
// framing and the relay ran in compiled code, and kubegate's TypeScript were called ONCE per
// request head for the decision? It is the serving half; decider.ts (beside it) is the
// deciding half and runs kubegate's real admission, token cache, audit trail and metrics.
//
// Design note. The Go side decides nothing. For every request head it sends the raw head
// (method, target, every header line) to the decider over a Unix socket and waits; the
// decider answers either a refusal (status, content type, body: a Kubernetes Status made by
// kubegate) or an admission: which cluster, which path, and the COMPLETE header list for the
// upstream request — already sanitized by kubegate's sanitize step (client credentials,
// Impersonate-*, hop-by-hop headers gone) with the proxy's credential and the identity headers
// added. Go sends exactly that list (it suppresses its own User-Agent, Accept-Encoding, Date
// and sniffed Content-Type) and relays the answer with a flush after every read
// (ReverseProxy's FlushInterval -1), upgrades included, then reports the exchange's end
// (status, bytes, duration) so that the decider writes the audit line and the metrics. A
// cluster's address and CA come from the decider once, before its first admission ('C').
// What stays native by necessity, because it needs the answer and must not cost a second
// call: the response header filter (hop-by-hop, Set-Cookie, headers named in Connection,
// as sanitize.ts's filterResponseHeaders). The rare answers kubegate replaces — an upstream
// 401 to the proxy's credential, a redirect to an upgrade, an unreachable cluster — are
// handed back to the decider ('P'), which answers with its Status: a second call only on
// those paths.
//
// The protocol: lines ending in '\n', fields separated by NUL. Go's HTTP parser refuses NUL,
// CR and LF in request targets, header names and values, and the decider's fields are
// kubegate's sanitized headers and identifiers (identity headers that HTTP cannot carry are
// refused by kubegate) or base64, so no field needs escaping. Requests are multiplexed by an
// id on one connection; one goroutine writes (each burst of frames is one write) and one
// reads.
//
//	Go → decider   Q id method target upgrade(0|1) name value …   a request head (header names sorted)
//	               P id upstreamStatus reason reusedFrom            the upstream failed / answered what kubegate replaces
//	               D id status bytesIn bytesOut durationMicros      the exchange ended
//	               E decidingId status bytesIn bytesOut durationMicros   one served from a cached decision ended
//	decider → Go   C key serverURL caPemBase64 insecure(0|1)       a cluster's upstream (before its first A)
//	               A id key pathAndQuery longRunning hasBody reusableMs name value …
//	               R id status contentType bodyBase64              answer this instead
//	               X id                                             cut this long-running exchange (revocation)
//	               F                                                drop every cached decision
//
// D and E frames are not urgent: they wait for the next urgent frame or lazyFlushInterval.
// The decision cache (variant 2, off unless NATIVE_CORE_DECISION_CACHE=1) is described at
// decisionCache.
//
// If the decider is gone, every request is answered 503 (fail closed).
//
// Usage: native-core PORT CERT_FILE KEY_FILE SOCKET DECIDER_COMMAND… — starts the decider
// (its parent, so the two count as one process tree), waits for its ready line, connects,
// and prints {"ready":true,"port":N,"decider":<the decider's ready line>}.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	relayBufferBytes      = 64 << 10
	responseHeaderTimeout = 120 * time.Second
	lazyFlushInterval     = 50 * time.Millisecond
)

// --- the decider connection ------------------------------------------------------------

type reply struct {
	kind   byte
	fields []string
}

type cluster struct {
	scheme, host string
	transport    *http.Transport
}

type decider struct {
	conn net.Conn
	out  chan []byte
	gone chan struct{}
	// Completion frames wait here for the next urgent frame (or the lazy flush), so that an
	// exchange wakes the decider once, not twice.
	lazyMu sync.Mutex
	lazy   []byte
	// Told when the decider says every reusable decision is void ('F').
	onFlush func()

	mu       sync.Mutex
	dead     bool
	waiting  map[uint64]chan reply
	cuts     map[uint64]func()
	clusters map[string]*cluster
}

func dialDecider(socket string) (*decider, error) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, err
	}
	d := &decider{conn: conn, out: make(chan []byte, 4096), gone: make(chan struct{}), waiting: map[uint64]chan reply{}, cuts: map[uint64]func(){}, clusters: map[string]*cluster{}}
	go d.writeLoop()
	go d.readLoop()
	go d.lazyFlushLoop()
	return d, nil
}

// writeLoop writes frames as they come, after the completions that wait; whatever is queued
// behind one goes in the same write.
func (d *decider) writeLoop() {
	w := bufio.NewWriterSize(d.conn, 64<<10)
	for {
		select {
		case frame := <-d.out:
			d.lazyMu.Lock()
			w.Write(d.lazy)
			d.lazy = d.lazy[:0]
			d.lazyMu.Unlock()
			w.Write(frame)
			for drained := false; !drained; {
				select {
				case more := <-d.out:
					w.Write(more)
				default:
					drained = true
				}
			}
			if err := w.Flush(); err != nil {
				d.fail(err)
				return
			}
		case <-d.gone:
			return
		}
	}
}

// lazyFlushLoop: completions never wait longer than lazyFlushInterval for an urgent frame.
func (d *decider) lazyFlushLoop() {
	ticker := time.NewTicker(lazyFlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			d.lazyMu.Lock()
			waiting := len(d.lazy) > 0
			d.lazyMu.Unlock()
			if waiting {
				d.send(nil)
			}
		case <-d.gone:
			return
		}
	}
}

// sendLazily queues a completion frame for the next write.
func (d *decider) sendLazily(frame []byte) {
	d.lazyMu.Lock()
	d.lazy = append(d.lazy, frame...)
	d.lazyMu.Unlock()
}

func (d *decider) readLoop() {
	r := bufio.NewReaderSize(d.conn, 64<<10)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			d.fail(err)
			return
		}
		fields := strings.Split(line[:len(line)-1], "\x00")
		switch fields[0] {
		case "C":
			if err := d.addCluster(fields[1:]); err != nil {
				log.Printf("decider sent an unusable cluster: %v", err)
			}
		case "A", "R":
			id, _ := strconv.ParseUint(fields[1], 10, 64)
			d.mu.Lock()
			ch := d.waiting[id]
			delete(d.waiting, id)
			d.mu.Unlock()
			if ch != nil {
				ch <- reply{kind: fields[0][0], fields: fields[2:]}
			}
		case "F":
			if d.onFlush != nil {
				d.onFlush()
			}
		case "X":
			id, _ := strconv.ParseUint(fields[1], 10, 64)
			d.mu.Lock()
			cut := d.cuts[id]
			d.mu.Unlock()
			if cut != nil {
				cut()
			}
		}
	}
}

func (d *decider) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return
	}
	d.dead = true
	log.Printf("the decider connection failed: %v", err)
	close(d.gone)
	for id, ch := range d.waiting {
		close(ch)
		delete(d.waiting, id)
	}
}

// ask sends a frame and waits for the decider's answer for id; false when the decider is gone.
func (d *decider) ask(id uint64, frame []byte) (reply, bool) {
	ch := make(chan reply, 1)
	d.mu.Lock()
	if d.dead {
		d.mu.Unlock()
		return reply{}, false
	}
	d.waiting[id] = ch
	d.mu.Unlock()
	if !d.send(frame) {
		return reply{}, false
	}
	answer, ok := <-ch
	return answer, ok
}

func (d *decider) send(frame []byte) bool {
	select {
	case d.out <- frame:
		return true
	case <-d.gone:
		return false
	}
}

func (d *decider) setCut(id uint64, cut func()) {
	d.mu.Lock()
	if cut == nil {
		delete(d.cuts, id)
	} else {
		d.cuts[id] = cut
	}
	d.mu.Unlock()
}

func (d *decider) cluster(key string) *cluster {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clusters[key]
}

func (d *decider) addCluster(f []string) error {
	if len(f) != 4 {
		return errors.New("C needs 4 fields")
	}
	server, err := url.Parse(f[1])
	if err != nil || (server.Scheme != "https" && server.Scheme != "http") {
		return fmt.Errorf("server URL %q", f[1])
	}
	config := &tls.Config{InsecureSkipVerify: f[3] == "1"}
	if f[2] != "" {
		pem, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil {
			return err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return errors.New("no certificate in the CA")
		}
	}
	transport := &http.Transport{
		TLSClientConfig:       config,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	d.mu.Lock()
	d.clusters[f[0]] = &cluster{scheme: server.Scheme, host: server.Host, transport: transport}
	d.mu.Unlock()
	return nil
}

// --- frames --------------------------------------------------------------------------------

// headFrame: the Q frame, and where the head proper (everything after the id) starts. Header
// names are sorted, so that the same head always makes the same frame (the decision cache's key).
func headFrame(id uint64, r *http.Request, upgrade bool) ([]byte, int) {
	b := make([]byte, 0, 512)
	b = append(b, 'Q', 0)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, 0)
	headStart := len(b)
	b = append(b, r.Method...)
	b = append(b, 0)
	b = append(b, r.RequestURI...)
	if upgrade {
		b = append(b, 0, '1')
	} else {
		b = append(b, 0, '0')
	}
	// net/http keeps Host and Transfer-Encoding out of Header: they go back in, as received.
	b = append(b, "\x00Host\x00"...)
	b = append(b, r.Host...)
	for _, coding := range r.TransferEncoding {
		b = append(b, "\x00Transfer-Encoding\x00"...)
		b = append(b, coding...)
	}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, value := range r.Header[name] {
			b = append(b, 0)
			b = append(b, name...)
			b = append(b, 0)
			b = append(b, value...)
		}
	}
	return append(b, '\n'), headStart
}

func problemFrame(id uint64, upstreamStatus int, reason string, reusedFrom uint64) []byte {
	return []byte(fmt.Sprintf("P\x00%d\x00%d\x00%s\x00%d\n", id, upstreamStatus, reason, reusedFrom))
}

// doneFrame: D for an exchange the decider decided, E (with the deciding exchange's id) for one
// served from the decision cache.
func doneFrame(id uint64, reusedFrom uint64, status int, bytesIn, bytesOut uint64, took time.Duration) []byte {
	b := make([]byte, 0, 64)
	if reusedFrom == 0 {
		b = append(b, 'D', 0)
		b = strconv.AppendUint(b, id, 10)
	} else {
		b = append(b, 'E', 0)
		b = strconv.AppendUint(b, reusedFrom, 10)
	}
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, 0)
	b = strconv.AppendUint(b, bytesIn, 10)
	b = append(b, 0)
	b = strconv.AppendUint(b, bytesOut, 10)
	b = append(b, 0)
	b = strconv.AppendInt(b, took.Microseconds(), 10)
	return append(b, '\n')
}

// --- serving -------------------------------------------------------------------------------

// countingConn counts the bytes of a client connection (TLS records included), for the audit.
// The marks are where the previous exchange's count ended (its handler goroutine is the only
// one that moves them: HTTP/1.1 serves a connection's requests one after the other).
type countingConn struct {
	net.Conn
	read, written         atomic.Uint64
	readMark, writtenMark uint64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(uint64(n))
	return n, err
}

type countingListener struct{ net.Listener }

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn}, nil
}

type connKey struct{}

type server struct {
	d   *decider
	ids atomic.Uint64
	// The decision cache (variant 2), or nil: every head is asked.
	cache *decisionCache
}

// decisionCache (variant 2, "JavaScript once per distinct head"): admissions the decider marked
// reusable, keyed by a keyed SHA-256 of the whole head (method, target, every header line —
// the bearer token among them, never kept in clear), each for as long as the decider said
// (the token cache's lifetime, capped by the token's expiry). admit() is a function of the
// head and of the decider's state, so an identical head gets the identical answer while that
// state holds; the decider empties the cache ('F') whenever a token, user, group, membership
// or cluster changes.
type decisionCache struct {
	secret  [32]byte
	mu      sync.RWMutex
	entries map[[32]byte]cachedDecision
}

type cachedDecision struct {
	reply   reply
	from    uint64
	expires time.Time
}

const decisionCacheEntries = 10_000

func newDecisionCache() *decisionCache {
	c := &decisionCache{entries: map[[32]byte]cachedDecision{}}
	if _, err := rand.Read(c.secret[:]); err != nil {
		log.Fatal(err)
	}
	return c
}

func (c *decisionCache) key(head []byte) [32]byte {
	h := sha256.New()
	h.Write(c.secret[:])
	h.Write(head)
	var key [32]byte
	h.Sum(key[:0])
	return key
}

func (c *decisionCache) get(key [32]byte) (cachedDecision, bool) {
	c.mu.RLock()
	entry, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || time.Now().After(entry.expires) {
		return cachedDecision{}, false
	}
	return entry, true
}

func (c *decisionCache) put(key [32]byte, entry cachedDecision) {
	c.mu.Lock()
	if len(c.entries) >= decisionCacheEntries {
		c.entries = map[[32]byte]cachedDecision{}
	}
	c.entries[key] = entry
	c.mu.Unlock()
}

func (c *decisionCache) clear() {
	c.mu.Lock()
	c.entries = map[[32]byte]cachedDecision{}
	c.mu.Unlock()
}

var relayBuffers = sync.Pool{New: func() any { b := make([]byte, relayBufferBytes); return &b }}

// An exchange's outcome: the status for the audit, whether the client connection must be cut,
// and the exchange whose cached decision served it (0: the decider was asked).
type outcome struct {
	status     int
	cut        bool
	reusedFrom uint64
	// The decider was asked about this exchange (a P frame): it expects its D frame.
	askedAgain bool
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := s.ids.Add(1)
	result := s.serve(w, r, id)
	// Bytes since the previous exchange on the connection ended: this head, this answer (flushed now).
	var bytesIn, bytesOut uint64
	if tlsConn, ok := r.Context().Value(connKey{}).(*tls.Conn); ok {
		if counted, ok := tlsConn.NetConn().(*countingConn); ok {
			if flusher, ok := w.(http.Flusher); ok && result.status != http.StatusSwitchingProtocols && result.status != 499 {
				flusher.Flush()
			}
			read, written := counted.read.Load(), counted.written.Load()
			bytesIn, bytesOut = read-counted.readMark, written-counted.writtenMark
			counted.readMark, counted.writtenMark = read, written
		}
	}
	s.d.sendLazily(doneFrame(id, result.reusedFrom, result.status, bytesIn, bytesOut, time.Since(start)))
	if result.cut {
		panic(http.ErrAbortHandler)
	}
}

func (s *server) serve(w http.ResponseWriter, r *http.Request, id uint64) outcome {
	upgrade := isUpgrade(r.Header)
	frame, headStart := headFrame(id, r, upgrade)
	var key [32]byte
	var decision reply
	var reusedFrom uint64
	cached := false
	if s.cache != nil && !upgrade {
		key = s.cache.key(frame[headStart:])
		var entry cachedDecision
		if entry, cached = s.cache.get(key); cached {
			decision, reusedFrom = entry.reply, entry.from
		}
	}
	if !cached {
		var ok bool
		if decision, ok = s.d.ask(id, frame); !ok {
			return deciderGone(w)
		}
	}
	if decision.kind == 'R' {
		return writeAnswer(w, decision.fields, upgrade)
	}
	f := decision.fields
	if len(f) < 5 || len(f)%2 != 1 {
		return deciderGone(w)
	}
	if cacheMs, _ := strconv.Atoi(f[4]); !cached && s.cache != nil && cacheMs > 0 {
		s.cache.put(key, cachedDecision{reply: decision, from: id, expires: time.Now().Add(time.Duration(cacheMs) * time.Millisecond)})
	}
	result := s.forward(w, r, id, f, upgrade, reusedFrom)
	if cached && !result.askedAgain {
		result.reusedFrom = reusedFrom
	}
	return result
}

// forward: the admitted exchange, upstream and back. reusedFrom names the cached decision, if any.
func (s *server) forward(w http.ResponseWriter, r *http.Request, id uint64, f []string, upgrade bool, reusedFrom uint64) outcome {
	c := s.d.cluster(f[0])
	if c == nil {
		return deciderGone(w)
	}
	longRunning, hasBody := f[2] == "1", f[3] == "1"
	out, cancel := upstreamRequest(r, c, f, hasBody, upgrade)
	defer cancel()
	if longRunning {
		s.d.setCut(id, cancel)
		defer s.d.setCut(id, nil)
	}
	resp, err := c.transport.RoundTrip(out)
	if err != nil {
		if r.Context().Err() != nil {
			return outcome{status: 499}
		}
		return s.replaced(w, id, 0, failureReason(err), upgrade, reusedFrom)
	}
	if resp.StatusCode == http.StatusUnauthorized || (upgrade && resp.StatusCode >= 300 && resp.StatusCode < 400) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return s.replaced(w, id, resp.StatusCode, "", upgrade, reusedFrom)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return s.switchProtocols(w, resp, id, cancel)
	}
	defer resp.Body.Close()
	relayHeaders(w.Header(), resp.Header)
	if upgrade {
		// A refused upgrade: the answer is relayed and both connections close (CVE-2018-1002105).
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	bufp := relayBuffers.Get().(*[]byte)
	defer relayBuffers.Put(bufp)
	buf := *bufp
	for {
		n, readErr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return outcome{status: resp.StatusCode}
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if readErr == io.EOF {
			return outcome{status: resp.StatusCode}
		}
		if readErr != nil {
			// The upstream failed (or the exchange was cut) after the answer started: cut the client.
			return outcome{status: resp.StatusCode, cut: true}
		}
	}
}

// upstreamRequest: exactly the decider's header list, to the cluster it named.
func upstreamRequest(r *http.Request, c *cluster, f []string, hasBody, upgrade bool) (*http.Request, context.CancelFunc) {
	pathAndQuery := f[1]
	path, query, _ := strings.Cut(pathAndQuery, "?")
	header := make(http.Header, (len(f)-5)/2+1)
	host := c.host
	for i := 5; i < len(f); i += 2 {
		name, value := f[i], f[i+1]
		if strings.EqualFold(name, "host") {
			host = value
			continue
		}
		key := http.CanonicalHeaderKey(name)
		header[key] = append(header[key], value)
	}
	// Go would add a User-Agent of its own when the client sent none.
	if _, ok := header["User-Agent"]; !ok {
		header["User-Agent"] = []string{""}
	}
	out := &http.Request{
		Method:     r.Method,
		URL:        &url.URL{Scheme: c.scheme, Host: c.host, Opaque: path, RawQuery: query},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       host,
		Body:       http.NoBody,
		// An upgrade's connection is never handed back to the pool, whatever the answer.
		Close: upgrade,
	}
	if hasBody {
		out.Body = r.Body
		out.ContentLength = r.ContentLength
	}
	ctx, cancel := context.WithCancel(r.Context())
	return out.WithContext(ctx), cancel
}

// relayHeaders copies the upstream answer's headers but the hop-by-hop ones, Set-Cookie and
// those its Connection names (sanitize.ts's filterResponseHeaders); adds nothing of Go's.
func relayHeaders(dst, src http.Header) {
	var named []string
	for _, value := range src["Connection"] {
		for _, token := range strings.Split(value, ",") {
			named = append(named, http.CanonicalHeaderKey(strings.TrimSpace(token)))
		}
	}
	for name, values := range src {
		switch name {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade", "Proxy-Authenticate", "Set-Cookie":
			continue
		}
		if contains(named, name) {
			continue
		}
		dst[name] = values
	}
	if _, ok := dst["Date"]; !ok {
		dst["Date"] = nil
	}
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil
	}
}

func contains(list []string, item string) bool {
	for _, entry := range list {
		if entry == item {
			return true
		}
	}
	return false
}

// switchProtocols: the upstream's 101 (all but Set-Cookie) to the client, then bytes both ways
// until either side closes.
func (s *server) switchProtocols(w http.ResponseWriter, resp *http.Response, id uint64, cancel context.CancelFunc) outcome {
	upstream, ok := resp.Body.(io.ReadWriteCloser)
	hijacker, canHijack := w.(http.Hijacker)
	if !ok || !canHijack {
		resp.Body.Close()
		return outcome{status: 502, cut: true}
	}
	client, buffered, err := hijacker.Hijack()
	if err != nil {
		upstream.Close()
		return outcome{status: 101}
	}
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			upstream.Close()
			cancel()
		})
	}
	s.d.setCut(id, closeBoth)
	defer closeBoth()
	head := resp.Header.Clone()
	delete(head, "Set-Cookie")
	buffered.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	head.Write(buffered)
	buffered.WriteString("\r\n")
	if err := buffered.Flush(); err != nil {
		return outcome{status: 101}
	}
	go func() {
		// The client's reader first: it may hold bytes sent right after the request head.
		io.Copy(upstream, buffered.Reader)
		closeBoth()
	}()
	io.Copy(client, upstream)
	return outcome{status: 101}
}

// replaced asks the decider what to answer instead of an upstream failure or a replaced answer.
func (s *server) replaced(w http.ResponseWriter, id uint64, upstreamStatus int, reason string, upgrade bool, reusedFrom uint64) outcome {
	answer, ok := s.d.ask(id, problemFrame(id, upstreamStatus, reason, reusedFrom))
	if !ok || answer.kind != 'R' {
		return deciderGone(w)
	}
	result := writeAnswer(w, answer.fields, upgrade)
	result.askedAgain = true
	return result
}

// writeAnswer writes the decider's answer: status, content type, body (base64).
func writeAnswer(w http.ResponseWriter, f []string, upgrade bool) outcome {
	if len(f) != 3 {
		return deciderGone(w)
	}
	status, err := strconv.Atoi(f[0])
	body, err2 := base64.StdEncoding.DecodeString(f[2])
	if err != nil || err2 != nil {
		return deciderGone(w)
	}
	h := w.Header()
	h["Content-Type"] = []string{f[1]}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = []string{"no-store"}
	h["Date"] = nil
	if upgrade {
		h["Connection"] = []string{"close"}
	}
	w.WriteHeader(status)
	w.Write(body)
	return outcome{status: status}
}

// The one answer of Go's own: the decider cannot be asked, so nothing is forwarded.
var deciderGoneBody = []byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the proxy cannot decide requests now","reason":"ServiceUnavailable","code":503}`)

func deciderGone(w http.ResponseWriter) outcome {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(deciderGoneBody))}
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write(deciderGoneBody)
	return outcome{status: http.StatusServiceUnavailable}
}

func isUpgrade(h http.Header) bool {
	if len(h["Upgrade"]) == 0 {
		return false
	}
	for _, value := range h["Connection"] {
		for _, token := range strings.Split(value, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "upgrade") {
				return true
			}
		}
	}
	return false
}

// failureReason: a system error code the decider turns into kubegate's Status (upstream-culprit.ts).
func failureReason(err error) string {
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return "TIMEOUT"
	}
	var certificate x509.UnknownAuthorityError
	var hostname x509.HostnameError
	if errors.As(err, &certificate) || errors.As(err, &hostname) {
		return "ERR_TLS_CERT"
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "ECONNREFUSED"
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return "ECONNRESET"
	}
	return "EUNREACHABLE"
}

// --- the process ---------------------------------------------------------------------------

func startDecider(command []string) (*exec.Cmd, string) {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stderr = os.Stderr
	// `revoke NAME` lines reach the decider (tests).
	cmd.Stdin = os.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "{") && strings.Contains(line, `"ready":true`) {
			go io.Copy(io.Discard, stdout)
			return cmd, line
		}
	}
	log.Fatal("the decider exited before it was ready")
	return nil, ""
}

func main() {
	if len(os.Args) < 6 {
		log.Fatal("usage: native-core PORT CERT_FILE KEY_FILE SOCKET DECIDER_COMMAND…")
	}
	port, certFile, keyFile, socket := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	cmd, deciderReady := startDecider(os.Args[5:])
	stopDecider := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	}
	d, err := dialDecider(socket)
	if err != nil {
		stopDecider()
		log.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		stopDecider()
		log.Fatal(err)
	}
	core := &server{d: d}
	if os.Getenv("NATIVE_CORE_DECISION_CACHE") == "1" {
		core.cache = newDecisionCache()
		d.onFlush = core.cache.clear
	}
	srv := &http.Server{
		Handler:           core,
		ReadHeaderTimeout: 60 * time.Second,
		IdleTimeout:       300 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		// HTTP/1.1 only: the decider's protocol speaks request heads of HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		stopDecider()
		os.Exit(0)
	}()
	fmt.Printf("{\"ready\":true,\"port\":%d,\"decider\":%s}\n", listener.Addr().(*net.TCPAddr).Port, deciderReady)
	err = srv.ServeTLS(countingListener{listener}, certFile, keyFile)
	stopDecider()
	log.Fatal(err)
}
