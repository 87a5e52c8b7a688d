// The go-reverseproxy peer: the floor the Go authentication proxies (Rancher's, kube-oidc-proxy,
// Pinniped's impersonator) stand on — net/http/httputil.ReverseProxy from the standard library
// alone, doing the per-request work they all do and nothing more:
//
//   - TLS toward clients (the benchmark's serving certificate) and toward the upstream (verified
//     against the run's CA), keep-alive on both sides (up to 64 idle upstream connections, as
//     nginx and kubegate keep);
//   - a bearer token looked up in memory (keyed by its SHA-256, as a proxy keeps hashes, never
//     tokens), 401 for anything else;
//   - the client's Authorization and every Impersonate-* header dropped, the proxy's own
//     credential and Impersonate-User / Impersonate-Group of the token's user set;
//   - FlushInterval -1: every write of the upstream is flushed at once (watches);
//   - upgrades (SPDY and WebSocket exec) through ReverseProxy's own 101 handling.
//
// It pays none of kubegate's audit, metrics, membership or revocation costs. Usage:
//
//	go-reverseproxy PORT UPSTREAM_URL CA_FILE CERT_FILE KEY_FILE TOKEN USER GROUP UPSTREAM_TOKEN
//
// Prints one JSON line when it is ready.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type identity struct {
	user   string
	groups []string
}

type contextKey struct{}

func main() {
	if len(os.Args) != 10 {
		log.Fatal("usage: go-reverseproxy PORT UPSTREAM_URL CA_FILE CERT_FILE KEY_FILE TOKEN USER GROUP UPSTREAM_TOKEN")
	}
	port, upstreamURL, caFile, certFile, keyFile := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	token, user, group, upstreamToken := os.Args[6], os.Args[7], os.Args[8], os.Args[9]

	target, err := url.Parse(upstreamURL)
	if err != nil {
		log.Fatal(err)
	}
	caPem, err := os.ReadFile(caFile)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPem) {
		log.Fatal("no certificate in the CA file")
	}
	tokens := map[[32]byte]identity{sha256.Sum256([]byte(token)): {user: user, groups: []string{group}}}
	upstreamAuthorization := "Bearer " + upstreamToken

	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	proxy := &httputil.ReverseProxy{
		Director: func(req *http.Request) {
			who := req.Context().Value(contextKey{}).(identity)
			req.URL.Scheme = target.Scheme
			req.URL.Host = target.Host
			req.Host = target.Host
			for name := range req.Header {
				if strings.HasPrefix(name, "Impersonate-") {
					delete(req.Header, name)
				}
			}
			req.Header.Set("Authorization", upstreamAuthorization)
			req.Header.Set("Impersonate-User", who.user)
			req.Header["Impersonate-Group"] = who.groups
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		bearer := req.Header.Get("Authorization")
		if len(bearer) < 7 || !strings.EqualFold(bearer[:7], "bearer ") {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		who, ok := tokens[sha256.Sum256([]byte(strings.TrimSpace(bearer[7:])))]
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), contextKey{}, who)))
	})

	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 60 * time.Second, IdleTimeout: 300 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(0)
	}()
	fmt.Printf("{\"ready\":true,\"port\":%d}\n", listener.Addr().(*net.TCPAddr).Port)
	log.Fatal(server.ServeTLS(listener, certFile, keyFile))
}
