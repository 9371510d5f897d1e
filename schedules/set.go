package schedules

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopworks/backoffice/jobs"
)

// Set is a validated directory of schedule files. It is immutable: a reload
// builds a new Set.
type Set struct {
	Campaigns []CampaignEntry
	Jobs      []JobEntry
	Files     []string // every file loaded, sorted
	specs     map[string]spec
}

// CampaignEntry is a campaign and when it launches.
type CampaignEntry struct {
	Campaign jobs.Campaign
	Cron     string // as written, e.g. "CRON_TZ=Europe/Prague 0 9 * * MON"
	Enabled  bool   // a disabled entry is validated but never fires
	File     string
	Line     int
}

// JobEntry is a recurring job: a kind of the jobs catalogue and its args.
type JobEntry struct {
	Name    string
	Cron    string
	Kind    string
	Args    json.RawMessage // JSON; RunPlaceholder in strings is replaced per tick
	Enabled bool
	File    string
	Line    int
}

// Campaign returns the campaign entry called name.
func (s *Set) Campaign(name string) (CampaignEntry, bool) {
	for _, c := range s.Campaigns {
		if c.Campaign.Name == name {
			return c, true
		}
	}
	return CampaignEntry{}, false
}

// Job returns the job entry called name.
func (s *Set) Job(name string) (JobEntry, bool) {
	for _, j := range s.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return JobEntry{}, false
}

// NextTimes returns the next n ticks of the entry called entryName after
// from, in the entry's zone. Disabled entries have ticks too; they just do
// not fire.
func (s *Set) NextTimes(entryName string, from time.Time, n int) ([]time.Time, error) {
	sp, ok := s.specs[entryName]
	if !ok {
		return nil, fmt.Errorf("schedules: no entry named %q", entryName)
	}
	var out []time.Time
	for t := from; len(out) < n; {
		t = sp.sched.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t.In(sp.loc))
	}
	return out, nil
}

// Zone returns the zone an entry's cron expression is read in: its CRON_TZ,
// else its file's timezone.
func (s *Set) Zone(entryName string) string { return s.specs[entryName].zone }

// task builds the task of the entry called name for the tick at tick, and
// returns it with its task ID.
func (s *Set) task(name string, tick time.Time) (*asynq.Task, string, error) {
	run := runID(tick, s.specs[name].seconds)
	if c, ok := s.Campaign(name); ok {
		args := jobs.CampaignLaunchArgs{Campaign: c.Campaign, Run: run, Trigger: "schedule"}
		task, err := jobs.NewTask(args)
		return task, args.TaskID(), err
	}
	j, ok := s.Job(name)
	if !ok {
		return nil, "", fmt.Errorf("schedules: no entry named %q", name)
	}
	args, err := jobs.Decode(j.Kind, withRun(j.Args, run))
	if err != nil {
		return nil, "", fmt.Errorf("schedule %s: %w", name, err)
	}
	id := "schedule:" + name + ":" + run
	task, err := jobs.NewTask(args, asynq.TaskID(id), asynq.Retention(minRetention(j.Kind)))
	return task, id, err
}

// retentionFloor is how long a scheduled task stays after it completes, at
// least: while it is there, a daemon whose clock runs late finds the tick's
// task ID taken and does not run the job a second time.
const retentionFloor = 24 * time.Hour

func minRetention(kind string) time.Duration {
	spec, _ := jobs.Lookup(kind)
	return max(spec.Retention, retentionFloor)
}
