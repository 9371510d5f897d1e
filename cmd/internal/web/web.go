// Package web is the daemon's HTTP side: health and readiness probes, the
// Prometheus endpoint, the REST API, a small dashboard and asynqmon, behind
// bearer tokens (API, CLI) or a session cookie (browser).
//
// Handlers only validate and enqueue, or read: every effect is a job.
// Each area of the API registers its routes in its own file through
// Server.open, Server.api and Server.page; routes lists the areas.
package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/inbox"
)

// DefaultMaxUploadBytes caps an uploaded import file when
// Options.MaxUploadBytes is zero.
const DefaultMaxUploadBytes int64 = 1 << 30

// Options are the collaborators of the HTTP server. Logger, Redis, Client,
// Inspector, DataDir, Gatherer and Registerer are required.
type Options struct {
	Logger    *slog.Logger
	Redis     redis.UniversalClient
	Client    *asynq.Client
	Inspector *asynq.Inspector
	Customers *customers.Store
	// Tokens are the API tokens; with none, every authenticated route
	// answers 401.
	Tokens []config.Token
	// KeyPrefix prefixes the Redis keys of the server's own records (the
	// revoked sessions): the daemon's BACKOFFICE_KEY_PREFIX.
	KeyPrefix string
	// DataDir receives uploads under imports/.
	DataDir string
	// PublicURL is the absolute URL browsers reach the server at: it makes
	// session cookies Secure when https and is a trusted origin for CSRF
	// checks. Empty: only the request's Host is trusted.
	PublicURL string
	// Gatherer is what /metrics serves; Registerer receives the HTTP
	// request metrics and the asynq queue collector.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	// MaxUploadBytes caps an uploaded import (0: DefaultMaxUploadBytes).
	MaxUploadBytes int64
	// TwilioAuthToken checks the signatures of Twilio's webhooks, signed
	// for PublicURL + path. Empty: the webhooks answer 503.
	TwilioAuthToken string
	// Inbox is the staff inbox of GET /api/inbox (nil: those routes 503).
	Inbox *inbox.Store
	// Unsubscribe checks the tokens of /u/<token> links (no secret: every
	// link is refused).
	Unsubscribe campaigns.Unsubscriber
	// Campaigns runs and operates campaigns (nil: the campaign routes 503).
	Campaigns *campaigns.Engine
	// Schedules is the schedule set in force and its last runs
	// (*schedules.Runner; nil: the schedule and campaign routes 503).
	Schedules Schedules
	// Reloads tells which reloads of the schedule files and templates were
	// refused (nil: none are reported).
	Reloads Reloads
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Schedules is what the server reads of the scheduler (*schedules.Runner).
type Schedules interface {
	// Current is the validated set in force (nil before the first load).
	Current() *schedules.Set
	// View lists every entry with its next ticks and its last runs.
	View(ctx context.Context, next, runs int) ([]schedules.EntryView, error)
}

// Server serves the daemon's HTTP routes. Build it with New.
type Server struct {
	log           *slog.Logger
	redis         redis.UniversalClient
	client        *asynq.Client
	inspector     *asynq.Inspector
	customers     *customers.Store
	auth          *authenticator
	keyPrefix     string
	origins       *originCheck
	dataDir       string
	maxUpload     int64
	now           func() time.Time
	gatherer      prometheus.Gatherer
	metrics       *httpMetrics
	secureCookies bool
	pages         *template.Template
	twilio        *twilioHooks
	inbox         *inbox.Store
	unsubscribe   campaigns.Unsubscriber
	campaigns     *campaigns.Engine
	schedules     Schedules
	reloads       Reloads
	mux           *http.ServeMux
	handler       http.Handler
}

// New checks opts, registers the HTTP metrics on opts.Registerer and builds
// every route.
func New(opts Options) (*Server, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("web: data dir %q: %w", opts.DataDir, err)
	}
	origins, secure, err := newOriginCheck(opts.PublicURL)
	if err != nil {
		return nil, err
	}
	metrics, err := newHTTPMetrics(opts.Registerer, opts.Inspector)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log: opts.Logger, redis: opts.Redis, client: opts.Client, inspector: opts.Inspector,
		customers: opts.Customers, auth: newAuthenticator(opts.Tokens), keyPrefix: opts.KeyPrefix, origins: origins,
		dataDir: dataDir, maxUpload: cmp.Or(opts.MaxUploadBytes, DefaultMaxUploadBytes),
		now: opts.Now, gatherer: opts.Gatherer, metrics: metrics,
		secureCookies: secure, mux: http.NewServeMux(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if s.twilio, err = newTwilioHooks(opts, s.log, s.now); err != nil {
		return nil, fmt.Errorf("web: twilio webhooks: %w", err)
	}
	s.inbox = opts.Inbox
	s.unsubscribe = opts.Unsubscribe
	s.campaigns = opts.Campaigns
	s.schedules = opts.Schedules
	s.reloads = opts.Reloads
	s.routes()
	s.handler = s.observe(s.mux)
	return s, nil
}

func checkOptions(o Options) error {
	var errs []error
	for _, c := range []struct {
		missing bool
		name    string
	}{
		{o.Logger == nil, "Logger"}, {o.Redis == nil, "Redis"}, {o.Client == nil, "Client"},
		{o.Inspector == nil, "Inspector"}, {o.Customers == nil, "Customers"},
		{o.DataDir == "", "DataDir"}, {o.Gatherer == nil, "Gatherer"}, {o.Registerer == nil, "Registerer"},
	} {
		if c.missing {
			errs = append(errs, fmt.Errorf("web: options: %s is required", c.name))
		}
	}
	if o.MaxUploadBytes < 0 {
		errs = append(errs, fmt.Errorf("web: options: MaxUploadBytes: must not be negative, got %d", o.MaxUploadBytes))
	}
	return errors.Join(errs...)
}

// Handler returns the root handler: every route, with request logging and
// metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// routes registers every area. An area adds one line here.
func (s *Server) routes() {
	s.registerHealth()
	s.registerSession()
	s.registerMetrics()
	s.registerJobs()
	s.registerCustomers()
	s.registerImports()
	s.registerDashboard()
	s.registerMonitor()
	s.registerTwilio()
	s.registerInbox()
	s.registerUnsubscribe()
	s.registerSchedules()
	s.registerCampaigns()
}

// open registers a route that needs no token (probes, webhooks that check
// their own signatures, unsubscribe links).
func (s *Server) open(pattern string, h http.HandlerFunc) {
	s.mux.Handle(pattern, h)
}

// api registers a JSON route that needs a token of role need (bearer, or a
// session cookie with a same-origin check for unsafe methods). Failures are
// JSON: 401 without a valid token, 403 for a role that is too weak.
func (s *Server) api(pattern string, need config.Role, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.authorize(need, false, h))
}

// page registers a browser route: like api, but a visitor without a
// valid token or session is sent to /login.
func (s *Server) page(pattern string, need config.Role, h http.Handler) {
	s.mux.Handle(pattern, s.authorize(need, true, h))
}
