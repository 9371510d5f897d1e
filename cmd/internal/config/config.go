// Package config is the one configuration of the daemon: defaults that run
// on a fresh machine, environment variables BACKOFFICE_* and command-line
// flags (flags win over the environment). Secrets (passwords, tokens) come
// only from the environment or from files, never from flags, which other
// users of the machine can read in the process list.
//
// Load reads and checks everything at start-up, and reports every bad value
// at once, each naming its variable.
package config

import (
	"log/slog"
	"path/filepath"
	"time"
)

// Config is the effective configuration of the daemon.
type Config struct {
	// RedisURL is where every queue and record lives (BACKOFFICE_REDIS_URL,
	// default redis://127.0.0.1:6379/0). Forms: see package redisconn.
	RedisURL string
	// HTTPAddr is the listen address of the dashboard, API, webhooks and
	// /metrics (BACKOFFICE_HTTP_ADDR, default 127.0.0.1:8080).
	HTTPAddr string
	// PublicURL is the absolute http(s) URL at which customers and Twilio
	// reach HTTPAddr, without a trailing slash (BACKOFFICE_PUBLIC_URL,
	// default http://<HTTPAddr>). Twilio signatures and unsubscribe links
	// are built from it, so behind a proxy set it to the outside URL.
	PublicURL string
	// DataDir holds the outbox, archives and generated secrets
	// (BACKOFFICE_DATA_DIR, default ./var, made absolute).
	DataDir string
	// SchedulesDir holds the operators' schedule files
	// (BACKOFFICE_SCHEDULES_DIR, default ./schedules, made absolute).
	SchedulesDir string
	// TemplatesDir overrides the embedded message templates with files
	// (BACKOFFICE_TEMPLATES_DIR, default empty: embedded templates only).
	TemplatesDir string
	// APITokens are the bearer tokens of the REST API and dashboard, from
	// BACKOFFICE_API_TOKENS (comma-separated name:role:secret) and
	// BACKOFFICE_API_TOKENS_FILE (one per line). Default none: the API then
	// refuses everything but /healthz and /readyz.
	APITokens []Token
	// APITokensFile is the file APITokens were read from, if any
	// (BACKOFFICE_API_TOKENS_FILE, default empty).
	APITokensFile string
	// Concurrency is how many tasks this daemon runs at once
	// (BACKOFFICE_CONCURRENCY, default 40, 3..1000). Campaign chunks take
	// at most CampaignChunks of them, which leaves at least 2.
	Concurrency int
	// LogLevel is the lowest level logged (BACKOFFICE_LOG_LEVEL: debug,
	// info, warn or error; default info).
	LogLevel slog.Level
	// KeyPrefix starts every Redis key of our own stores
	// (BACKOFFICE_KEY_PREFIX, default "bo:", [A-Za-z0-9:_.-]{0,32}).
	KeyPrefix string
	// PhoneRegion is the ISO 3166 alpha-2 region for phone numbers written
	// without a country code (BACKOFFICE_PHONE_REGION, default SK).
	PhoneRegion string
	// DefaultLanguage is the template language for customers without one
	// (BACKOFFICE_DEFAULT_LANGUAGE, default en).
	DefaultLanguage string
	// ShutdownTimeout is how long tasks in flight may finish on shutdown
	// before they go back to the queue (BACKOFFICE_SHUTDOWN_TIMEOUT,
	// default 30s, 1s..1h).
	ShutdownTimeout time.Duration
	// SMTPURL is the mail relay, smtp://user:pass@host:587?tls=... or
	// smtps://... (BACKOFFICE_SMTP_URL, secret; default empty: mail goes to
	// the outbox).
	SMTPURL string
	// MailFrom is the From address of outgoing mail (BACKOFFICE_MAIL_FROM,
	// default "Shop <shop@localhost>").
	MailFrom string
	// ShopName, ShopURL, SupportEmail and SupportPhone are what message
	// templates show as .Shop (BACKOFFICE_SHOP_NAME default "Shop",
	// BACKOFFICE_SHOP_URL, BACKOFFICE_SUPPORT_EMAIL, BACKOFFICE_SUPPORT_PHONE,
	// default empty).
	ShopName     string
	ShopURL      string
	SupportEmail string
	SupportPhone string
	// SMTPPool is how many SMTP connections the daemon keeps open
	// (BACKOFFICE_SMTP_POOL, default 4, 1..64).
	SMTPPool int
	// TwilioAccountSID is the Twilio account, AC + 32 hex digits
	// (BACKOFFICE_TWILIO_ACCOUNT_SID, default empty: SMS go to the outbox).
	TwilioAccountSID string
	// TwilioAuthToken authenticates API calls and checks webhook signatures
	// (BACKOFFICE_TWILIO_AUTH_TOKEN, secret, default empty).
	TwilioAuthToken string
	// TwilioFrom is the sender: an E.164 number or an alphanumeric sender
	// ID (BACKOFFICE_TWILIO_FROM, default empty).
	TwilioFrom string
	// TwilioMessagingServiceSID sends through a messaging service, MG + 32
	// hex digits, instead of From (BACKOFFICE_TWILIO_MESSAGING_SERVICE_SID).
	TwilioMessagingServiceSID string
	// TwilioAPIURL replaces https://api.twilio.com, for a local server that
	// speaks Twilio's API (BACKOFFICE_TWILIO_API_URL, default empty).
	TwilioAPIURL string
	// UnsubscribeSecret signs unsubscribe links, at least 32 characters
	// (BACKOFFICE_UNSUBSCRIBE_SECRET, secret). When empty, EnsureSecrets
	// generates one in DataDir/unsubscribe.secret. Daemons that share a
	// Redis but not a DataDir must all be given the same secret.
	UnsubscribeSecret string

	// Check is set by the -check flag: print the effective configuration
	// and exit.
	Check bool
}

// SMTPEnabled reports whether mail goes to an SMTP relay (else the outbox).
func (c Config) SMTPEnabled() bool { return c.SMTPURL != "" }

// TwilioEnabled reports whether SMS go to Twilio (else the outbox).
func (c Config) TwilioEnabled() bool { return c.TwilioAccountSID != "" }

// CampaignChunks is how many campaign chunks this daemon sends at once:
// its Concurrency less a fifth (at least two) kept for every other job.
func (c Config) CampaignChunks() int { return max(1, c.Concurrency-max(2, c.Concurrency/5)) }

// OutboxDir is where mail and SMS are written when no relay is configured.
func (c Config) OutboxDir() string { return filepath.Join(c.DataDir, "outbox") }

// settings lists every setting in the order -check prints them. A setting
// without a flag is read from the environment only (secrets). Range and
// format rules live in validate.go; set only parses.
func settings() []setting {
	return []setting{
		redisURL("BACKOFFICE_REDIS_URL", "redis-url", "redis://127.0.0.1:6379/0",
			"Redis URL: redis://, rediss://, redis-sentinel://, redis-cluster://", func(c *Config) *string { return &c.RedisURL }),
		text("BACKOFFICE_HTTP_ADDR", "http-addr", "127.0.0.1:8080",
			"listen address of the dashboard, API, webhooks and /metrics", func(c *Config) *string { return &c.HTTPAddr }),
		text("BACKOFFICE_PUBLIC_URL", "public-url", "",
			"absolute URL customers and Twilio reach the daemon at (default http://<http-addr>)", func(c *Config) *string { return &c.PublicURL }),
		dir("BACKOFFICE_DATA_DIR", "data-dir", "./var",
			"outbox, uploaded imports (imports/) and the generated unsubscribe secret", func(c *Config) *string { return &c.DataDir }),
		dir("BACKOFFICE_SCHEDULES_DIR", "schedules-dir", "./schedules",
			"schedule files (*.yaml)", func(c *Config) *string { return &c.SchedulesDir }),
		dir("BACKOFFICE_TEMPLATES_DIR", "templates-dir", "",
			"template files overriding the embedded ones (empty: embedded only)", func(c *Config) *string { return &c.TemplatesDir }),
		apiTokens(),
		apiTokensFile(),
		integer("BACKOFFICE_CONCURRENCY", "concurrency", "40", concurrencyRange,
			"tasks run at once by this daemon, 3-1000", func(c *Config) *int { return &c.Concurrency }),
		logLevel(),
		text("BACKOFFICE_KEY_PREFIX", "key-prefix", "bo:",
			"prefix of every Redis key of our stores", func(c *Config) *string { return &c.KeyPrefix }),
		text("BACKOFFICE_PHONE_REGION", "phone-region", "SK",
			"region (ISO 3166 alpha-2) of phone numbers without a country code", func(c *Config) *string { return &c.PhoneRegion }),
		text("BACKOFFICE_DEFAULT_LANGUAGE", "default-language", "en",
			"template language of customers without one", func(c *Config) *string { return &c.DefaultLanguage }),
		duration("BACKOFFICE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s",
			"how long tasks in flight may finish on shutdown, 1s-1h", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
		secretURL("BACKOFFICE_SMTP_URL", "",
			"SMTP relay smtp://user:pass@host:587?tls=starttls|mandatory-starttls|none or smtps:// (empty: outbox)", func(c *Config) *string { return &c.SMTPURL }),
		text("BACKOFFICE_MAIL_FROM", "mail-from", "Shop <shop@localhost>",
			"From address of outgoing mail", func(c *Config) *string { return &c.MailFrom }),
		text("BACKOFFICE_SHOP_NAME", "shop-name", "Shop",
			"shop name in message templates (.Shop.Name)", func(c *Config) *string { return &c.ShopName }),
		text("BACKOFFICE_SHOP_URL", "shop-url", "",
			"shop web site in message templates (.Shop.URL)", func(c *Config) *string { return &c.ShopURL }),
		text("BACKOFFICE_SUPPORT_EMAIL", "support-email", "",
			"customer support address in message templates (.Shop.SupportEmail)", func(c *Config) *string { return &c.SupportEmail }),
		text("BACKOFFICE_SUPPORT_PHONE", "support-phone", "",
			"customer support phone in message templates (.Shop.SupportPhone)", func(c *Config) *string { return &c.SupportPhone }),
		integer("BACKOFFICE_SMTP_POOL", "smtp-pool", "4", smtpPoolRange,
			"SMTP connections kept open, 1-64", func(c *Config) *int { return &c.SMTPPool }),
		text("BACKOFFICE_TWILIO_ACCOUNT_SID", "twilio-account-sid", "",
			"Twilio account SID (empty: SMS go to the outbox)", func(c *Config) *string { return &c.TwilioAccountSID }),
		secret("BACKOFFICE_TWILIO_AUTH_TOKEN",
			"Twilio auth token; also checks webhook signatures", func(c *Config) *string { return &c.TwilioAuthToken }),
		text("BACKOFFICE_TWILIO_FROM", "twilio-from", "",
			"SMS sender: E.164 number or alphanumeric sender ID", func(c *Config) *string { return &c.TwilioFrom }),
		text("BACKOFFICE_TWILIO_MESSAGING_SERVICE_SID", "twilio-messaging-service-sid", "",
			"Twilio messaging service SID, instead of a sender", func(c *Config) *string { return &c.TwilioMessagingServiceSID }),
		text("BACKOFFICE_TWILIO_API_URL", "twilio-api-url", "",
			"replaces https://api.twilio.com (a local Twilio-API server)", func(c *Config) *string { return &c.TwilioAPIURL }),
		secret("BACKOFFICE_UNSUBSCRIBE_SECRET",
			"signs unsubscribe links, 32+ characters (empty: generated in the data dir)", func(c *Config) *string { return &c.UnsubscribeSecret }),
	}
}
