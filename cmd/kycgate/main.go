// Command kycgate is a self-hostable server for the StarkFi KYC API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first SIGTERM or interrupt starts a graceful shutdown; a second
	// one hurries it (skips KYCGATE_SHUTDOWN_DELAY).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hurry := make(chan struct{})
	go func() {
		<-sigs
		cancel()
		<-sigs
		close(hurry)
	}()
	ctx = withHurry(ctx, hurry)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kycgate:", err)
		os.Exit(1)
	}
}

type hurryKey struct{}

// withHurry attaches to ctx a channel that closes when the operator asks
// for shutdown to skip its delay.
func withHurry(ctx context.Context, hurry <-chan struct{}) context.Context {
	return context.WithValue(ctx, hurryKey{}, hurry)
}

// hurryOf is ctx's hurry channel; nil (never ready) when there is none.
func hurryOf(ctx context.Context) <-chan struct{} {
	h, _ := ctx.Value(hurryKey{}).(<-chan struct{})
	return h
}
