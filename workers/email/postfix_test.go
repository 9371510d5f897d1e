package email

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopworks/backoffice/workers/email/smtptest"
)

// The pool against Postfix's smtp-sink: a second SMTP server, written
// without go-smtp's assumptions, for the transaction the pool writes itself
// (pipelined commands, dot-stuffed content) and for go-mail's fallback.

// smtpSinkPath is where the Debian package postfix installs smtp-sink.
const smtpSinkPath = "/usr/sbin/smtp-sink"

// startSmtpSink runs smtp-sink with flags on a free loopback port, dumping
// every message into a file of its own in the returned directory, and
// stops it when t ends.
func startSmtpSink(t *testing.T, flags ...string) (addr, dir string) {
	t.Helper()
	if _, err := os.Stat(smtpSinkPath); err != nil {
		t.Fatalf("%s not found (Debian package postfix; make test installs it): %v", smtpSinkPath, err)
	}
	// smtp-sink drops to an unprivileged user when started as root, and
	// that user writes the dumps: a directory of its own, outside the
	// test's private temporary directory
	dir, err := os.MkdirTemp("", "smtp-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	args := append([]string{}, flags...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		_ = ln.Close()
		cmd := exec.Command(smtpSinkPath, append(args, "-d", filepath.Join(dir, "%M."), addr, "16")...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start smtp-sink: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		if waitListening(addr, exited) {
			t.Cleanup(stop)
			return addr, dir
		}
		stop()
		if attempt == 2 { // the port was taken in between, three times
			t.Fatalf("smtp-sink did not listen on %s: %s", addr, out.String())
		}
	}
}

// waitListening waits up to 5 s for addr to accept a connection, unless
// the process exits first.
func waitListening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// sinkDumps returns the messages smtp-sink dumped, by recipient, with LF
// line ends.
func sinkDumps(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // an aborted transaction's file, removed meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			// smtp-sink opens the file at MAIL FROM and removes it
			// when the transaction is aborted: not a message
			continue
		}
		dump := strings.ReplaceAll(string(b), "\r\n", "\n")
		_, rest, _ := strings.Cut(dump, "X-Rcpt-Args: <")
		rcpt, _, _ := strings.Cut(rest, ">")
		if _, dup := out[rcpt]; dup {
			t.Errorf("smtp-sink got %s twice", rcpt)
		}
		out[rcpt] = dump
	}
	return out
}

// waitDumps waits until smtp-sink has dumped n messages.
func waitDumps(t *testing.T, dir string, n int) map[string]string {
	t.Helper()
	smtptest.WaitUntil(t, wait, func() bool {
		files, _ := os.ReadDir(dir)
		return len(files) >= n
	}, func() string { return fmt.Sprintf("smtp-sink dumped fewer than %d messages", n) })
	return sinkDumps(t, dir)
}

// dotted is a message whose text has the lines SMTP must escape: a lone
// dot (which would end the data), a leading dot and two.
func dotted(n int) *Message {
	m := to(n)
	m.Text = "Dobrý deň,\n.\n.bodka na začiatku\n..dve bodky\nkoniec\n"
	return m
}

func TestPoolWithPostfixSmtpSink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"pipelined", nil},
		{"without PIPELINING", []string{"-p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, dir := startSmtpSink(t, tc.flags...)
			pool, err := NewPool(PoolOptions{URL: "smtp://" + addr + "?tls=none", Size: 2, HELO: "backoffice.test"})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			const n = 12
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					if err := pool.Send(t.Context(), dotted(i)); err != nil {
						t.Errorf("Send %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			dumps := waitDumps(t, dir, n)
			for i := range n {
				dump, ok := dumps[fmt.Sprintf("customer%d@example.sk", i)]
				if !ok {
					t.Errorf("smtp-sink has no message for customer%d (got %d messages)", i, len(dumps))
					continue
				}
				if want := "\n.\n.bodka na za"; !strings.Contains(dump, want) || !strings.Contains(dump, "\n..dve bodky\nkoniec\n") {
					t.Errorf("message for customer%d lost its dotted lines:\n%s", i, dump)
				}
				if !strings.Contains(dump, fmt.Sprintf("Message-ID: <test-run.%d@mail.example.sk>", i)) {
					t.Errorf("message for customer%d lacks its Message-ID:\n%s", i, dump)
				}
			}
		})
	}
}

// smtp-sink -Q RCPT answers RCPT with 421 and hangs up: with the commands
// pipelined, the error is the 421, transient, and nothing is delivered.
func TestPoolPostfixSmtpSinkClosingAtRcpt(t *testing.T) {
	t.Parallel()
	addr, dir := startSmtpSink(t, "-Q", "RCPT")
	pool, err := NewPool(PoolOptions{URL: "smtp://" + addr + "?tls=none", Size: 1, HELO: "backoffice.test", SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for i := range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		err := pool.Send(ctx, to(i))
		cancel()
		se := sendErr(t, err)
		if se.Code != 421 || IsPermanent(err) {
			t.Errorf("Send %d = %#v, want a transient 421", i, se)
		}
	}
	if dumps := sinkDumps(t, dir); len(dumps) != 0 {
		t.Errorf("smtp-sink kept %d messages, want none", len(dumps))
	}
}
