package email

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Outbox is the delivery sink used when no SMTP server is configured: each
// message becomes <dir>/mail/<UTC date>/<Message-ID>.eml, exactly the bytes
// an SMTP server would have received. Writing the same Message-ID again
// replaces the file (today's or yesterday's, so a retry across midnight
// does not duplicate it). Each file is written to a temp file, fsynced and
// renamed, so a reader never sees half a message. Safe for concurrent use.
type Outbox struct {
	dir string // <dir>/mail
	now func() time.Time
}

// NewOutbox returns an outbox under dir, creating <dir>/mail.
func NewOutbox(dir string) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("email: outbox dir: required")
	}
	root := filepath.Join(dir, "mail")
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("email: outbox dir: %w", err)
	}
	return &Outbox{dir: root, now: time.Now}, nil
}

// Send writes m as an .eml file. ctx is checked before writing.
func (o *Outbox) Send(ctx context.Context, m *Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := o.now()
	msg, err := build(m, now)
	if err != nil {
		return err
	}
	path, err := o.pathFor(msg.GetMessageID(), now)
	if err != nil {
		return err
	}
	return writeAtomic(path, func(w *bufio.Writer) error {
		_, err := msg.WriteTo(w)
		return err
	})
}

// pathFor returns where the message with id goes: yesterday's file when
// one exists, else today's directory (created).
func (o *Outbox) pathFor(id string, now time.Time) (string, error) {
	name := fileName(id)
	yesterday := filepath.Join(o.dir, now.UTC().AddDate(0, 0, -1).Format(time.DateOnly), name)
	if _, err := os.Stat(yesterday); err == nil {
		return yesterday, nil
	}
	day := filepath.Join(o.dir, now.UTC().Format(time.DateOnly))
	if err := os.MkdirAll(day, 0o750); err != nil {
		return "", fmt.Errorf("email: outbox: %w", err)
	}
	return filepath.Join(day, name), nil
}

// fileName maps a Message-ID one to one onto a safe file name: letters,
// digits and ".@_+-" stay, every other byte becomes %XX. Names too long for
// a file system keep a prefix plus the SHA-256 of the whole ID.
func fileName(id string) string {
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		safe := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("@_+-", c) >= 0 || c == '.' && i > 0
		if safe {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	name := b.String()
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(id))
		name = name[:100] + "~" + hex.EncodeToString(sum[:])
	}
	return name + ".eml"
}

// writeAtomic writes path through a temp file in the same directory:
// write, fsync, rename, fsync the directory.
func writeAtomic(path string, write func(*bufio.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*.eml")
	if err != nil {
		return fmt.Errorf("email: outbox: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriter(tmp)
	if err = write(w); err != nil {
		return fmt.Errorf("email: outbox: write %s: %w", filepath.Base(path), err)
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("email: outbox: write %s: %w", filepath.Base(path), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("email: outbox: sync %s: %w", filepath.Base(path), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("email: outbox: close %s: %w", filepath.Base(path), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("email: outbox: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("email: outbox: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("email: outbox: sync dir: %w", err)
	}
	return nil
}
