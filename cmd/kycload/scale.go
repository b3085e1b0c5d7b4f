package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

func fileSize(dbURL string) int64 {
	fi, err := os.Stat(strings.TrimPrefix(dbURL, "sqlite:"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ScaleResult is one database size in the scale run (SQLite).
type ScaleResult struct {
	Users      int           `json:"users"`
	Setup      time.Duration `json:"setup_ns"`
	DBBytes    int64         `json:"db_bytes"`
	StatusC1   Result        `json:"status_c1"`
	PrepareC1  Result        `json:"prepare_c1"`
	StatusCN   Result        `json:"status_cn"`
	PrepareCN  Result        `json:"prepare_cn"`
	RSSKiB     int64         `json:"rss_kib"`
	PeakRSSKiB int64         `json:"peak_rss_kib"`
}

// runScale compares a 1,000-user database with a big one: status and
// prepare latency (one request at a time, and under the closed-loop load),
// and kycgate's resident memory.
func (h *harness) runScale(ctx context.Context) error {
	for _, users := range []int{1000, h.opt.scaleUsers} {
		fmt.Printf("\n== scale run (sqlite): %d enrolled users, setting up\n", users)
		t0 := time.Now()
		e, err := h.newEngine(ctx, "sqlite", fmt.Sprintf("scale%d", users))
		if err != nil {
			return err
		}
		// Every user enrolled, verified, with an approved session.
		if err := e.persons(ctx, "sc", users, true); err != nil {
			return err
		}
		if err := e.sessions(ctx, "sc", users, "Approved"); err != nil {
			return err
		}
		if _, err := e.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return err
		}
		e.db.Close()
		r := ScaleResult{Users: users, Setup: time.Since(t0), DBBytes: fileSize(e.url)}
		fmt.Printf("   setup %s, database %d MB\n", r.Setup.Round(time.Millisecond), r.DBBytes>>20)
		kg, _, err := h.startKycgate(ctx, e, fmt.Sprintf("scale%d", users))
		if err != nil {
			return err
		}
		c := newClient()
		status := statusGen("sc", users)(kg.base, e.apiKey)
		label := fmt.Sprintf("%d users", users)
		prepare := func() Gen {
			tag := h.tag("sp")
			var seq atomic.Int64
			return func() (*http.Request, bool) {
				return newReq("POST", kg.base+"/kyc/prepare", e.apiKey,
					emailBody(fmt.Sprintf("pr_%s_%d@load.test", tag, seq.Add(1)))), true
			}
		}
		r.StatusC1 = closedLoop(ctx, c, status, 200, 1, h.opt.warmup, h.opt.scaleDur, kg)
		printResult(label, "status", &r.StatusC1)
		r.PrepareC1 = closedLoop(ctx, c, prepare(), 201, 1, h.opt.warmup, h.opt.scaleDur, kg)
		printResult(label, "prepare", &r.PrepareC1)
		r.StatusCN = closedLoop(ctx, c, status, 200, h.opt.workers, 0, h.opt.scaleDur, kg)
		printResult(label, "status", &r.StatusCN)
		r.PrepareCN = closedLoop(ctx, c, prepare(), 201, h.opt.workers, 0, h.opt.scaleDur, kg)
		printResult(label, "prepare", &r.PrepareCN)
		rss, hwm := kg.memory()
		r.RSSKiB, r.PeakRSSKiB = rss, hwm
		fmt.Printf("   kycgate RSS %d MB (peak %d MB)\n", rss>>10, hwm>>10)
		kg.stop()
		h.Scale = append(h.Scale, r)
	}
	return nil
}
