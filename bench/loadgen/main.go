// loadgen drives one HTTP endpoint with N concurrent clients for a fixed time and prints what it saw as
// JSON: requests per second and latency percentiles. Written in Go so that on a small machine the load
// generator costs the servers under test as little CPU as possible, and the same for each of them.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Requests int64   `json:"requests"`
	Total    int64   `json:"total"` // every request answered, the warm-up's too
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

func main() {
	url := flag.String("url", "", "target URL")
	method := flag.String("method", "GET", "HTTP method")
	body := flag.String("body", "", "request body; %d is replaced by a unique request number")
	header := flag.String("header", "", "one extra header, 'Name: value'")
	clients := flag.Int("c", 32, "concurrent clients")
	duration := flag.Duration("d", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured warm-up before the measured duration")
	expect := flag.Int("expect", 0, "expected status (default: any 2xx)")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "usage: loadgen -url URL [-method POST -body JSON] [-c 32] [-d 10s]")
		os.Exit(2)
	}
	transport := &http.Transport{MaxIdleConns: *clients, MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	var counter, requests, errors, total int64
	var measuring atomic.Bool
	latencies := make([][]time.Duration, *clients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func(worker int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var reader io.Reader
				if *body != "" {
					n := atomic.AddInt64(&counter, 1)
					reader = bytes.NewBufferString(strings.ReplaceAll(*body, "%d", fmt.Sprint(n)))
				}
				req, _ := http.NewRequest(*method, *url, reader)
				req.Header.Set("Content-Type", "application/json")
				if *header != "" {
					parts := strings.SplitN(*header, ":", 2)
					req.Header.Set(strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]))
				}
				started := time.Now()
				resp, err := client.Do(req)
				ok := err == nil
				if ok {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = (*expect == 0 && resp.StatusCode/100 == 2) || resp.StatusCode == *expect
				}
				atomic.AddInt64(&total, 1)
				if measuring.Load() {
					atomic.AddInt64(&requests, 1)
					if !ok {
						atomic.AddInt64(&errors, 1)
					}
					latencies[worker] = append(latencies[worker], time.Since(started))
				}
			}
		}(i)
	}
	time.Sleep(*warmup)
	measuring.Store(true)
	began := time.Now()
	time.Sleep(*duration)
	measuring.Store(false)
	elapsed := time.Since(began).Seconds()
	close(stop)
	wg.Wait()

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	out := result{Requests: requests, Total: atomic.LoadInt64(&total), Errors: errors, Seconds: elapsed, RPS: float64(requests) / elapsed, P50ms: pct(0.50), P99ms: pct(0.99)}
	json.NewEncoder(os.Stdout).Encode(out)
}
