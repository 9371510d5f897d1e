package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/templates"
)

// scheduler fires the entries of the schedule files (schedules.Runner) and
// reloads them on SIGHUP, after the templates (reloadTemplates).
type scheduler struct {
	*schedules.Runner
	log             *slog.Logger
	reloadTemplates func() error
	stopHangup      chan struct{}
	hangupDone      chan struct{}
	// templatesRejected is the last SIGHUP's refused template reload, nil
	// when the templates on disk are in force.
	templatesRejected atomic.Pointer[web.Rejected]
}

// newScheduler builds the scheduler; start starts it. Campaign entries are
// checked against the templates the daemon sends with. Its ticks and
// refused reloads are metrics of reg.
func (d *daemon) newScheduler(reg prometheus.Registerer) *scheduler {
	ticks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backoffice_schedule_ticks_total",
		Help: "Schedule ticks this daemon fired, by entry and outcome (enqueued, duplicate: another daemon was first, error: not enqueued).",
	}, []string{"entry", "outcome"})
	runner := schedules.NewRunner(schedules.RunnerOptions{
		Dir:       d.cfg.SchedulesDir,
		Options:   scheduleOptions(d.delivery.templates),
		Client:    d.client,
		Redis:     d.rdb,
		KeyPrefix: d.cfg.KeyPrefix,
		Logger:    d.log,
		OnTick:    func(entry string, run schedules.Run) { ticks.WithLabelValues(entry, run.Outcome).Inc() },
	})
	s := &scheduler{Runner: runner, log: d.log, reloadTemplates: d.reloadTemplates}
	reg.MustRegister(ticks, rejectedCollector{s: s, desc: prometheus.NewDesc("backoffice_reload_rejected",
		"1 while the files on disk (schedules, templates) are not in force because their last reload was refused.",
		[]string{"files"}, nil)})
	return s
}

// rejectedCollector serves backoffice_reload_rejected{files}, read from
// the scheduler at each scrape.
type rejectedCollector struct {
	s    *scheduler
	desc *prometheus.Desc
}

func (c rejectedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c rejectedCollector) Collect(ch chan<- prometheus.Metric) {
	refused := map[string]float64{}
	for _, r := range c.s.RejectedReloads() {
		refused[r.What] = 1
	}
	for _, files := range []string{"schedules", "templates"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, refused[files], files)
	}
}

// RejectedReloads implements web.Reloads: the schedule files or templates
// on disk that a reload refused and that are therefore not in force.
func (s *scheduler) RejectedReloads() []web.Rejected {
	out := web.RejectedSchedules(s.Rejected())
	if r := s.templatesRejected.Load(); r != nil {
		out = append(out, *r)
	}
	return out
}

// rejectTemplates records a refused template reload; err lists the problems.
func (s *scheduler) rejectTemplates(err error) {
	var problems []string
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			problems = append(problems, e.Error())
		}
	} else {
		problems = strings.Split(err.Error(), "\n")
	}
	s.templatesRejected.Store(&web.Rejected{What: "templates", At: time.Now().UTC(), Problems: problems})
}

// scheduleOptions checks schedule files against the templates of set.
func scheduleOptions(set *templates.Set) schedules.Options {
	return schedules.Options{HasTemplate: set.Has}
}

// reloadTemplates loads the templates again and, when they are valid and
// every campaign entry still finds its template in them, puts them in
// force: renders that start afterwards use them, a campaign run in
// progress included. The entries checked are those of the schedule files
// as they are now when those are valid (they are reloaded next), else
// those in force. On error the previous templates stay.
func (d *daemon) reloadTemplates() error {
	next, err := templates.Load(d.templateOptions())
	if err != nil {
		return err
	}
	if _, err := schedules.Load(d.cfg.SchedulesDir, scheduleOptions(next)); err != nil {
		var missing []string
		if cur := d.schedules.Current(); cur != nil {
			for _, c := range cur.Campaigns {
				if !next.Has(c.Campaign.Template, c.Campaign.Channel) {
					missing = append(missing, fmt.Sprintf("%s:%d: campaign %s needs %s template %s",
						c.File, c.Line, c.Campaign.Name, c.Campaign.Channel, c.Campaign.Template))
				}
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("templates: the schedules in force need templates the new set lacks: %s", strings.Join(missing, "; "))
		}
	}
	return d.delivery.templates.Replace(next)
}

// start loads the schedule files (an invalid one stops the start, naming
// its file:line) and fires their entries until stop. A SIGHUP reloads them;
// so does a change to the files, within 2 seconds.
func (s *scheduler) start(ctx context.Context) error {
	// Listen before loading: from the moment the schedules are loaded (and
	// logged), a SIGHUP reloads them and never kills the daemon.
	hangup := make(chan os.Signal, 1)
	signal.Notify(hangup, syscall.SIGHUP)
	if err := s.Start(ctx); err != nil {
		signal.Stop(hangup)
		return err
	}
	s.stopHangup, s.hangupDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.hangupDone)
		defer signal.Stop(hangup)
		for {
			select {
			case <-hangup:
				s.log.Info("SIGHUP: reloading the templates and the schedule files")
				if err := s.reloadTemplates(); err != nil {
					s.log.Error("templates: reload rejected, keeping the previous templates", "error", err)
					s.rejectTemplates(err)
				} else {
					s.log.Info("templates reloaded")
					s.templatesRejected.Store(nil)
				}
				_ = s.Reload() // an invalid reload is logged and keeps the previous schedules
			case <-s.stopHangup:
				return
			}
		}
	}()
	return nil
}

// stop stops firing; ticks being enqueued get until ctx is done.
func (s *scheduler) stop(ctx context.Context) {
	if s.stopHangup == nil {
		return // never started
	}
	close(s.stopHangup)
	<-s.hangupDone
	s.Stop(ctx)
}
