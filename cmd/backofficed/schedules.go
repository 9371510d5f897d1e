package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shopworks/backoffice/schedules"
)

// scheduler fires the entries of the schedule files (schedules.Runner) and
// reloads them on SIGHUP.
type scheduler struct {
	*schedules.Runner
	log        *slog.Logger
	stopHangup chan struct{}
	hangupDone chan struct{}
}

// newScheduler builds the scheduler; start starts it. Campaign entries are
// checked against the templates the daemon sends with.
func (d *daemon) newScheduler() *scheduler {
	runner := schedules.NewRunner(schedules.RunnerOptions{
		Dir:       d.cfg.SchedulesDir,
		Options:   schedules.Options{HasTemplate: d.delivery.templates.Has},
		Client:    d.client,
		Redis:     d.rdb,
		KeyPrefix: d.cfg.KeyPrefix,
		Logger:    d.log,
	})
	return &scheduler{Runner: runner, log: d.log}
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
				s.log.Info("SIGHUP: reloading the schedule files")
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
