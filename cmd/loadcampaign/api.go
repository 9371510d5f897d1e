package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
)

// launch enqueues campaign:launch of def as run through the daemon's API
// (POST /api/jobs/campaign:launch, as an operator), as an operator's
// client would.
func launch(ctx context.Context, l *local, def jobs.Campaign, run string) error {
	body, err := json.Marshal(jobs.CampaignLaunchArgs{Campaign: def, Run: run, Trigger: "manual"})
	if err != nil {
		return fmt.Errorf("launch %s: %w", def.Name, err)
	}
	url := l.publicURL + "/api/jobs/" + jobs.KindCampaignLaunch
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("launch %s: %w", def.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("launch %s: POST %s: %w", def.Name, url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("launch %s: POST %s: %s: %s", def.Name, url, resp.Status, bytes.TrimSpace(answer))
	}
	return nil
}

// Poll intervals of waitRun.
const (
	pollFine   = 20 * time.Millisecond
	pollCoarse = 200 * time.Millisecond
)

// errTimeout is returned by waitRun when the run did not get there in time.
var errTimeout = errors.New("timed out")

// waitRun polls the status of a run every `every` until done says so,
// printing progress every 5 seconds. A run that does not exist yet (its
// launch job has not run) is waited for. A figure timed by the poll wants
// pollFine; one the daemon times itself (a run's Finished) pollCoarse, so
// that watching does not load the Redis and the CPUs being measured.
func waitRun(ctx context.Context, store *campaigns.Store, campaign, run string, timeout, every time.Duration,
	done func(campaigns.RunStatus) bool, out io.Writer) (campaigns.RunStatus, error) {
	start := time.Now()
	lastPrint := start
	for {
		st, err := store.Status(ctx, campaign, run)
		switch {
		case err == nil && done(st):
			return st, nil
		case err != nil && !errors.Is(err, campaigns.ErrNoRun):
			return st, err
		case time.Since(start) > timeout:
			return st, fmt.Errorf("campaign %s run %s: state %q after %v: %w", campaign, run, st.State, timeout, errTimeout)
		}
		if time.Since(lastPrint) >= 5*time.Second && err == nil {
			fmt.Fprintf(out, "  %5.0fs  %s\n", time.Since(start).Seconds(), progress(st))
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(every):
		}
	}
}

// progress is one line of a run's status.
func progress(st campaigns.RunStatus) string {
	c := st.Counts
	planning := ""
	if st.Planning {
		planning = ", planning"
	}
	return fmt.Sprintf("%s%s: %d recipients, %d sent, %d pending, %d failed, %d skipped; chunks %d/%d; %d sent in the last minute",
		st.State, planning, c.Total, c.Sent+c.Delivered+c.Undelivered, c.Pending+c.Sending, c.Failed, c.Skipped,
		st.ChunksDone, st.Chunks, st.SentPerMinute)
}
