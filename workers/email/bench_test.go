package email

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopworks/backoffice/workers/email/smtptest"
	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// benchConns is the number of SMTP connections in both benchmarks.
const benchConns = 4

// benchMessage returns message i of the benchmark: the same content as the
// tests, a distinct recipient and Message-ID.
func benchMessage(i int64) *Message {
	m := sample()
	m.To = "customer" + strconv.FormatInt(i, 10) + "@example.sk"
	m.MessageID = "<bench." + strconv.FormatInt(i, 10) + "@mail.example.sk>"
	return m
}

func reportRate(b *testing.B, srv *smtptest.Server) {
	b.Helper()
	smtptest.WaitUntil(b, time.Minute, func() bool { return srv.Count() >= b.N },
		func() string { return fmt.Sprintf("sink got %d of %d messages", srv.Count(), b.N) })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// benchRTT is the round-trip time of the *RTT benchmarks' relay: a relay
// in the same data centre, not on loopback.
const benchRTT = time.Millisecond

// BenchmarkPoolSend sends through Pool (Size 4) from many goroutines; the
// sink offers PIPELINING, so each message takes two round trips.
func BenchmarkPoolSend(b *testing.B) { benchPool(b, smtptest.Options{Sink: true}) }

// BenchmarkPoolSendRTT is BenchmarkPoolSend against a relay benchRTT away.
func BenchmarkPoolSendRTT(b *testing.B) {
	benchPool(b, smtptest.Options{Sink: true, Latency: benchRTT / 2})
}

// BenchmarkGoMailDirect is the baseline: go-mail's own reuse of dialled
// connections (DialToSMTPClientWithContext once per connection, then
// SendWithSMTPClient, no NOOP before and no RSET after each message; four
// round trips), with the same message, the same sink and the same number
// of connections as BenchmarkPoolSend.
func BenchmarkGoMailDirect(b *testing.B) { benchGoMail(b, smtptest.Options{Sink: true}) }

// BenchmarkGoMailDirectRTT is BenchmarkGoMailDirect against a relay
// benchRTT away: the round trips, not the CPU, bound it.
func BenchmarkGoMailDirectRTT(b *testing.B) {
	benchGoMail(b, smtptest.Options{Sink: true, Latency: benchRTT / 2})
}

func benchPool(b *testing.B, so smtptest.Options) {
	srv := smtptest.Start(b, so)
	pool, err := NewPool(PoolOptions{URL: srv.URL(), Size: benchConns, HELO: "bench.test"})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var seq atomic.Int64
	b.SetParallelism(benchConns)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pool.Send(context.Background(), benchMessage(seq.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b, srv)
}

func benchGoMail(b *testing.B, so smtptest.Options) {
	srv := smtptest.Start(b, so)
	host, port, _ := net.SplitHostPort(srv.Addr)
	portN, _ := strconv.Atoi(port)
	client, err := gomail.NewClient(host, gomail.WithPort(portN), gomail.WithTLSPolicy(gomail.NoTLS), gomail.WithHELO("bench.test"),
		gomail.WithoutNoop(), gomail.WithoutRset())
	if err != nil {
		b.Fatal(err)
	}
	conns := make(chan *smtp.Client, benchConns)
	for range benchConns {
		c, err := client.DialToSMTPClientWithContext(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		conns <- c
	}
	defer func() {
		for range benchConns {
			_ = client.CloseWithSMTPClient(<-conns)
		}
	}()
	var seq atomic.Int64
	b.SetParallelism(benchConns)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			msg, err := build(benchMessage(seq.Add(1)), time.Now())
			if err != nil {
				b.Error(err)
				return
			}
			c := <-conns
			err = client.SendWithSMTPClient(c, msg)
			conns <- c
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b, srv)
}
