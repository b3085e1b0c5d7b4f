package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// The write connection never checkpoints; the checkpointer's connection
// copies the whole log, and the next write starts the log over.
func TestSQLiteCheckpointsOffTheWritePath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The loop stays idle; the test runs the checkpoints itself.
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "k.db"), Options{checkpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var auto int
	if err := db.w.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	if _, err := db.w.ExecContext(ctx, "CREATE TABLE scratch (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	const writes = 1500 // past SQLite's default of a checkpoint at 1000 pages
	for i := range writes {
		if _, err := db.w.ExecContext(ctx, "INSERT INTO scratch VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	logFrames, copied, err := db.ck.checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if logFrames < writes {
		t.Fatalf("log holds %d frames after %d commits: something else checkpointed", logFrames, writes)
	}
	if copied != logFrames {
		t.Fatalf("checkpoint copied %d of %d frames with no other reader or writer", copied, logFrames)
	}
	if _, err := db.w.ExecContext(ctx, "INSERT INTO scratch VALUES (-1)"); err != nil {
		t.Fatal(err)
	}
	if logFrames, _, err = db.ck.checkpoint(ctx); err != nil || logFrames > 10 {
		t.Fatalf("after a full checkpoint the next write should start the log over: %d frames, %v", logFrames, err)
	}
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM scratch").Scan(&n); err != nil || n != writes+1 {
		t.Fatalf("readers see %d rows, %v; want %d", n, err, writes+1)
	}
}
