package logging

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/hibiken/asynq"
)

// LevelFatal is the slog level of asynq's Fatal messages, above Error.
const LevelFatal = slog.LevelError + 4

// AsynqLogger adapts l to asynq.Logger. asynq formats its own messages;
// each becomes one record with component=asynq at the mapped level. Fatal
// logs at LevelFatal and exits the process with status 1, as asynq's
// contract says (asynq v0.26 never calls it).
func AsynqLogger(l *slog.Logger) asynq.Logger {
	return &asynqLogger{l: l.With("component", "asynq"), exit: os.Exit}
}

type asynqLogger struct {
	l    *slog.Logger
	exit func(int)
}

func (a *asynqLogger) log(level slog.Level, args []any) {
	a.l.Log(context.Background(), level, fmt.Sprint(args...))
}

func (a *asynqLogger) Debug(args ...any) { a.log(slog.LevelDebug, args) }
func (a *asynqLogger) Info(args ...any)  { a.log(slog.LevelInfo, args) }
func (a *asynqLogger) Warn(args ...any)  { a.log(slog.LevelWarn, args) }
func (a *asynqLogger) Error(args ...any) { a.log(slog.LevelError, args) }

func (a *asynqLogger) Fatal(args ...any) {
	a.log(LevelFatal, args)
	a.exit(1)
}

// AsynqLevel maps a slog level to asynq's, so asynq filters what the
// handler would drop anyway.
func AsynqLevel(l slog.Level) asynq.LogLevel {
	switch {
	case l <= slog.LevelDebug:
		return asynq.DebugLevel
	case l <= slog.LevelInfo:
		return asynq.InfoLevel
	case l <= slog.LevelWarn:
		return asynq.WarnLevel
	default:
		return asynq.ErrorLevel
	}
}
