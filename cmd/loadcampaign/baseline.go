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
// no RSET after each message, as the daemon's pool), one goroutine per
// connection: the ceiling of the campaign's sending.
func runBaseline(ctx context.Context, addr string, content mailContent, conns, from, n int) (baselineResult, error) {
	host, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	client, err := gomail.NewClient(host, gomail.WithPort(portN), gomail.WithTLSPolicy(gomail.NoTLS),
		gomail.WithHELO("loadcampaign.local"), gomail.WithoutNoop(), gomail.WithoutRset(), gomail.WithTimeout(30*time.Second))
	if err != nil {
		return baselineResult{}, fmt.Errorf("baseline: %w", err)
	}
	clients := make([]*smtp.Client, conns)
	for i := range clients {
		if clients[i], err = client.DialToSMTPClientWithContext(ctx); err != nil {
			return baselineResult{}, fmt.Errorf("baseline: dial the sink: %w", err)
		}
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range clients {
		wg.Go(func() {
			defer func() { _ = client.CloseWithSMTPClient(c) }()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				msg, err := content.message(from + i)
				if err == nil {
					err = client.SendWithSMTPClient(c, msg)
				}
				if err != nil {
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
