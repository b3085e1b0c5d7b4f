package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

const healthcheckHelp = `Asks the kycgate serving on KYCGATE_ADDR (a wildcard host such as 0.0.0.0
is asked on loopback) for GET /readyz, or GET /healthz with --live, and
exits 0 on 200 OK, 1 otherwise. It is the container image's HEALTHCHECK:
the distroless image has no shell or curl to probe with.`

func healthcheckCmd(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	live := fs.Bool("live", false, "ask /healthz (the process answers) instead of /readyz (it takes traffic)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	return func(ctx context.Context) error {
		path := "/readyz"
		if *live {
			path = "/healthz"
		}
		addr := strings.TrimSpace(cio.getenv("KYCGATE_ADDR"))
		if addr == "" {
			addr = "127.0.0.1:8080" // config's default
		}
		url, err := probeURL(addr, path)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return probe(ctx, url, cio.stdout)
	}
}

// probeURL is where a process beside the server reaches it: a wildcard
// listener also answers on loopback.
func probeURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("healthcheck: KYCGATE_ADDR must be host:port with a fixed port, got %q", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

func probe(ctx context.Context, url string, stdout io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy from the environment: the server is on this host.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
	}
	fmt.Fprintf(stdout, "ok: GET %s: %s\n", url, resp.Status)
	return nil
}
