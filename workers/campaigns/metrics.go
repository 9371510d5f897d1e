package campaigns

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what this daemon's campaign chunks do, for /metrics; the
// person on call watches a campaign's throughput and failures there. The
// campaign label is an entry name of the schedule files, so the series are
// as many as the entries.
type Metrics struct {
	messages *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

// Classes of backoffice_campaign_send_errors_total.
const (
	errorTransient     = "transient"      // SMTP 4xx, network, Twilio 5xx: tried again
	errorProviderLimit = "provider_limit" // Twilio 429 or 21611: the recipient waits
	errorPermanent     = "permanent"      // SMTP 5xx, Twilio 21610 and friends: recorded failed
	errorInDoubt       = "in_doubt"       // no answer after the request left: recorded failed, not resent
)

// NewMetrics registers backoffice_campaign_messages_total{campaign,
// channel, outcome} and backoffice_campaign_send_errors_total{campaign,
// channel, class} with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backoffice_campaign_messages_total",
			Help: "Campaign messages this daemon sent, and recipients it recorded failed, by campaign, channel and outcome (sent, failed). Skipped recipients are in the run's status.",
		}, []string{"campaign", "channel", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backoffice_campaign_send_errors_total",
			Help: "Failed sends of campaign messages by this daemon, by campaign, channel and class (transient, provider_limit, permanent, in_doubt).",
		}, []string{"campaign", "channel", "class"}),
	}
	reg.MustRegister(m.messages, m.errors)
	return m
}

// settled counts a message sent (state sent) or a recipient recorded failed.
func (m *Metrics) settled(campaign, channel string, state EntryState) {
	if m != nil {
		m.messages.WithLabelValues(campaign, channel, string(state)).Inc()
	}
}

// sendError counts a failed send of class.
func (m *Metrics) sendError(campaign, channel, class string) {
	if m != nil {
		m.errors.WithLabelValues(campaign, channel, class).Inc()
	}
}
