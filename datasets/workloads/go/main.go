// tj-go-service: one workload service in Go, for the labeled real
// captures (datasets/real/README.md).  net/http serves each request on
// its own goroutine; the handler calls its downstreams with the standard
// http.Client over one keepalive http.Transport (MaxConnsPerHost bounds
// the pool: a call finding every connection busy waits for one to be
// returned).  Goroutines run on Go's M:N scheduler: a handler parked on
// the network poller or a timer resumes on whichever OS thread is free,
// so one request's steps hop between threads.  traceparent is propagated
// with the span-id rule of datasets/label/label.h.  Standard library only
// (built offline: GOPROXY=off).
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const usage = `usage: tj-go-service --role NAME --listen ADDR:PORT [OPTIONS]

One service of a workload in Go: net/http answers HTTP/1.1 requests, each
on its own goroutine, calling its downstreams with http.Client over a
keepalive Transport, propagating traceparent (datasets/label/label.h).

options:
  --role NAME           service name (path of its calls, messages)
  --listen ADDR:PORT    IPv4 address and port to listen on
  --call NAME=ADDR:PORT a downstream, called once per request in the
                        order given (repeatable, at most 32)
  --calls chain|parallel  chain (default): one call after another's reply;
                        parallel: all at once, one goroutine each
  --max-conns K         connections per downstream (default 4, 1-1024);
                        more calls wait for one to be free
  --threads N           GOMAXPROCS: OS threads running Go code at once
                        (default 4, 1-64)
  --work-us US          mean service time (exponential, time.Sleep: the
                        goroutine parks and may resume on another
                        thread), half before the calls, half after
                        (default 200, at most 1000000)
  --req-bytes N         body of each call (default 64, at most 4096)
  --resp-bytes N        body of each response (default 256, at most 65536)
  --seed S              service-time generator seed (default 1)
  -h, --help            this text
`

// ---- the span-id rule (datasets/label/label.c) ----

func hash64(x uint64) uint64 { // splitmix64's finaliser (lib/u64map.h)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func mix(x uint64) uint64 { return hash64(x + 0x9e3779b97f4a7c15) }

func serverSpan(hi, lo, parent uint64) uint64 {
	s := mix(mix(hi^0x5352565253504e31) ^ mix(lo) ^ parent)
	if s == 0 {
		return 1
	}
	return s
}

func callSpan(server uint64, i int) uint64 {
	c := mix(server ^ mix(0x43414c4c00000000+uint64(i)))
	if c == 0 {
		return 1
	}
	return c
}

var tpRE = regexp.MustCompile(`^00-([0-9a-fA-F]{16})([0-9a-fA-F]{16})-([0-9a-fA-F]{16})-[0-9a-fA-F]{2}$`)

// ---- options ----

type downstream struct{ name, url string }

type options struct {
	role, listen                      string
	calls                             []downstream
	parallel                          bool
	maxConns, threads                 int
	workUs, reqBytes, respBytes, seed uint64
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "tj-go-service: "+format+"\n", a...)
	os.Exit(2)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,63}$`)

func hostPort(opt, text string) string {
	host, port, err := net.SplitHostPort(text)
	ip := net.ParseIP(host)
	p, perr := strconv.Atoi(port)
	if err != nil || ip == nil || ip.To4() == nil || strings.Contains(host, ":") || perr != nil || p < 1 || p > 65535 {
		fail("bad value for %s: '%s' (IPv4 ADDR:PORT; try --help)", opt, text)
	}
	return text
}

func uintArg(opt, text string, min, max uint64) uint64 {
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil || v < min || v > max {
		fail("bad value for %s: '%s' (try --help)", opt, text)
	}
	return v
}

func parseArgs(args []string) *options {
	o := &options{maxConns: 4, threads: 4, workUs: 200, reqBytes: 64, respBytes: 256, seed: 1}
	takes := map[string]bool{"--role": true, "--listen": true, "--call": true, "--calls": true,
		"--max-conns": true, "--threads": true, "--work-us": true, "--req-bytes": true,
		"--resp-bytes": true, "--seed": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" {
			fmt.Print(usage)
			os.Exit(0)
		}
		if !takes[a] {
			if strings.HasPrefix(a, "-") {
				fail("unknown option %s (try --help)", a)
			}
			fail("unexpected argument '%s'", a)
		}
		if i+1 >= len(args) {
			fail("%s needs a value", a)
		}
		i++
		v := args[i]
		switch a {
		case "--role":
			if !nameRE.MatchString(v) {
				fail("bad value for --role: '%s' (try --help)", v)
			}
			o.role = v
		case "--listen":
			o.listen = hostPort(a, v)
		case "--call":
			eq := strings.IndexByte(v, '=')
			if eq <= 0 || !nameRE.MatchString(v[:eq]) {
				fail("bad value for --call: '%s' (NAME=ADDR:PORT; try --help)", v)
			}
			if len(o.calls) >= 32 {
				fail("at most 32 --call")
			}
			o.calls = append(o.calls, downstream{v[:eq], "http://" + hostPort(a, v[eq+1:]) + "/" + v[:eq]})
		case "--calls":
			if v != "chain" && v != "parallel" {
				fail("bad value for --calls: '%s' (chain or parallel)", v)
			}
			o.parallel = v == "parallel"
		case "--max-conns":
			o.maxConns = int(uintArg(a, v, 1, 1024))
		case "--threads":
			o.threads = int(uintArg(a, v, 1, 64))
		case "--work-us":
			o.workUs = uintArg(a, v, 0, 1000000)
		case "--req-bytes":
			o.reqBytes = uintArg(a, v, 0, 4096)
		case "--resp-bytes":
			o.respBytes = uintArg(a, v, 0, 65536)
		case "--seed":
			o.seed = uintArg(a, v, 0, math.MaxUint32)
		}
	}
	if o.role == "" || o.listen == "" {
		fail("--role and --listen are required (try --help)")
	}
	return o
}

// ---- the service ----

type service struct {
	o                                  *options
	client                             *http.Client
	callBody, respBody                 []byte
	rngMu                              sync.Mutex
	rng                                *rand.Rand
	served, noTp, calls, callErrs, bad atomic.Uint64
}

func (s *service) half() time.Duration {
	if s.o.workUs == 0 {
		return 0
	}
	s.rngMu.Lock()
	e := s.rng.ExpFloat64()
	s.rngMu.Unlock()
	return time.Duration(e * float64(s.o.workUs) * 1000 / 2)
}

func (s *service) randomID() uint64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Uint64()
}

// one call carrying (trace, callSpan(span, i)); nil once its reply is read whole
func (s *service) call(trace string, span uint64, i int) error {
	d := s.o.calls[i]
	s.calls.Add(1)
	req, err := http.NewRequest("GET", d.url, bytes.NewReader(s.callBody))
	if err != nil {
		return err
	}
	req.Header.Set("traceparent", fmt.Sprintf("00-%s-%016x-01", trace, callSpan(span, i)))
	resp, err := s.client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	if err != nil {
		s.callErrs.Add(1)
	}
	return err
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.Method != "GET" {
		s.bad.Add(1)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var trace string
	var span uint64
	if m := tpRE.FindStringSubmatch(r.Header.Get("traceparent")); m != nil {
		hi, _ := strconv.ParseUint(m[1], 16, 64)
		lo, _ := strconv.ParseUint(m[2], 16, 64)
		p, _ := strconv.ParseUint(m[3], 16, 64)
		trace, span = strings.ToLower(m[1]+m[2]), serverSpan(hi, lo, p)
	} else {
		s.noTp.Add(1)
		trace, span = fmt.Sprintf("%016x%016x", s.randomID(), s.randomID()|1), s.randomID()|1
	}
	time.Sleep(s.half())
	var failed atomic.Bool
	if s.o.parallel {
		var wg sync.WaitGroup
		for i := range s.o.calls {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if s.call(trace, span, i) != nil {
					failed.Store(true)
				}
			}(i)
		}
		wg.Wait()
	} else {
		for i := range s.o.calls {
			if s.call(trace, span, i) != nil {
				failed.Store(true)
				break
			}
		}
	}
	time.Sleep(s.half())
	status := http.StatusOK
	if failed.Load() {
		status = http.StatusBadGateway
	}
	s.served.Add(1)
	w.Header().Set("Content-Length", strconv.Itoa(len(s.respBody)))
	w.WriteHeader(status)
	w.Write(s.respBody)
}

func main() {
	o := parseArgs(os.Args[1:])
	runtime.GOMAXPROCS(o.threads)
	s := &service{o: o, rng: rand.New(rand.NewSource(int64(o.seed))),
		callBody: bytes.Repeat([]byte("x"), int(o.reqBytes)),
		respBody: bytes.Repeat([]byte("x"), int(o.respBytes))}
	s.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxConnsPerHost: o.maxConns, MaxIdleConnsPerHost: o.maxConns,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
	ln, err := net.Listen("tcp4", o.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tj-go-service %s: cannot listen on %s: %v\n", o.role, o.listen, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: s, IdleTimeout: 60 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("tj-go-service %s: listening on %s\n", o.role, o.listen)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	srv.Shutdown(ctx)
	cancel()
	s.client.CloseIdleConnections()
	fmt.Printf("tj-go-service %s: served %d requests (%d without traceparent), made %d calls "+
		"(%d failed), %d bad requests\n", o.role, s.served.Load(), s.noTp.Load(), s.calls.Load(),
		s.callErrs.Load(), s.bad.Load())
}
