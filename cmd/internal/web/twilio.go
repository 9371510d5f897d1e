package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/sms"
)

// Twilio webhook routes. Twilio is configured to call PublicURL + these.
const (
	twilioSMSPath    = "/webhooks/twilio/sms"
	twilioStatusPath = "/webhooks/twilio/status"
)

// emptyTwiML is the answer to an incoming message: reply nothing now (a
// reply, if any, is sent by the job through the API).
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Reasons a signed-webhook request is refused, besides sms.Reason*.
const (
	reasonNotConfigured    = "not_configured"
	reasonMissingSignature = "missing_signature"
	reasonBadSignature     = "bad_signature"
	reasonEnqueue          = "enqueue_failed"
	reasonTask             = "bad_task"
)

// twilioHooks answers Twilio's webhooks. A handler reads the form, checks
// the signature, enqueues one job keyed by the MessageSid and answers: it
// does nothing else, so that it is fast and Twilio's retries are harmless.
type twilioHooks struct {
	log       *slog.Logger
	client    *asynq.Client
	validator *sms.Validator // nil without an auth token: every request is refused
	now       func() time.Time
	received  *prometheus.CounterVec // {hook}
	accepted  *prometheus.CounterVec // {hook, outcome}: enqueued, replay
	rejected  *prometheus.CounterVec // {hook, reason}
}

// newTwilioHooks builds the webhook handlers and registers their counters,
// and the inbox's, where what the webhooks bring in ends up.
func newTwilioHooks(o Options, log *slog.Logger, now func() time.Time) (*twilioHooks, error) {
	h := &twilioHooks{
		log: log, client: o.Client, now: now,
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backoffice_twilio_webhooks_received_total",
			Help: "Twilio webhook requests received, by hook (sms, status).",
		}, []string{"hook"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backoffice_twilio_webhooks_accepted_total",
			Help: "Signed Twilio webhook requests answered 200, by hook and outcome (enqueued, replay).",
		}, []string{"hook", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backoffice_twilio_webhooks_rejected_total",
			Help: "Twilio webhook requests refused, by hook and reason (bad_signature, missing_signature, too_large, enqueue_failed, ...).",
		}, []string{"hook", "reason"}),
	}
	if o.TwilioAuthToken != "" {
		h.validator = sms.NewValidator(o.TwilioAuthToken, o.PublicURL)
	}
	collectors := []prometheus.Collector{h.received, h.accepted, h.rejected}
	if o.Inbox != nil {
		collectors = append(collectors, newInboxCollector(o.Inbox, log))
	}
	for _, c := range collectors {
		if err := o.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (s *Server) registerTwilio() {
	s.open("POST "+twilioSMSPath, s.twilio.serve("sms", func(form url.Values, r *http.Request, now time.Time) jobs.Args {
		return sms.ParseInbound(form, r.Header.Get(sms.IdempotencyHeader), now)
	}))
	s.open("POST "+twilioStatusPath, s.twilio.serve("status", func(form url.Values, _ *http.Request, now time.Time) jobs.Args {
		return sms.ParseStatus(form, now)
	}))
}

// serve returns the handler of one hook; build turns a signed form into
// its job's args.
func (h *twilioHooks) serve(hook string, build func(url.Values, *http.Request, time.Time) jobs.Args) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.received.WithLabelValues(hook).Inc()
		if h.validator == nil {
			h.reject(w, r, hook, reasonNotConfigured, http.StatusServiceUnavailable,
				"twilio webhook refused: BACKOFFICE_TWILIO_AUTH_TOKEN is not set, so no signature can be checked")
			return
		}
		form, err := sms.ReadForm(r.Body, r.Header.Get("Content-Type"), sms.MaxWebhookBody)
		if err != nil {
			reason := sms.FormReason(err)
			h.reject(w, r, hook, reason, formStatus(reason), err.Error())
			return
		}
		sig := r.Header.Get(sms.SignatureHeader)
		if sig == "" {
			h.reject(w, r, hook, reasonMissingSignature, http.StatusForbidden, "twilio webhook without "+sms.SignatureHeader)
			return
		}
		if !h.validator.Valid(r.URL.Path, r.URL.RawQuery, form, sig) {
			h.reject(w, r, hook, reasonBadSignature, http.StatusForbidden,
				"twilio webhook signature does not match (check BACKOFFICE_PUBLIC_URL is the URL Twilio calls)")
			return
		}
		h.enqueue(w, r, hook, build(form, r, h.now()))
	}
}

// enqueue queues the job of a signed request and answers Twilio: 200 when
// it is queued or was already (a retried webhook), 503 when Redis did not
// take it, so that Twilio tries again.
func (h *twilioHooks) enqueue(w http.ResponseWriter, r *http.Request, hook string, args jobs.Args) {
	task, err := jobs.NewTask(args)
	if err != nil { // ParseInbound and ParseStatus make valid args: a bug
		h.reject(w, r, hook, reasonTask, http.StatusInternalServerError, "twilio webhook: "+err.Error())
		return
	}
	outcome := "enqueued"
	if _, err := h.client.EnqueueContext(r.Context(), task); errors.Is(err, asynq.ErrTaskIDConflict) {
		outcome = "replay"
	} else if err != nil {
		h.reject(w, r, hook, reasonEnqueue, http.StatusServiceUnavailable, "twilio webhook: enqueue: "+err.Error())
		return
	}
	h.accepted.WithLabelValues(hook, outcome).Inc()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write([]byte(emptyTwiML))
}

// reject counts, logs and answers a refused request. The log line names
// the reason, never the body or the signature.
func (h *twilioHooks) reject(w http.ResponseWriter, r *http.Request, hook, reason string, status int, msg string) {
	h.rejected.WithLabelValues(hook, reason).Inc()
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, msg, "hook", hook, "reason", reason, "status", status, "remote", r.RemoteAddr)
	http.Error(w, http.StatusText(status), status)
}

// formStatus is the status of a body that was not read.
func formStatus(reason string) int {
	switch reason {
	case sms.ReasonTooLarge:
		return http.StatusRequestEntityTooLarge
	case sms.ReasonContentType:
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}
