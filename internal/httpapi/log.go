package httpapi

import (
	"context"
	"log/slog"
	"time"
)

// accessLog writes the per-request line straight to the handler: the same
// record Logger.LogAttrs would make, minus the runtime.Callers walk for a
// source position the access line never shows (it is always this line).
func (s *Server) accessLog(ctx context.Context, level slog.Level, attrs ...slog.Attr) {
	h := s.log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(attrs...)
	_ = h.Handle(ctx, rec)
}

func slogStr(k, v string) slog.Attr     { return slog.String(k, v) }
func slogInt(k string, v int) slog.Attr { return slog.Int(k, v) }
func slogDur(k string, d time.Duration) slog.Attr {
	return slog.Float64(k, float64(d.Microseconds())/1000)
}

func levelFor(code int) slog.Level {
	if code >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
