package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	goodSID     = "AC0123456789abcdef0123456789abcdef"
	goodService = "MG0123456789abcdef0123456789abcdef"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(envOf(nil), nil)
	if err != nil {
		t.Fatalf("Load() with no settings: %v", err)
	}
	wd, _ := os.Getwd()
	want := Config{
		RedisURL:        "redis://127.0.0.1:6379/0",
		HTTPAddr:        "127.0.0.1:8080",
		PublicURL:       "http://127.0.0.1:8080",
		DataDir:         filepath.Join(wd, "var"),
		SchedulesDir:    filepath.Join(wd, "schedules"),
		Concurrency:     40,
		LogLevel:        slog.LevelInfo,
		KeyPrefix:       "bo:",
		PhoneRegion:     "SK",
		DefaultLanguage: "en",
		ShutdownTimeout: 30 * time.Second,
		MailFrom:        "Shop <shop@localhost>",
		ShopName:        "Shop",
		SMTPPool:        4,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Load() defaults (-want,+got):\n%s", diff)
	}
	if c.SMTPEnabled() || c.TwilioEnabled() {
		t.Errorf("SMTPEnabled()=%v TwilioEnabled()=%v, want both false by default", c.SMTPEnabled(), c.TwilioEnabled())
	}
	if got, want := c.OutboxDir(), filepath.Join(wd, "var", "outbox"); got != want {
		t.Errorf("OutboxDir() = %q, want %q", got, want)
	}
}

func TestLoadEnvAndFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"BACKOFFICE_REDIS_URL":                    "redis-cluster://:pw@10.0.0.1:7000,10.0.0.2:7000",
		"BACKOFFICE_HTTP_ADDR":                    ":9090",
		"BACKOFFICE_DATA_DIR":                     "/srv/bo",
		"BACKOFFICE_CONCURRENCY":                  "50",
		"BACKOFFICE_LOG_LEVEL":                    "DEBUG",
		"BACKOFFICE_KEY_PREFIX":                   "shop1:",
		"BACKOFFICE_PHONE_REGION":                 "DE",
		"BACKOFFICE_DEFAULT_LANGUAGE":             "sk",
		"BACKOFFICE_SHUTDOWN_TIMEOUT":             "2m",
		"BACKOFFICE_SMTP_URL":                     "smtps://shop:s3cret@mail.example.com",
		"BACKOFFICE_MAIL_FROM":                    "Eshop <eshop@example.com>",
		"BACKOFFICE_SMTP_POOL":                    "8",
		"BACKOFFICE_TWILIO_ACCOUNT_SID":           goodSID,
		"BACKOFFICE_TWILIO_AUTH_TOKEN":            "0123456789abcdef0123456789abcdef",
		"BACKOFFICE_TWILIO_MESSAGING_SERVICE_SID": goodService,
		"BACKOFFICE_TWILIO_API_URL":               "http://127.0.0.1:9999/",
		"BACKOFFICE_API_TOKENS":                   "alice:operator:aaaaaaaaaaaaaaaa, bob:viewer:bbbbbbbbbbbbbbbb:with:colons",
		"BACKOFFICE_UNSUBSCRIBE_SECRET":           strings.Repeat("u", 32),
	}
	c, err := Load(envOf(env), []string{"-concurrency", "7", "-public-url=https://shop.example.com/backoffice/", "-log-level", "warn"})
	if err != nil {
		t.Fatalf("Load(): %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Concurrency (flag wins)", c.Concurrency, 7},
		{"LogLevel (flag wins)", c.LogLevel, slog.LevelWarn},
		{"PublicURL (slash trimmed)", c.PublicURL, "https://shop.example.com/backoffice"},
		{"HTTPAddr", c.HTTPAddr, ":9090"},
		{"DataDir", c.DataDir, "/srv/bo"},
		{"OutboxDir", c.OutboxDir(), "/srv/bo/outbox"},
		{"KeyPrefix", c.KeyPrefix, "shop1:"},
		{"PhoneRegion", c.PhoneRegion, "DE"},
		{"DefaultLanguage", c.DefaultLanguage, "sk"},
		{"ShutdownTimeout", c.ShutdownTimeout, 2 * time.Minute},
		{"SMTPPool", c.SMTPPool, 8},
		{"SMTPEnabled", c.SMTPEnabled(), true},
		{"TwilioEnabled", c.TwilioEnabled(), true},
		{"TwilioAPIURL (slash trimmed)", c.TwilioAPIURL, "http://127.0.0.1:9999"},
		{"APITokens", c.APITokens, []Token{
			{Name: "alice", Role: RoleOperator, Secret: "aaaaaaaaaaaaaaaa"},
			{Name: "bob", Role: RoleViewer, Secret: "bbbbbbbbbbbbbbbb:with:colons"},
		}},
	}
	for _, ch := range checks {
		if diff := cmp.Diff(ch.want, ch.got); diff != "" {
			t.Errorf("%s (-want,+got):\n%s", ch.name, diff)
		}
	}
}

// Campaign chunks never take every worker: a fifth, at least two, stay
// for the daemon's other jobs.
func TestCampaignChunks(t *testing.T) {
	for conc, want := range map[int]int{3: 1, 4: 2, 10: 8, 20: 16, 100: 80} {
		if got := (Config{Concurrency: conc}).CampaignChunks(); got != want {
			t.Errorf("Concurrency %d: CampaignChunks() = %d, want %d", conc, got, want)
		}
		if left := conc - (Config{Concurrency: conc}).CampaignChunks(); left < 2 {
			t.Errorf("Concurrency %d: %d workers left for other tasks during a campaign, want at least 2", conc, left)
		}
	}
}

func TestPublicURLDefault(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":8080":          "http://localhost:8080",
		"0.0.0.0:80":     "http://localhost:80",
		"[::]:8080":      "http://localhost:8080",
		"[::1]:8080":     "http://[::1]:8080",
	} {
		c, err := Load(envOf(map[string]string{"BACKOFFICE_HTTP_ADDR": addr}), nil)
		if err != nil {
			t.Fatalf("Load(HTTP_ADDR=%s): %v", addr, err)
		}
		if c.PublicURL != want {
			t.Errorf("HTTP_ADDR=%s: PublicURL = %q, want %q", addr, c.PublicURL, want)
		}
	}
}

// TestRules loads one setting at a time and checks that a good value loads
// and that a bad one fails with an error naming the variable.
func TestRules(t *testing.T) {
	t.Parallel()
	twilio := map[string]string{
		"BACKOFFICE_TWILIO_ACCOUNT_SID": goodSID,
		"BACKOFFICE_TWILIO_AUTH_TOKEN":  "tok0123456789abcdef",
		"BACKOFFICE_TWILIO_FROM":        "+421900123456",
	}
	tests := []struct {
		env     map[string]string
		wantErr string // "" means the value is good
	}{
		// Redis URL: the forms themselves are tested in redisconn.
		{map[string]string{"BACKOFFICE_REDIS_URL": "redis://:pw@localhost:6380/2"}, ""},
		{map[string]string{"BACKOFFICE_REDIS_URL": "redis-sentinel://s1,s2:26380/mymaster?db=1"}, ""},
		{map[string]string{"BACKOFFICE_REDIS_URL": "http://localhost"}, `BACKOFFICE_REDIS_URL: scheme "http"`},
		{map[string]string{"BACKOFFICE_REDIS_URL": "redis://:hunter2@localhost:99999"}, `BACKOFFICE_REDIS_URL: `},
		{map[string]string{"BACKOFFICE_REDIS_URL": "redis://:Xk/hunter2@localhost/0"}, `BACKOFFICE_REDIS_URL: cannot be read`},
		{map[string]string{"BACKOFFICE_REDIS_URL": "redis-sentinel://s1/m?sentinel_password=hun%ter2"}, `BACKOFFICE_REDIS_URL: query: cannot be read`},

		{map[string]string{"BACKOFFICE_HTTP_ADDR": "0.0.0.0:80"}, ""},
		{map[string]string{"BACKOFFICE_HTTP_ADDR": "localhost"}, `BACKOFFICE_HTTP_ADDR: want host:port`},
		{map[string]string{"BACKOFFICE_HTTP_ADDR": "localhost:http"}, `BACKOFFICE_HTTP_ADDR: port "http"`},
		{map[string]string{"BACKOFFICE_HTTP_ADDR": "localhost:70000"}, `BACKOFFICE_HTTP_ADDR: port "70000"`},

		{map[string]string{"BACKOFFICE_PUBLIC_URL": "https://bo.example.com"}, ""},
		{map[string]string{"BACKOFFICE_PUBLIC_URL": "bo.example.com"}, `BACKOFFICE_PUBLIC_URL: want an absolute http:// or https:// URL`},
		{map[string]string{"BACKOFFICE_PUBLIC_URL": "ftp://bo.example.com"}, `BACKOFFICE_PUBLIC_URL: want an absolute`},
		{map[string]string{"BACKOFFICE_PUBLIC_URL": "https://u:p@bo.example.com"}, `BACKOFFICE_PUBLIC_URL: must not contain user:password@`},
		{map[string]string{"BACKOFFICE_PUBLIC_URL": "https://bo.example.com/?x=1"}, `BACKOFFICE_PUBLIC_URL: must not have a query`},

		{map[string]string{"BACKOFFICE_CONCURRENCY": "3"}, ""},
		{map[string]string{"BACKOFFICE_CONCURRENCY": "1"}, `BACKOFFICE_CONCURRENCY: must be a whole number between 3 and 1000, got 1`},
		{map[string]string{"BACKOFFICE_CONCURRENCY": "1000"}, ""},
		{map[string]string{"BACKOFFICE_CONCURRENCY": "abc"}, `BACKOFFICE_CONCURRENCY: must be a whole number between 3 and 1000, got "abc"`},
		{map[string]string{"BACKOFFICE_CONCURRENCY": "0"}, `BACKOFFICE_CONCURRENCY: must be a whole number between 3 and 1000, got 0`},
		{map[string]string{"BACKOFFICE_CONCURRENCY": "1001"}, `BACKOFFICE_CONCURRENCY: must be a whole number between 3 and 1000, got 1001`},
		{map[string]string{"BACKOFFICE_CONCURRENCY": "2.5"}, `BACKOFFICE_CONCURRENCY: must be a whole number`},

		{map[string]string{"BACKOFFICE_LOG_LEVEL": "error"}, ""},
		{map[string]string{"BACKOFFICE_LOG_LEVEL": "verbose"}, `BACKOFFICE_LOG_LEVEL: must be debug, info, warn or error, got "verbose"`},

		{map[string]string{"BACKOFFICE_KEY_PREFIX": "shop_2.bo-x:"}, ""},
		{map[string]string{"BACKOFFICE_KEY_PREFIX": "{bo}:"}, `BACKOFFICE_KEY_PREFIX: want at most 32`},
		{map[string]string{"BACKOFFICE_KEY_PREFIX": "bo prefix"}, `BACKOFFICE_KEY_PREFIX: want at most 32`},
		{map[string]string{"BACKOFFICE_KEY_PREFIX": strings.Repeat("a", 33)}, `BACKOFFICE_KEY_PREFIX: want at most 32`},

		{map[string]string{"BACKOFFICE_PHONE_REGION": "CZ"}, ""},
		{map[string]string{"BACKOFFICE_PHONE_REGION": "sk"}, `BACKOFFICE_PHONE_REGION: want a supported ISO 3166`},
		{map[string]string{"BACKOFFICE_PHONE_REGION": "XX"}, `BACKOFFICE_PHONE_REGION: want a supported ISO 3166`},

		{map[string]string{"BACKOFFICE_DEFAULT_LANGUAGE": "pt-BR"}, ""},
		{map[string]string{"BACKOFFICE_DEFAULT_LANGUAGE": "English"}, `BACKOFFICE_DEFAULT_LANGUAGE: want a lower-case language code`},

		{map[string]string{"BACKOFFICE_SHUTDOWN_TIMEOUT": "1s"}, ""},
		{map[string]string{"BACKOFFICE_SHUTDOWN_TIMEOUT": "30"}, `BACKOFFICE_SHUTDOWN_TIMEOUT: must be a duration such as 30s or 2m, got "30"`},
		{map[string]string{"BACKOFFICE_SHUTDOWN_TIMEOUT": "500ms"}, `BACKOFFICE_SHUTDOWN_TIMEOUT: must be between 1s and 1h, got 500ms`},
		{map[string]string{"BACKOFFICE_SHUTDOWN_TIMEOUT": "2h"}, `BACKOFFICE_SHUTDOWN_TIMEOUT: must be between 1s and 1h`},

		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://relay.local:25?tls=none"}, ""},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://u:p@relay.local:587?tls=starttls&auth=login"}, ""},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtps://u:p@relay.local"}, ""},
		{map[string]string{"BACKOFFICE_SMTP_URL": "http://relay.local"}, `BACKOFFICE_SMTP_URL: scheme "http": want smtp or smtps`},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://:587"}, `BACKOFFICE_SMTP_URL: host: required`},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://relay.local:0"}, `BACKOFFICE_SMTP_URL: port "0": want 1-65535`},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://relay.local?tls=maybe"}, `BACKOFFICE_SMTP_URL: query tls="maybe"`},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtps://relay.local?tls=starttls"}, `BACKOFFICE_SMTP_URL: query tls="starttls": smtps is always implicit TLS`},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://relay.local?pool=3"}, `BACKOFFICE_SMTP_URL: query "pool": unknown option`},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://relay.local:25?tls=none&pipelining=off"}, ""},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://relay.local?pipelining=no"}, `BACKOFFICE_SMTP_URL: query pipelining="no": want on or off`},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://user@relay.local"}, `BACKOFFICE_SMTP_URL: user: want user:password@`},
		{map[string]string{"BACKOFFICE_SMTP_URL": "smtp://relay.local/inbox"}, `BACKOFFICE_SMTP_URL: path`},

		{map[string]string{"BACKOFFICE_MAIL_FROM": "shop@example.com"}, ""},
		{map[string]string{"BACKOFFICE_MAIL_FROM": "Shop"}, `BACKOFFICE_MAIL_FROM: want an address`},

		{map[string]string{"BACKOFFICE_SHOP_NAME": "Eshop Bratislava", "BACKOFFICE_SHOP_URL": "https://eshop.example.sk/", "BACKOFFICE_SUPPORT_EMAIL": "help@example.sk", "BACKOFFICE_SUPPORT_PHONE": "+421900123456"}, ""},
		{map[string]string{"BACKOFFICE_SHOP_NAME": " "}, `BACKOFFICE_SHOP_NAME: must not be empty`},
		{map[string]string{"BACKOFFICE_SHOP_NAME": "Eshop\nBcc: x"}, `BACKOFFICE_SHOP_NAME: must be one line`},
		{map[string]string{"BACKOFFICE_SHOP_URL": "ftp://eshop"}, `BACKOFFICE_SHOP_URL: want an absolute http:// or https:// URL`},
		{map[string]string{"BACKOFFICE_SUPPORT_EMAIL": "Help <help@example.sk>"}, `BACKOFFICE_SUPPORT_EMAIL: want a bare address`},
		{map[string]string{"BACKOFFICE_SUPPORT_PHONE": "0900 123 456"}, `BACKOFFICE_SUPPORT_PHONE: want an E.164 number`},

		{map[string]string{"BACKOFFICE_SMTP_POOL": "64"}, ""},
		{map[string]string{"BACKOFFICE_SMTP_POOL": "65"}, `BACKOFFICE_SMTP_POOL: must be a whole number between 1 and 64, got 65`},

		{twilio, ""},
		{with(twilio, "BACKOFFICE_TWILIO_FROM", "Eshop SK"), ""},
		{with(with(twilio, "BACKOFFICE_TWILIO_FROM", ""), "BACKOFFICE_TWILIO_MESSAGING_SERVICE_SID", goodService), ""},
		{with(twilio, "BACKOFFICE_TWILIO_ACCOUNT_SID", "AC123"), `BACKOFFICE_TWILIO_ACCOUNT_SID: want AC followed by 32 hex digits`},
		{with(twilio, "BACKOFFICE_TWILIO_AUTH_TOKEN", ""), `BACKOFFICE_TWILIO_AUTH_TOKEN: required when BACKOFFICE_TWILIO_ACCOUNT_SID is set`},
		{with(twilio, "BACKOFFICE_TWILIO_AUTH_TOKEN", "tok-0123456789abcdef"), `BACKOFFICE_TWILIO_AUTH_TOKEN: want letters and digits only`},
		{map[string]string{"BACKOFFICE_TWILIO_AUTH_TOKEN": "tok0123456789abcdef"}, `BACKOFFICE_TWILIO_ACCOUNT_SID: required when BACKOFFICE_TWILIO_AUTH_TOKEN is set`},
		{with(twilio, "BACKOFFICE_TWILIO_FROM", ""), `BACKOFFICE_TWILIO_FROM: required with a Twilio account`},
		{with(twilio, "BACKOFFICE_TWILIO_FROM", "0900123456"), `BACKOFFICE_TWILIO_FROM: want an E.164 number`},
		{with(twilio, "BACKOFFICE_TWILIO_FROM", "TwelveLetter"), `BACKOFFICE_TWILIO_FROM: want an E.164 number`},
		{with(twilio, "BACKOFFICE_TWILIO_MESSAGING_SERVICE_SID", "MG1"), `BACKOFFICE_TWILIO_MESSAGING_SERVICE_SID: want MG followed by 32 hex digits`},
		{with(twilio, "BACKOFFICE_TWILIO_API_URL", "https://twilio.test"), ""},
		{with(twilio, "BACKOFFICE_TWILIO_API_URL", "twilio.test"), `BACKOFFICE_TWILIO_API_URL: want an absolute http:// or https:// URL`},
		{with(twilio, "BACKOFFICE_TWILIO_API_URL", "http://twilio.test/2010-04-01"), `BACKOFFICE_TWILIO_API_URL: must not have a path`},

		{map[string]string{"BACKOFFICE_UNSUBSCRIBE_SECRET": strings.Repeat("x", 32)}, ""},
		{map[string]string{"BACKOFFICE_UNSUBSCRIBE_SECRET": "short"}, `BACKOFFICE_UNSUBSCRIBE_SECRET: want at least 32 characters, got 5`},

		{map[string]string{"BACKOFFICE_API_TOKENS": "ci:viewer:0123456789abcdef"}, ""},
		{map[string]string{"BACKOFFICE_API_TOKENS": "ci:viewer"}, `BACKOFFICE_API_TOKENS: entry 1: want name:role:secret`},
		{map[string]string{"BACKOFFICE_API_TOKENS": "ci:admin:0123456789abcdef"}, `BACKOFFICE_API_TOKENS: entry 1: token "ci": role "admin": want viewer or operator`},
		{map[string]string{"BACKOFFICE_API_TOKENS": "a:viewer:0123456789abcdef,ci:viewer:short"}, `BACKOFFICE_API_TOKENS: entry 2: token "ci": secret: want at least 16 characters, got 5`},
		{map[string]string{"BACKOFFICE_API_TOKENS": "c i:viewer:0123456789abcdef"}, `BACKOFFICE_API_TOKENS: entry 1: token name "c i"`},
		{map[string]string{"BACKOFFICE_API_TOKENS": "ci:viewer:0123456789abcdef,ci:operator:fedcba9876543210"}, `BACKOFFICE_API_TOKENS: token name "ci": given twice`},
		{map[string]string{"BACKOFFICE_API_TOKENS": "a:viewer:0123456789abcdef,b:operator:0123456789abcdef"}, `BACKOFFICE_API_TOKENS: tokens "a" and "b": same secret`},
	}
	for _, tt := range tests {
		_, err := Load(envOf(tt.env), nil)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Load(%v) = %v, want no error", tt.env, err)
		case tt.wantErr != "" && err == nil:
			t.Errorf("Load(%v) = nil, want an error containing %q", tt.env, tt.wantErr)
		case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
			t.Errorf("Load(%v) = %q, want it to contain %q", tt.env, err, tt.wantErr)
		}
		if err != nil {
			for _, v := range tt.env {
				if strings.Contains(v, "hunter2") && strings.Contains(err.Error(), "hunter2") {
					t.Errorf("Load(%v) error repeats the password: %v", tt.env, err)
				}
			}
		}
	}
}

func with(m map[string]string, k, v string) map[string]string {
	c := map[string]string{k: v}
	for key, val := range m {
		if key != k {
			c[key] = val
		}
	}
	return c
}

func TestLoadReportsEveryError(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"BACKOFFICE_CONCURRENCY": "abc",
		"BACKOFFICE_SMTP_POOL":   "0",
		"BACKOFFICE_KEY_PREFIX":  "{x}",
	}
	_, err := Load(envOf(env), []string{"-log-level", "loud"})
	var got []string
	for _, e := range splitErrors(err) {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %v is a %T, want *Error", e, e)
		}
		got = append(got, ce.Var)
	}
	want := []string{"BACKOFFICE_CONCURRENCY", "-log-level (BACKOFFICE_LOG_LEVEL)", "BACKOFFICE_KEY_PREFIX", "BACKOFFICE_SMTP_POOL"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables named by Load's errors (-want,+got):\n%s\nerror: %v", diff, err)
	}
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-concurrency", "x"}, `-concurrency (BACKOFFICE_CONCURRENCY): must be a whole number between 3 and 1000, got "x"`},
		{[]string{"-redis-url", "redis://:hunter2@h:6379"}, `-redis-url (BACKOFFICE_REDIS_URL): a URL with a password belongs in the environment`},
		{[]string{"-redis-url", "redis-sentinel://h/m?sentinel_password=hunter2"}, `belongs in the environment`},
		{[]string{"-smtp-url", "smtp://h"}, `command line: flag provided but not defined: -smtp-url`},
		{[]string{"-twilio-auth-token", "x"}, `flag provided but not defined: -twilio-auth-token`},
		{[]string{"extra"}, `command line: unexpected argument "extra"`},
	}
	for _, tt := range tests {
		_, err := Load(envOf(nil), tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Load(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Load(%q) error repeats the password: %v", tt.args, err)
		}
	}
}

func TestHelpAndCheck(t *testing.T) {
	t.Parallel()
	if _, err := Load(envOf(nil), []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Load(-h) = %v, want flag.ErrHelp", err)
	}
	c, err := Load(envOf(nil), []string{"-check"})
	if err != nil || !c.Check {
		t.Errorf("Load(-check) = Check %v, %v; want true, nil", c.Check, err)
	}
	var b strings.Builder
	Usage(&b)
	for _, s := range settings() {
		if !strings.Contains(b.String(), s.env) {
			t.Errorf("Usage() does not mention %s", s.env)
		}
	}
	// An empty default is said in the text ("empty: outbox"), not as
	// (default ""), which followed "(default http://<http-addr>)" too.
	if strings.Contains(b.String(), `(default "")`) {
		t.Errorf("Usage() shows empty defaults:\n%s", b.String())
	}
	if strings.Contains(b.String(), "archives") {
		t.Errorf("Usage() says the data dir holds archives, which the daemon does not make:\n%s", b.String())
	}
}

func TestEmptyFlagOverridesEnv(t *testing.T) {
	t.Parallel()
	c, err := Load(envOf(map[string]string{"BACKOFFICE_TEMPLATES_DIR": "/srv/templates"}), []string{"-templates-dir="})
	if err != nil {
		t.Fatal(err)
	}
	if c.TemplatesDir != "" {
		t.Errorf("TemplatesDir = %q, want empty: the flag wins", c.TemplatesDir)
	}
}

func TestValidateBuiltConfig(t *testing.T) {
	t.Parallel()
	good, err := Load(envOf(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate() of the defaults = %v", err)
	}
	bad := good
	bad.APITokens = []Token{{Name: "x", Role: "root", Secret: "0123456789abcdef"}}
	bad.Concurrency = 0
	err = bad.Validate()
	for _, want := range []string{`BACKOFFICE_API_TOKENS: token "x": role "root"`, `BACKOFFICE_CONCURRENCY: must be a whole number between 3 and 1000, got 0`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
}

func TestTokensFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	content := "# operators\nalice:operator:aaaaaaaaaaaaaaaa\n\n  bob:viewer:bbbbbbbbbbbbbbbb  \n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(envOf(map[string]string{
		"BACKOFFICE_API_TOKENS":      "ci:viewer:cccccccccccccccc",
		"BACKOFFICE_API_TOKENS_FILE": path,
	}), nil)
	if err != nil {
		t.Fatalf("Load(): %v", err)
	}
	want := []Token{
		{Name: "ci", Role: RoleViewer, Secret: "cccccccccccccccc"},
		{Name: "alice", Role: RoleOperator, Secret: "aaaaaaaaaaaaaaaa"},
		{Name: "bob", Role: RoleViewer, Secret: "bbbbbbbbbbbbbbbb"},
	}
	if diff := cmp.Diff(want, c.APITokens); diff != "" {
		t.Errorf("APITokens (-want,+got):\n%s", diff)
	}

	badPath := filepath.Join(dir, "bad")
	if err := os.WriteFile(badPath, []byte("alice:operator:aaaaaaaaaaaaaaaa\nbob:boss:bbbbbbbbbbbbbbbb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{"BACKOFFICE_API_TOKENS_FILE": badPath}, fmt.Sprintf(`BACKOFFICE_API_TOKENS_FILE: %s:2: token "bob": role "boss"`, badPath)},
		{map[string]string{"BACKOFFICE_API_TOKENS_FILE": filepath.Join(dir, "missing")}, `BACKOFFICE_API_TOKENS_FILE: read ` + filepath.Join(dir, "missing") + `: no such file or directory`},
		{map[string]string{"BACKOFFICE_API_TOKENS_FILE": path, "BACKOFFICE_API_TOKENS": "alice:viewer:zzzzzzzzzzzzzzzz"}, `BACKOFFICE_API_TOKENS: token name "alice": given twice`},
	}
	for _, tt := range tests {
		_, err := Load(envOf(tt.env), nil)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Load(%v) = %v, want an error containing %q", tt.env, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "bbbbbbbbbbbbbbbb") {
			t.Errorf("Load(%v) error repeats a secret: %v", tt.env, err)
		}
	}
}

func TestRoleAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r, need Role
		want    bool
	}{
		{RoleOperator, RoleOperator, true},
		{RoleOperator, RoleViewer, true},
		{RoleViewer, RoleViewer, true},
		{RoleViewer, RoleOperator, false},
		{Role("admin"), RoleViewer, false},
		{Role(""), RoleViewer, false},
		{RoleOperator, Role("admin"), false},
	}
	for _, tt := range tests {
		if got := tt.r.Allows(tt.need); got != tt.want {
			t.Errorf("Role(%q).Allows(%q) = %v, want %v", tt.r, tt.need, got, tt.want)
		}
	}
}

// A password with / ? # @ or a bad % escape written as is makes net/url read
// its start as the host or port; the error must not repeat any of it.
func TestSMTPURLErrorsNeverRepeatThePassword(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"smtp://mailer:Xk9/hunter2@relay.example.com:587",
		"smtp://mailer:Xk9?hunter2@relay.example.com:587",
		"smtp://mailer:Xk9#hunter2@relay.example.com",
		"smtps://mailer:Xk9/hunter2@relay.example.com",
		"smtp://mailer:Xk9%zzhunter2@relay.example.com",
	} {
		_, err := Load(envOf(map[string]string{"BACKOFFICE_SMTP_URL": raw}), nil)
		if err == nil || !strings.Contains(err.Error(), "BACKOFFICE_SMTP_URL: ") {
			t.Errorf("Load(BACKOFFICE_SMTP_URL=%q) = %v, want an error naming the variable", raw, err)
			continue
		}
		for _, part := range []string{"Xk9", "hunter2", "%zz"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("Load(BACKOFFICE_SMTP_URL=%q) error repeats part of the password (%q): %v", raw, part, err)
			}
		}
		if !strings.Contains(err.Error(), "%25") {
			t.Errorf("Load(BACKOFFICE_SMTP_URL=%q) = %v, want advice on percent-encoding", raw, err)
		}
	}
}

// A misspelt variable must stop the start, not leave its setting at the
// default in silence; its value (maybe a secret) is never repeated.
func TestCheckNames(t *testing.T) {
	t.Parallel()
	err := CheckNames([]string{
		"PATH=/usr/bin",
		"BACKOFFICE_PUBLIC_URL=https://shop.example",
		"BACKOFFICE_URL=http://127.0.0.1:8080", // the CLI's
		"BACKOFFICE_TOKEN=cli-token-hunter2",   // the CLI's
		"BACKOFFICE_PUBLC_URL=https://bo.example.com",
		"BACKOFFICE_TWILIO_AUTHTOKEN=hunter2-token",
		"BACKOFFICE_COLOUR=blue",
	})
	want := []string{
		"BACKOFFICE_COLOUR: unknown variable",
		"BACKOFFICE_PUBLC_URL: unknown variable; did you mean BACKOFFICE_PUBLIC_URL?",
		"BACKOFFICE_TWILIO_AUTHTOKEN: unknown variable; did you mean BACKOFFICE_TWILIO_AUTH_TOKEN?",
	}
	var got []string
	for _, e := range splitErrors(err) {
		if e != nil {
			got = append(got, e.Error())
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CheckNames() (-want,+got):\n%s", diff)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("CheckNames() repeats a value: %v", err)
	}
	if err := CheckNames([]string{"BACKOFFICE_REDIS_URL=redis://h/0", "HOME=/root"}); err != nil {
		t.Errorf("CheckNames() of known names = %v, want nil", err)
	}
}
