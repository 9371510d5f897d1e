package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/redisconn"
)

// setting is one configurable value: its variable, its flag ("" for the
// environment only), its default, how it is parsed into a Config and how
// -check shows it.
type setting struct {
	env, flag, def, usage string
	set                   func(c *Config, v string) error
	show                  func(c Config) string
	// noPasswordInFlag refuses a URL with a password from the flag.
	noPasswordInFlag bool
}

const redacted = "<redacted>"

func text(env, flag, def, usage string, field func(*Config) *string) setting {
	return setting{env: env, flag: flag, def: def, usage: usage,
		set:  func(c *Config, v string) error { *field(c) = strings.TrimSpace(v); return nil },
		show: func(c Config) string { return *field(&c) },
	}
}

func dir(env, flag, def, usage string, field func(*Config) *string) setting {
	s := text(env, flag, def, usage, field)
	s.set = func(c *Config, v string) error {
		abs, err := absPath(strings.TrimSpace(v))
		*field(c) = abs
		return err
	}
	return s
}

// intRange is an inclusive range of a whole-number setting.
type intRange struct{ lo, hi int }

var (
	concurrencyRange = intRange{3, 1000} // a campaign takes all but at least 2, and at least 1
	smtpPoolRange    = intRange{1, 64}
)

func (r intRange) check(n int) error {
	if n < r.lo || n > r.hi {
		return fmt.Errorf("must be a whole number between %d and %d, got %d", r.lo, r.hi, n)
	}
	return nil
}

func integer(env, flag, def string, r intRange, usage string, field func(*Config) *int) setting {
	return setting{env: env, flag: flag, def: def, usage: usage,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("must be a whole number between %d and %d, got %q", r.lo, r.hi, v)
			}
			*field(c) = n
			return nil
		},
		show: func(c Config) string { return strconv.Itoa(*field(&c)) },
	}
}

func duration(env, flag, def, usage string, field func(*Config) *time.Duration) setting {
	return setting{env: env, flag: flag, def: def, usage: usage,
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("must be a duration such as 30s or 2m, got %q", v)
			}
			*field(c) = d
			return nil
		},
		show: func(c Config) string { return field(&c).String() },
	}
}

func logLevel() setting {
	return setting{env: "BACKOFFICE_LOG_LEVEL", flag: "log-level", def: "info",
		usage: "lowest level logged: debug, info, warn or error",
		set: func(c *Config, v string) error {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "debug":
				c.LogLevel = slog.LevelDebug
			case "info":
				c.LogLevel = slog.LevelInfo
			case "warn", "warning":
				c.LogLevel = slog.LevelWarn
			case "error":
				c.LogLevel = slog.LevelError
			default:
				return fmt.Errorf("must be debug, info, warn or error, got %q", v)
			}
			return nil
		},
		show: func(c Config) string { return strings.ToLower(c.LogLevel.String()) },
	}
}

// secret is read from the environment only and never shown.
func secret(env, usage string, field func(*Config) *string) setting {
	return setting{env: env, usage: usage,
		set:  func(c *Config, v string) error { *field(c) = v; return nil },
		show: func(c Config) string { return showSecret(*field(&c)) },
	}
}

func showSecret(v string) string {
	if v == "" {
		return ""
	}
	return redacted
}

// secretURL is a URL that may hold a password: environment only, shown with
// the password redacted.
func secretURL(env, def, usage string, field func(*Config) *string) setting {
	return setting{env: env, def: def, usage: usage,
		set:  func(c *Config, v string) error { *field(c) = strings.TrimSpace(v); return nil },
		show: func(c Config) string { return redactURL(*field(&c)) },
	}
}

// redisURL may be given as a flag, but not with a password in it.
func redisURL(env, flag, def, usage string, field func(*Config) *string) setting {
	return setting{env: env, flag: flag, def: def, usage: usage, noPasswordInFlag: true,
		set:  func(c *Config, v string) error { *field(c) = strings.TrimSpace(v); return nil },
		show: func(c Config) string { return redisconn.Redact(*field(&c)) },
	}
}

// redactURL shows u with its password replaced by <redacted>.
func redactURL(u string) string {
	if u == "" {
		return ""
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return redacted
	}
	const mark = "REDACTED-5f1c"
	if parsed.User != nil {
		if _, ok := parsed.User.Password(); ok {
			parsed.User = url.UserPassword(parsed.User.Username(), mark)
		}
	}
	return strings.ReplaceAll(parsed.String(), mark, redacted)
}

// splitErrors returns the errors joined in err, or err alone.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var errPasswordInFlag = errors.New("a URL with a password belongs in the environment, not on the command line (other users can read it in the process list)")
