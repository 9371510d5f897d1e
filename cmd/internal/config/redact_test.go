package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestRedactedHidesSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"redispw1", "sentinelpw2", "smtppw3", "twiliotok4567890", "tokensecret00001", "unsubscribe-secret-0123456789abcdef"}
	env := map[string]string{
		"BACKOFFICE_REDIS_URL":          "redis-sentinel://u:redispw1@s1:26379,s2/mymaster?sentinel_password=sentinelpw2",
		"BACKOFFICE_SMTP_URL":           "smtp://mailer:smtppw3@relay.example.com:587?tls=starttls",
		"BACKOFFICE_TWILIO_ACCOUNT_SID": goodSID,
		"BACKOFFICE_TWILIO_AUTH_TOKEN":  "twiliotok4567890",
		"BACKOFFICE_TWILIO_FROM":        "+421900123456",
		"BACKOFFICE_API_TOKENS":         "ops:operator:tokensecret00001",
		"BACKOFFICE_UNSUBSCRIBE_SECRET": "unsubscribe-secret-0123456789abcdef",
	}
	c, err := Load(envOf(env), nil)
	if err != nil {
		t.Fatalf("Load(): %v", err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c)
	outputs := map[string]string{
		"Redacted":   c.Redacted(),
		"%v":         fmt.Sprintf("%v", c),
		"%+v":        fmt.Sprintf("%+v", c),
		"%#v":        fmt.Sprintf("%#v", c),
		"%v tokens":  fmt.Sprintf("%v %#v", c.APITokens, c.APITokens),
		"slog value": logged.String(),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output shows secret %q:\n%s", name, s, out)
			}
		}
	}
	r := c.Redacted()
	for _, want := range []string{
		"redis-sentinel://u:<redacted>@s1:26379,s2/mymaster?sentinel_password=<redacted>",
		"smtp://mailer:<redacted>@relay.example.com:587?tls=starttls",
		"ops:operator:<redacted>",
		"BACKOFFICE_TWILIO_AUTH_TOKEN",
		"BACKOFFICE_UNSUBSCRIBE_SECRET",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("Redacted() lacks %q:\n%s", want, r)
		}
	}
	var rec struct{ Config map[string]string }
	if err := json.Unmarshal(logged.Bytes(), &rec); err != nil {
		t.Fatalf("log record %s: %v", logged.String(), err)
	}
	if got := rec.Config["BACKOFFICE_TWILIO_AUTH_TOKEN"]; got != "<redacted>" {
		t.Errorf("logged BACKOFFICE_TWILIO_AUTH_TOKEN = %q, want <redacted>", got)
	}
}

func TestEnsureSecrets(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	c := Config{DataDir: dir}
	if err := c.EnsureSecrets(); err != nil {
		t.Fatalf("EnsureSecrets(): %v", err)
	}
	if len(c.UnsubscribeSecret) < MinUnsubscribeSecretLen {
		t.Fatalf("generated secret has %d characters, want %d+", len(c.UnsubscribeSecret), MinUnsubscribeSecretLen)
	}
	st, err := os.Stat(filepath.Join(dir, "unsubscribe.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("unsubscribe.secret mode = %v, want 0600", perm)
	}
	again := Config{DataDir: dir}
	if err := again.EnsureSecrets(); err != nil {
		t.Fatal(err)
	}
	if again.UnsubscribeSecret != c.UnsubscribeSecret {
		t.Errorf("second start read a different secret: links would break across restarts")
	}
	given := Config{DataDir: dir, UnsubscribeSecret: strings.Repeat("g", 40)}
	if err := given.EnsureSecrets(); err != nil || given.UnsubscribeSecret != strings.Repeat("g", 40) {
		t.Errorf("EnsureSecrets() with a configured secret = %v, secret changed to %q", err, given.UnsubscribeSecret)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only unsubscribe.secret (no temp files left)", len(entries))
	}
}

func TestEnsureSecretsConcurrentStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 8
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := Config{DataDir: dir}
			errs[i] = c.EnsureSecrets()
			got[i] = c.UnsubscribeSecret
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("start %d got another secret than start 0", i)
		}
	}
}

func TestEnsureSecretsRejectsShortFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "unsubscribe.secret")
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{DataDir: dir}
	err := c.EnsureSecrets()
	if err == nil || !strings.Contains(err.Error(), path+": want at least 32 characters, got 5") {
		t.Errorf("EnsureSecrets() = %v, want an error naming %s", err, path)
	}
}

// A data dir that cannot be made stops the start with an error naming
// the variable, not only "unsubscribe secret".
func TestEnsureSecretsNamesDataDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{DataDir: filepath.Join(file, "var")}
	if err := c.EnsureSecrets(); err == nil || !strings.HasPrefix(err.Error(), "BACKOFFICE_DATA_DIR: ") {
		t.Errorf("EnsureSecrets() = %v, want an error naming BACKOFFICE_DATA_DIR", err)
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	c := Config{
		RedisURL:          "redis-sentinel://u:r%40pw@s1:1,s2/m?sentinel_password=spw",
		SMTPURL:           "smtp://mailer:smtppw@relay:587",
		APITokens:         []Token{{Name: "a", Role: RoleViewer, Secret: "tok-secret-000001"}},
		TwilioAuthToken:   "twtok",
		UnsubscribeSecret: strings.Repeat("u", 32),
	}
	got := c.Secrets()
	for _, want := range []string{"r%40pw", "r@pw", "spw", "smtppw", "tok-secret-000001", "twtok", strings.Repeat("u", 32)} {
		if !slices.Contains(got, want) {
			t.Errorf("Secrets() = %q, lacks %q", got, want)
		}
	}
	// An @ in a query value does not hide the password before the host.
	at := Config{RedisURL: "redis-sentinel://u:mainpw@s1/m?sentinel_password=s@pw"}
	if got := at.Secrets(); !slices.Contains(got, "mainpw") || !slices.Contains(got, "s@pw") {
		t.Errorf("Secrets() of %s = %q, want mainpw and s@pw", at.RedisURL, got)
	}
	if got := (Config{RedisURL: "redis://127.0.0.1:6379/0"}).Secrets(); len(got) != 0 {
		t.Errorf("Secrets() without secrets = %q, want none", got)
	}
}
