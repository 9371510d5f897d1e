package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Error is one invalid setting. Var names the environment variable, or the
// flag and variable when the value came from a flag.
type Error struct {
	Var string
	Msg string
}

func (e *Error) Error() string { return e.Var + ": " + e.Msg }

// Load builds the configuration from getenv (os.Getenv) and the command-line
// args (os.Args[1:]): defaults, then the environment, then flags. It returns
// every invalid value joined in one error of *Error values, or flag.ErrHelp
// for -h (print Usage then).
func Load(getenv func(string) string, args []string) (Config, error) {
	fs, check := newFlagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("command line: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("command line: unexpected argument %q", fs.Arg(0))
	}
	fromFlag := map[string]string{}
	fs.Visit(func(f *flag.Flag) { fromFlag[f.Name] = f.Value.String() })

	c := Config{Check: *check}
	var errs []error
	sources := map[string]string{} // env name -> label for errors
	for _, s := range settings() {
		// The default is set first, so that a value that does not parse
		// leaves the default in place and is reported once.
		_ = s.set(&c, s.def)
		raw, label := getenv(s.env), s.env
		given := raw != "" // an empty variable counts as unset
		if v, ok := fromFlag[s.flag]; ok && s.flag != "" {
			raw, label, given = v, fmt.Sprintf("-%s (%s)", s.flag, s.env), true
			if s.noPasswordInFlag && hasPassword(v) {
				errs = append(errs, &Error{Var: label, Msg: errPasswordInFlag.Error()})
				continue
			}
		}
		sources[s.env] = label
		if !given {
			continue
		}
		if err := s.set(&c, raw); err != nil {
			for _, e := range splitErrors(err) {
				errs = append(errs, &Error{Var: label, Msg: e.Error()})
			}
		}
	}
	c.fillDerived()
	for _, err := range c.problems() {
		var e *Error
		if errors.As(err, &e) && sources[e.Var] != "" {
			e.Var = sources[e.Var]
		}
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// fillDerived sets the defaults that depend on other settings.
func (c *Config) fillDerived() {
	if c.PublicURL == "" {
		c.PublicURL = "http://" + publicHost(c.HTTPAddr)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.TwilioAPIURL = strings.TrimRight(c.TwilioAPIURL, "/")
}

// publicHost turns a listen address into one a browser can reach: an empty
// or wildcard host becomes localhost.
func publicHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// Validate checks every setting and returns all problems joined, each an
// *Error naming its variable.
func (c Config) Validate() error { return errors.Join(c.problems()...) }

func newFlagSet() (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet("backofficed", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range settings() {
		if s.flag != "" {
			fs.String(s.flag, "", s.usage)
		}
	}
	return fs, fs.Bool("check", false, "print the effective configuration and exit (2 when invalid)")
}

// Usage writes the settings, their flags and defaults to w.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: backofficed [-check] [flags]")
	fmt.Fprintln(w, "\nEvery setting is an environment variable; most are also a flag, which wins.")
	fmt.Fprintln(w, "Secrets are read from the environment only.")
	fmt.Fprintln(w)
	for _, s := range settings() {
		flagName := "(environment only)"
		if s.flag != "" {
			flagName = "-" + s.flag
		}
		def := ""
		if s.def != "" {
			def = fmt.Sprintf(" (default %q)", s.def)
		}
		fmt.Fprintf(w, "  %s  %s\n      %s%s\n", s.env, flagName, s.usage, def)
	}
	fmt.Fprintln(w, "  -check\n      print the effective configuration and exit (2 when invalid)")
}

// absPath makes a directory setting absolute; empty stays empty.
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("cannot make %q absolute: %w", p, err)
	}
	return abs, nil
}

// readFile is os.ReadFile with an error that names the path once.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// hasPassword reports whether a URL carries a password, in user:pass@ or a
// *password query parameter.
func hasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.Contains(raw, "@")
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	for k := range u.Query() {
		if strings.HasSuffix(k, "password") {
			return true
		}
	}
	return false
}
