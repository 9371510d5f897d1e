package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// unsubscribeSecretFile is where a generated unsubscribe secret is kept.
const unsubscribeSecretFile = "unsubscribe.secret"

// EnsureSecrets fills the secrets that may be generated: an empty
// UnsubscribeSecret is read from DataDir/unsubscribe.secret, which is created
// (mode 0600, 64 hex characters) the first time, so that links sent before a
// restart still work after it. It creates DataDir if needed. Two daemons
// starting at once on one DataDir end up with the same secret.
func (c *Config) EnsureSecrets() error {
	if c.UnsubscribeSecret != "" {
		return nil
	}
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return fmt.Errorf("BACKOFFICE_DATA_DIR: unsubscribe secret: %w", err)
	}
	path := filepath.Join(c.DataDir, unsubscribeSecretFile)
	secret, err := readSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret, err = createSecret(path)
	}
	if err != nil {
		return fmt.Errorf("BACKOFFICE_DATA_DIR: unsubscribe secret: %w", err)
	}
	c.UnsubscribeSecret = secret
	return nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < MinUnsubscribeSecretLen {
		return "", fmt.Errorf("%s: want at least %d characters, got %d (delete the file to generate a new one; old links stop working)",
			path, MinUnsubscribeSecretLen, len(secret))
	}
	return secret, nil
}

// createSecret writes a new random secret to a temporary file and links it
// to path, so no reader ever sees a half-written file; if another process
// linked first, its secret wins.
func createSecret(path string) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(raw)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".unsubscribe-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecret(path)
		}
		return "", err
	}
	return secret, nil
}
