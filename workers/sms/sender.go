package sms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// TwilioOptions configure a Twilio sender.
type TwilioOptions struct {
	AccountSID string // "AC" + 32 hex digits; required
	AuthToken  string // required; never logged or put in an error
	// From is the sender: an E.164 number, a short code or an
	// alphanumeric sender ID. MessagingServiceSID ("MG...") lets Twilio
	// pick one from the service's pool. At least one is required.
	From                string
	MessagingServiceSID string
	// APIURL replaces scheme and host of Twilio's API, for a regional
	// endpoint or a test server. "" means https://api.twilio.com.
	APIURL string
	// Timeout bounds one request. Default 15s.
	Timeout time.Duration
}

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	alnumPattern      = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	shortCodePattern  = regexp.MustCompile(`^[0-9]{3,8}$`)
	senderIDPattern   = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
)

// Twilio sends SMS through Twilio's Messages API with twilio-go. It does
// not retry: the caller decides with IsPermanent, IsRateLimited (hold,
// do not fail), IsInDoubt and RetryAfter. Twilio has no idempotency key
// for message creation, so the caller's ledger must keep a retried job
// from sending twice, and an error after the request went out (IsInDoubt)
// may be a message Twilio created: sending it again may duplicate it.
// Safe for concurrent use.
type Twilio struct {
	accountSID, authToken string
	from, serviceSID      string
	apiURL                *url.URL
	timeout               time.Duration
	transport             *http.Transport // shared connection pool
}

// NewTwilio checks o and returns a sender. It makes no request.
func NewTwilio(o TwilioOptions) (*Twilio, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	t := &Twilio{
		accountSID: o.AccountSID, authToken: o.AuthToken,
		from: o.From, serviceSID: o.MessagingServiceSID,
		timeout: cmp.Or(o.Timeout, 15*time.Second),
	}
	if o.APIURL != "" {
		t.apiURL, _ = url.Parse(o.APIURL) // checked
	}
	t.transport = http.DefaultTransport.(*http.Transport).Clone()
	t.transport.MaxIdleConnsPerHost = 16
	return t, nil
}

func (o TwilioOptions) check() error {
	switch {
	case !accountSIDPattern.MatchString(o.AccountSID):
		return errors.New("sms: twilio options: AccountSID: want AC and 32 hex digits")
	case !alnumPattern.MatchString(o.AuthToken):
		return errors.New("sms: twilio options: AuthToken: required, letters and digits only")
	case o.From == "" && o.MessagingServiceSID == "":
		return errors.New("sms: twilio options: From or MessagingServiceSID is required")
	case o.From != "" && !e164Pattern.MatchString(o.From) && !shortCodePattern.MatchString(o.From) && !senderIDPattern.MatchString(o.From):
		return fmt.Errorf("sms: twilio options: From %q: want E.164, a short code or an alphanumeric sender ID of up to 11 characters", o.From)
	case o.MessagingServiceSID != "" && !serviceSIDPattern.MatchString(o.MessagingServiceSID):
		return errors.New("sms: twilio options: MessagingServiceSID: want MG and 32 hex digits")
	case o.Timeout < 0:
		return errors.New("sms: twilio options: Timeout: want a positive duration (0 means 15s)")
	}
	if o.APIURL != "" {
		u, err := url.Parse(o.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return fmt.Errorf("sms: twilio options: APIURL %q: want scheme://host[:port] only", o.APIURL)
		}
	}
	return nil
}

// Send asks Twilio to send m. Cancelling ctx aborts the request. An error
// is a *SendError (or wraps ErrInvalidMessage); see IsPermanent,
// IsRateLimited, IsInDoubt and RetryAfter.
//
// When Twilio accepted the message (HTTP 2xx) but its answer could not be
// read or parsed, Send returns a nil error and a Result with SID "" and
// Status "accepted": the message is on its way but its SID is unknown, so
// callers must not index it by SID nor expect status callbacks for it to
// match anything. Sending it again would duplicate it.
func (t *Twilio) Send(ctx context.Context, m Message) (Result, error) {
	if err := m.validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	rt := &callTransport{ctx: ctx, base: t.transport, apiURL: t.apiURL}
	msg, err := t.api(rt).CreateMessage(t.params(m))
	if err != nil {
		if rt.status >= 200 && rt.status < 300 {
			return Result{Status: "accepted"}, nil // SID unknown
		}
		return Result{}, t.failure(err, rt)
	}
	var res Result
	if msg.Sid != nil {
		res.SID = *msg.Sid
	}
	if msg.Status != nil {
		res.Status = *msg.Status
	}
	return res, nil
}

// api returns twilio-go's Messages API for one call, over rt.
func (t *Twilio) api(rt *callTransport) *openapi.ApiService {
	base := &client.Client{
		Credentials: client.NewCredentials(t.accountSID, t.authToken),
		HTTPClient: &http.Client{
			Transport:     rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	base.SetAccountSid(t.accountSID)
	// Built by hand, not with NewRequestHandler: that one reads
	// TWILIO_EDGE and TWILIO_REGION from the environment. APIURL is the
	// one way to choose an endpoint.
	return openapi.NewApiService(&client.RequestHandler{Client: base})
}

func (t *Twilio) params(m Message) *openapi.CreateMessageParams {
	p := &openapi.CreateMessageParams{}
	p.SetTo(m.To)
	p.SetBody(m.Body)
	if t.from != "" {
		p.SetFrom(t.from)
	}
	if t.serviceSID != "" {
		p.SetMessagingServiceSid(t.serviceSID)
	}
	if m.StatusCallback != "" {
		p.SetStatusCallback(m.StatusCallback)
	}
	return p
}

// failure turns what CreateMessage returned into a *SendError, using the
// status and Retry-After the transport saw and whether the request was
// written. A 2xx never gets here: Send reports it as accepted.
func (t *Twilio) failure(err error, rt *callTransport) *SendError {
	se := &SendError{Status: rt.status, err: err}
	var rest *client.TwilioRestError
	switch {
	case errors.As(err, &rest):
		se.Code, se.Message = rest.Code, rest.Message
		se.Status = cmp.Or(rest.Status, rt.status)
	case rt.status != 0:
		se.Message = "error response without a Twilio error body"
	case rt.inDoubt:
		// Written in full, then no answer: Twilio may have created it.
		detail := err.Error()
		if rt.ctx.Err() != nil {
			detail = "request aborted: " + rt.ctx.Err().Error()
		}
		se.Message = "request sent, no response; Twilio may have created the message: " + detail
		se.InDoubt = true
		return se
	case rt.ctx.Err() != nil:
		se.Message = "request aborted: " + rt.ctx.Err().Error()
	default:
		se.Message = err.Error()
	}
	se.RetryAfter = parseRetryAfter(rt.retryAt, time.Now())
	se.Permanent = permanentTwilioError(se.Status, se.Code)
	return se
}

// Close releases idle connections to Twilio.
func (t *Twilio) Close() error {
	t.transport.CloseIdleConnections()
	return nil
}
