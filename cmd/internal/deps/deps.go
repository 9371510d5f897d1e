// Package deps pins modules while the packages that use them are written.
// TEMPORARY: removed once every dependency is imported by real code.
package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/emersion/go-smtp"
	_ "github.com/go-redis/redis_rate/v10"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/hibiken/asynq"
	_ "github.com/hibiken/asynq/x/metrics"
	_ "github.com/hibiken/asynqmon"
	_ "github.com/nyaruka/phonenumbers"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/robfig/cron/v3"
	_ "github.com/twilio/twilio-go"
	_ "github.com/wneessen/go-mail"
	_ "go.uber.org/goleak"
	_ "gopkg.in/yaml.v3"
)
