package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
)

func records(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewLevelsAndJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := New(&b, slog.LevelWarn)
	l.Info("dropped")
	l.Warn("kept", "kind", "sms:send", "n", 3)
	recs := records(t, &b)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1 (info is below warn): %v", len(recs), recs)
	}
	want := map[string]any{"level": "WARN", "msg": "kept", "kind": "sms:send", "n": float64(3)}
	got := map[string]any{"level": recs[0]["level"], "msg": recs[0]["msg"], "kind": recs[0]["kind"], "n": recs[0]["n"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want,+got):\n%s", diff)
	}
}

func TestNewRedactsSecrets(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	const pw, tok = "hunter2-pw", "tw-auth-token-123"
	l := New(&b, slog.LevelDebug, pw, tok, "abc")
	l.Info("dial smtp://u:"+pw+"@relay failed",
		"error", errors.New("auth with "+tok+" refused"),
		"url", "redis://:"+pw+"@h",
		"password", "anything",
		"api_token", "x",
		"Authorization", "Bearer zzz",
		"token_name", "alice",
		"twilio_sid", "AC123",
		"BACKOFFICE_API_TOKENS_FILE", "/etc/tokens",
		"BACKOFFICE_TWILIO_AUTH_TOKEN", "tok",
		"smtp_password", "",
		"X-Api-Key", "k",
		"tokenizer", "words",
		"api_tokens", "ops:operator:<redacted>",
		"word", "abc is short and stays",
		slog.Group("smtp", "password", "p", "host", "relay "+pw))
	out := b.String()
	for _, s := range []string{pw, tok, "anything", "Bearer zzz"} {
		if strings.Contains(out, s) {
			t.Errorf("log shows %q:\n%s", s, out)
		}
	}
	rec := records(t, &b)[0]
	want := map[string]any{
		"msg":        "dial smtp://u:<redacted>@relay failed",
		"error":      "auth with <redacted> refused",
		"url":        "redis://:<redacted>@h",
		"password":   "<redacted>",
		"api_token":  "<redacted>",
		"token_name": "alice",
		"twilio_sid": "AC123",
		"word":       "abc is short and stays",
		"smtp":       map[string]any{"password": "<redacted>", "host": "relay <redacted>"},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, rec[k]); diff != "" {
			t.Errorf("attribute %s (-want,+got):\n%s", k, diff)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	if got := Redact("a s3cret-value b s3cret-value", "s3cret-value", ""); got != "a <redacted> b <redacted>" {
		t.Errorf("Redact() = %q", got)
	}
	if got := Redact("nothing to hide"); got != "nothing to hide" {
		t.Errorf("Redact() without secrets = %q", got)
	}
}

func TestAsynqLogger(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	exited := -1
	a := &asynqLogger{l: New(&b, slog.LevelDebug).With("component", "asynq"), exit: func(code int) { exited = code }}
	var _ asynq.Logger = a
	a.Debug("d ", 1)
	a.Info("i")
	a.Warn("w")
	a.Error("e: ", errors.New("boom"))
	a.Fatal("f")
	var got [][2]any
	for _, r := range records(t, &b) {
		if r["component"] != "asynq" {
			t.Errorf("record %v lacks component=asynq", r)
		}
		got = append(got, [2]any{r["level"], r["msg"]})
	}
	want := [][2]any{{"DEBUG", "d 1"}, {"INFO", "i"}, {"WARN", "w"}, {"ERROR", "e: boom"}, {"ERROR+4", "f"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want,+got):\n%s", diff)
	}
	if exited != 1 {
		t.Errorf("Fatal exited with %d, want 1", exited)
	}
	if AsynqLogger(slog.Default()) == nil {
		t.Error("AsynqLogger() = nil")
	}
}

func TestAsynqLevel(t *testing.T) {
	t.Parallel()
	tests := map[slog.Level]asynq.LogLevel{
		slog.LevelDebug: asynq.DebugLevel,
		slog.LevelInfo:  asynq.InfoLevel,
		slog.LevelWarn:  asynq.WarnLevel,
		slog.LevelError: asynq.ErrorLevel,
	}
	for in, want := range tests {
		if got := AsynqLevel(in); got != want {
			t.Errorf("AsynqLevel(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestRedisLogger(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	RedisLogger(New(&b, slog.LevelInfo, "pw-123456")).Printf(t.Context(), "dial %s failed with %s", "10.0.0.1:6379", "pw-123456")
	recs := records(t, &b)
	if len(recs) != 1 || recs[0]["msg"] != "dial 10.0.0.1:6379 failed with <redacted>" || recs[0]["component"] != "redis" || recs[0]["level"] != "WARN" {
		t.Errorf("records = %v", recs)
	}
}
