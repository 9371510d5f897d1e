package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Role is what an API token may do.
type Role string

// The roles of API tokens.
const (
	// RoleViewer reads: dashboards, job and customer lookups.
	RoleViewer Role = "viewer"
	// RoleOperator also changes things: enqueues jobs, launches, pauses
	// and retries campaigns.
	RoleOperator Role = "operator"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleViewer || r == RoleOperator }

// Allows reports whether a token with role r may do what needs role need.
// An operator may do everything a viewer may; an unknown role may do nothing.
func (r Role) Allows(need Role) bool {
	switch r {
	case RoleOperator:
		return need == RoleOperator || need == RoleViewer
	case RoleViewer:
		return need == RoleViewer
	}
	return false
}

// Token is one bearer token of the API.
type Token struct {
	Name   string // who holds it, shown in logs and audit entries
	Role   Role
	Secret string // what the client sends; never logged
}

// String shows the token without its secret.
func (t Token) String() string { return t.Name + ":" + string(t.Role) + ":" + redacted }

// MinSecretLen is the shortest token secret accepted.
const MinSecretLen = 16

var tokenNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// check reports what is wrong with t, naming the token but not its secret.
func (t Token) check() error {
	if !tokenNamePattern.MatchString(t.Name) {
		return fmt.Errorf("token name %q: want 1-64 letters, digits or _.@-", t.Name)
	}
	if !t.Role.Valid() {
		return fmt.Errorf("token %q: role %q: want viewer or operator", t.Name, t.Role)
	}
	if len(t.Secret) < MinSecretLen {
		return fmt.Errorf("token %q: secret: want at least %d characters, got %d", t.Name, MinSecretLen, len(t.Secret))
	}
	if strings.ContainsFunc(t.Secret, func(r rune) bool { return r <= ' ' || r == ',' || r > '~' }) {
		return fmt.Errorf("token %q: secret: want printable ASCII without spaces or commas", t.Name)
	}
	return nil
}

// parseToken parses one name:role:secret entry. where says where the entry
// is ("entry 2", "/etc/tokens:3"); errors never repeat the secret.
func parseToken(entry, where string) (Token, error) {
	parts := strings.SplitN(strings.TrimSpace(entry), ":", 3)
	if len(parts) != 3 {
		return Token{}, fmt.Errorf("%s: want name:role:secret", where)
	}
	t := Token{Name: parts[0], Role: Role(parts[1]), Secret: parts[2]}
	if err := t.check(); err != nil {
		return Token{}, fmt.Errorf("%s: %w", where, err)
	}
	return t, nil
}

// parseTokenList parses BACKOFFICE_API_TOKENS: comma-separated entries.
func parseTokenList(v string) ([]Token, error) {
	var tokens []Token
	var errs []error
	for i, entry := range strings.Split(v, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		t, err := parseToken(entry, fmt.Sprintf("entry %d", i+1))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tokens = append(tokens, t)
	}
	return tokens, errors.Join(errs...)
}

// parseTokenFile parses a tokens file: one name:role:secret per line; blank
// lines and lines starting with # are skipped.
func parseTokenFile(path string) ([]Token, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var tokens []Token
	var errs []error
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t, err := parseToken(line, fmt.Sprintf("%s:%d", path, i+1))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tokens = append(tokens, t)
	}
	return tokens, errors.Join(errs...)
}

func apiTokens() setting {
	return setting{env: "BACKOFFICE_API_TOKENS",
		usage: "API tokens, comma-separated name:role:secret (role viewer or operator, secret 16+ characters)",
		set: func(c *Config, v string) error {
			tokens, err := parseTokenList(v)
			c.APITokens = append(c.APITokens, tokens...)
			return err
		},
		show: func(c Config) string {
			names := make([]string, len(c.APITokens))
			for i, t := range c.APITokens {
				names[i] = t.String()
			}
			return strings.Join(names, ",")
		},
	}
}

func apiTokensFile() setting {
	return setting{env: "BACKOFFICE_API_TOKENS_FILE", flag: "api-tokens-file",
		usage: "file of API tokens, one name:role:secret per line (# comments)",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			c.APITokensFile = v
			if v == "" {
				return nil
			}
			tokens, err := parseTokenFile(v)
			c.APITokens = append(c.APITokens, tokens...)
			return err
		},
		show: func(c Config) string { return c.APITokensFile },
	}
}

// tokenProblems checks every token and that names and secrets are unique.
func tokenProblems(tokens []Token) []error {
	var errs []error
	names := map[string]bool{}
	secrets := map[string]string{}
	for _, t := range tokens {
		if err := t.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		if names[t.Name] {
			errs = append(errs, fmt.Errorf("token name %q: given twice", t.Name))
		}
		names[t.Name] = true
		if other, ok := secrets[t.Secret]; ok {
			errs = append(errs, fmt.Errorf("tokens %q and %q: same secret", other, t.Name))
		}
		secrets[t.Secret] = t.Name
	}
	return errs
}

// GoString shows the token without its secret, for %#v.
func (t Token) GoString() string { return t.String() }
