package logging

import (
	"context"
	"fmt"
	"log/slog"
)

// RedisLogger adapts l to go-redis's internal logger (redis.SetLogger), so
// its connection-pool messages are JSON records with component=redis at
// warn level rather than plain lines on stderr.
func RedisLogger(l *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return redisLogger{l.With("component", "redis")}
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, fmt.Sprintf(format, v...))
}
