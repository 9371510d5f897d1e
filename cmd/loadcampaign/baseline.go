package main

import (
	"context"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/email"
)

// mailContent is the rendered campaign e-mail the baseline sends: the
// bench template in the bench language, rendered as the daemon renders it
// for an audience row (its default shop name, the unsubscribe link of its
// public URL and secret), so the baseline's messages are the size of the
// campaign's.
type mailContent struct {
	from     string
	subject  string
	text     string
	html     string
	campaign string // X-Backoffice-Campaign
}

func renderContent(l *local, campaign string) (mailContent, error) {
	set, err := templates.Load(templates.Options{FallbackLanguage: "en", Shop: templates.ShopData{Name: "Shop"}})
	if err != nil {
		return mailContent{}, fmt.Errorf("templates: %w", err)
	}
	unsub := campaigns.Unsubscriber{Secret: []byte(l.unsubSecret), PublicURL: l.publicURL}
	to := emailAddress(0)
	m, err := set.RenderEmail(benchTemplate, benchLanguage, templates.Data{
		Customer: templates.CustomerData{Name: "Zákazník 0", Email: to, Language: benchLanguage},
		Campaign: campaign, UnsubscribeURL: unsub.AddressURL(to, campaign),
	})
	if err != nil {
		return mailContent{}, fmt.Errorf("render %s: %w", benchTemplate, err)
	}
	return mailContent{from: "Shop <shop@localhost>", subject: m.Subject, text: m.Text, html: m.HTML,
		campaign: campaign + "/baseline"}, nil
}

// message builds message i the way workers/email builds a campaign mail:
// From, To with a name, Subject, a Message-ID, Date, the campaign header,
// text and HTML as multipart/alternative.
func (c mailContent) message(i int) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(c.from); err != nil {
		return nil, err
	}
	msg.AddToMailAddress(&mail.Address{Name: "Zákazník " + strconv.Itoa(i), Address: emailAddress(i)})
	msg.Subject(c.subject)
	msg.SetMessageIDWithValue("baseline." + strconv.Itoa(i) + "@localhost")
	msg.SetDateWithValue(time.Now())
	msg.SetGenHeader("X-Backoffice-Campaign", c.campaign)
	msg.SetBodyString(gomail.TypeTextPlain, c.text)
	msg.AddAlternativeString(gomail.TypeTextHTML, c.html)
	return msg, nil
}

// baselineResult is what the go-mail baseline did.
type baselineResult struct {
	sent    int
	errors  int
	elapsed time.Duration
}

func (r baselineResult) rate() float64 { return float64(r.sent) / r.elapsed.Seconds() }

// runBaseline sends messages from..from+n-1 straight to the sink at addr with go-mail over
// conns connections, each dialled once and reused
// (DialToSMTPClientWithContext, SendWithSMTPClient, no NOOP before and
// no RSET after each message), one goroutine per connection: the ceiling
// of the campaign's sending. go-mail waits for the reply to each command;
// the daemon's pool pipelines them where the server offers PIPELINING, as
// the sink does (see runPoolBaseline).
func runBaseline(ctx context.Context, addr string, content mailContent, conns, from, n int) (baselineResult, error) {
	host, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	client, err := gomail.NewClient(host, gomail.WithPort(portN), gomail.WithTLSPolicy(gomail.NoTLS),
		gomail.WithHELO("loadcampaign.local"), gomail.WithoutNoop(), gomail.WithoutRset(), gomail.WithTimeout(30*time.Second))
	if err != nil {
		return baselineResult{}, fmt.Errorf("baseline: %w", err)
	}
	clients := make([]*smtp.Client, conns)
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = client.CloseWithSMTPClient(c)
			}
		}
	}()
	for i := range clients {
		if clients[i], err = client.DialToSMTPClientWithContext(ctx); err != nil {
			return baselineResult{}, fmt.Errorf("baseline: dial the sink: %w", err)
		}
	}
	return fanOut(ctx, conns, n, func(w, i int) error {
		msg, err := content.message(from + i)
		if err == nil {
			err = client.SendWithSMTPClient(clients[w], msg)
		}
		return err
	})
}

// runPoolBaseline sends messages from..from+n-1 to the sink at addr
// through the daemon's sender, workers/email's Pool of conns connections,
// from conns goroutines, without the campaign around it: the same
// transport as (b), which pipelines each transaction.
func runPoolBaseline(ctx context.Context, addr string, content mailContent, conns, from, n int) (baselineResult, error) {
	pool, err := email.NewPool(email.PoolOptions{URL: "smtp://" + addr + "?tls=none", Size: conns, HELO: "loadcampaign.local"})
	if err != nil {
		return baselineResult{}, fmt.Errorf("pool baseline: %w", err)
	}
	defer pool.Close()
	return fanOut(ctx, conns, n, func(_, i int) error {
		i += from
		return pool.Send(ctx, &email.Message{
			To: emailAddress(i), ToName: "Zákazník " + strconv.Itoa(i), From: content.from,
			Subject: content.subject, Text: content.text, HTML: content.html,
			MessageID: "<baseline." + strconv.Itoa(i) + "@localhost>",
			Headers:   map[string]string{"X-Backoffice-Campaign": content.campaign},
		})
	})
}

// fanOut sends messages 0..n-1 with send from workers goroutines (w is
// the goroutine, 0..workers-1) and counts the failures.
func fanOut(ctx context.Context, workers, n int, send func(w, i int) error) (baselineResult, error) {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if send(w, i) != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	res := baselineResult{elapsed: time.Since(start), errors: int(failed.Load())}
	res.sent = n - res.errors
	return res, ctx.Err()
}
