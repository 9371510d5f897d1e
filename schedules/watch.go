package schedules

import (
	"fmt"
	"strings"
	"time"
)

// watch reloads the directory when its files change, until stop is closed.
// It polls names, sizes and modification times: no inotify, so it works on
// any file system, including network ones and ConfigMap mounts.
func (r *Runner) watch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(r.o.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.reloadIfChanged()
		}
	}
}

func (r *Runner) reloadIfChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != runnerStarted {
		return
	}
	if fp := fingerprint(r.o.Dir); fp != r.seen {
		_ = r.reloadLocked(fp) // logged there; the previous set stays
	}
}

// fingerprint sums up the schedule files of dir: it changes when a file is
// added, removed, resized or modified.
func fingerprint(dir string) string {
	files, err := listFiles(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s\x00%d\x00%d\n", f.path, f.size, f.modTime)
	}
	return b.String()
}
