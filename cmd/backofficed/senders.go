package main

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/email"
	"github.com/shopworks/backoffice/workers/inbox"
	"github.com/shopworks/backoffice/workers/sms"
)

// delivery is what sends messages: the templates, one mail sender and one
// SMS sender (a relay and Twilio when configured, else the outbox under
// DataDir), and the campaign engine built on them. One delivery serves the
// handlers, the scheduler (template checks) and the API.
type delivery struct {
	templates *templates.Set
	mail      campaigns.MailSender
	sms       campaigns.SMSSender
	engine    *campaigns.Engine
	unsub     campaigns.Unsubscriber
	inbox     *inbox.Store
	closers   []io.Closer // the SMTP pool and Twilio's transport
}

// templateOptions are the options the daemon loads its templates with, at
// start and on SIGHUP.
func (d *daemon) templateOptions() templates.Options {
	cfg := d.cfg
	return templates.Options{
		Dir:              cfg.TemplatesDir,
		FallbackLanguage: cfg.DefaultLanguage,
		Shop: templates.ShopData{
			Name: cfg.ShopName, URL: cfg.ShopURL,
			SupportEmail: cfg.SupportEmail, SupportPhone: cfg.SupportPhone,
		},
	}
}

// newDelivery builds the templates, senders and campaign engine from the
// configuration. On error, what it opened is closed again.
func (d *daemon) newDelivery(reg prometheus.Registerer) (_ *delivery, err error) {
	cfg := d.cfg
	// dl is not the named result: an error return sets that to nil, and the
	// cleanup must still close what dl opened.
	dl := &delivery{
		unsub: campaigns.Unsubscriber{Secret: []byte(cfg.UnsubscribeSecret), PublicURL: cfg.PublicURL},
		inbox: inbox.New(d.rdb, cfg.KeyPrefix),
	}
	defer func() {
		if err != nil {
			dl.close()
		}
	}()
	dl.templates, err = templates.Load(d.templateOptions())
	if err != nil {
		return nil, err // each problem says "templates: " already
	}
	if cfg.SMTPEnabled() {
		pool, err := email.NewPool(email.PoolOptions{URL: cfg.SMTPURL, Size: cfg.SMTPPool, Logger: d.log})
		if err != nil {
			return nil, fmt.Errorf("BACKOFFICE_SMTP_URL: %w", err)
		}
		dl.mail = pool
		dl.closers = append(dl.closers, pool)
	} else {
		out, err := email.NewOutbox(cfg.OutboxDir())
		if err != nil {
			return nil, err
		}
		dl.mail = out
	}
	if cfg.TwilioEnabled() {
		tw, err := sms.NewTwilio(sms.TwilioOptions{
			AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken,
			From: cfg.TwilioFrom, MessagingServiceSID: cfg.TwilioMessagingServiceSID,
			APIURL: cfg.TwilioAPIURL,
		})
		if err != nil {
			return nil, fmt.Errorf("twilio: %w", err)
		}
		dl.sms = tw
		dl.closers = append(dl.closers, tw)
	} else {
		out, err := sms.NewOutbox(cfg.OutboxDir())
		if err != nil {
			return nil, err
		}
		dl.sms = out
	}
	dl.engine, err = campaigns.New(campaigns.Config{
		Redis:             d.rdb,
		KeyPrefix:         cfg.KeyPrefix,
		Enqueuer:          d.client,
		Customers:         d.customers,
		Templates:         dl.templates,
		Mail:              dl.mail,
		SMS:               dl.sms,
		Unsubscribe:       dl.unsub,
		MailFrom:          cfg.MailFrom,
		PhoneRegion:       cfg.PhoneRegion,
		DataDir:           cfg.DataDir,
		LocalChunks:       cfg.CampaignChunks(),
		Waker:             d.inspector,
		SMSStatusCallback: smsStatusCallback(cfg.PublicURL, cfg.TwilioEnabled()),
		Logger:            d.log,
		Metrics:           campaigns.NewMetrics(reg),
	})
	if err != nil {
		return nil, err
	}
	return dl, nil
}

// smsStatusCallback is the URL Twilio reports deliveries to; none for the
// outbox, which has no one to call back.
func smsStatusCallback(publicURL string, twilio bool) string {
	if !twilio {
		return ""
	}
	return publicURL + "/webhooks/twilio/status"
}

// close closes the SMTP connections and Twilio's idle connections.
func (dl *delivery) close() {
	for _, c := range dl.closers {
		_ = c.Close()
	}
}
