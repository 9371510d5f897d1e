package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

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
}

// newScheduler builds the scheduler; start starts it. Campaign entries are
// checked against the templates the daemon sends with.
func (d *daemon) newScheduler() *scheduler {
	runner := schedules.NewRunner(schedules.RunnerOptions{
		Dir:       d.cfg.SchedulesDir,
		Options:   scheduleOptions(d.delivery.templates),
		Client:    d.client,
		Redis:     d.rdb,
		KeyPrefix: d.cfg.KeyPrefix,
		Logger:    d.log,
	})
	return &scheduler{Runner: runner, log: d.log, reloadTemplates: d.reloadTemplates}
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
				} else {
					s.log.Info("templates reloaded")
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
