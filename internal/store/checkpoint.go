package store

import (
	"context"
	"database/sql"
	"time"
)

// SQLite's write-ahead log is copied back into the database file by a
// checkpoint. By default the connection whose commit takes the log past
// 1000 pages runs it on the spot — here that is the only write connection,
// so every few hundred writes each waiting write queued behind a page copy
// and two fsyncs: under load that was a steady drizzle of 10–20 ms writes.
// The write connection's automatic checkpoints are off
// (wal_autocheckpoint=0) and this loop runs PASSIVE checkpoints on a
// connection of its own instead; a PASSIVE checkpoint works alongside the
// writer and the readers and never waits for them.
//
// It also bounds in time, not in pages, how long a commit sits only in the
// log (with synchronous=NORMAL the log is synced at each checkpoint).
const checkpointEvery = 200 * time.Millisecond

// walSizeLimit is what the log file is cut back to after a checkpoint let
// the next writer start it over (journal_size_limit), so one burst does
// not leave a large file behind.
const walSizeLimit = 64 << 20

type checkpointer struct {
	db   *sql.DB
	stop context.CancelFunc
	done chan struct{}
}

func startCheckpointer(db *sql.DB, every time.Duration) *checkpointer {
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// An error (the file went away, the disk is full) is the
				// writer's to report: its commits fail the same way. The
				// next tick tries again.
				_, _, _ = c.checkpoint(ctx)
			}
		}
	}()
	return c
}

// checkpoint copies what it can of the log into the database file and
// reports how many frames the log holds and how many are now copied.
func (c *checkpointer) checkpoint(ctx context.Context) (logFrames, copied int, err error) {
	var busy int
	err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &copied)
	return logFrames, copied, err
}

// close stops the loop; a final checkpoint is SQLite's, when the last
// connection closes.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
