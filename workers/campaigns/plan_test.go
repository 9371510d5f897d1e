package campaigns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/shopworks/backoffice/jobs"
)

const audienceCSV = "\uFEFFemail,name,language,coupon\n" +
	"jana@example.sk,Jana,sk,J10\n" + // line 2
	"petr@example.cz,Petr,cs,P10\n" + // 3
	"JANA@EXAMPLE.SK,Jana again,sk,J11\n" + // 4: duplicate: addresses compare without case
	"not-an-address,X,en,X\n" + // 5
	",Nobody,en,N\n" + // 6
	"anna@example.pl,Anna,pl\n" + // 7: wrong number of fields
	"\"tom@example.com\",\"Tom \"\"T\"\"\",en,T1\n" + // 8
	"jana@example.sk,Jana dup,sk,J12\n" + // 9: duplicate of line 2
	"eva@example.sk,Eva,xx1,E\n" + // 10: bad language
	"olga@example.sk,Olga,sk,O1\n" // 11

func TestPlanFileAudience(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	b.writeFile(t, "aud.csv", audienceCSV)
	c := emailCampaign("spring", jobs.Audience{File: "aud.csv"})
	if err := b.engine.HandleLaunch(ctx, launchArgs(c, "r1")); err != nil {
		t.Fatalf("HandleLaunch: %v", err)
	}
	got := b.ledger(t, "spring", "r1")
	want := map[string]string{
		"jana@example.sk": "pending|", "petr@example.cz": "pending|", "tom@example.com": "pending|", "olga@example.sk": "pending|",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}
	skips, err := b.engine.Store().Skips(ctx, "spring", "r1")
	if err != nil {
		t.Fatal(err)
	}
	for line, reason := range map[string]string{"line:4": "duplicate", "line:5": "invalid_address", "line:6": "no_address",
		"line:7": "invalid_row", "line:9": "duplicate", "line:10": "invalid_row"} {
		if !strings.HasPrefix(skips[line], reason) {
			t.Errorf("skips[%s] = %q, want reason %s", line, skips[line], reason)
		}
	}
	if len(skips) != 6 {
		t.Errorf("skips = %v, want 6 rows", skips)
	}
	st := b.status(t, "spring", "r1")
	checkCounts(t, st)
	if st.Counts.Total != 10 || st.Counts.Pending != 4 || st.Counts.Skipped != 6 || st.Planning || st.Chunks != 2 {
		t.Errorf("status = %+v, want total 10, pending 4, skipped 6, 2 chunks, planning done", st)
	}
	wantChunks := [][]string{{"jana@example.sk", "petr@example.cz", "tom@example.com"}, {"olga@example.sk"}}
	if diff := cmp.Diff(wantChunks, b.chunks(t, "spring", "r1")); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(chunkTaskIDs("spring", "r1", 2), b.taskIDs(t)); diff != "" {
		t.Errorf("chunk tasks (-want +got):\n%s", diff)
	}
	_, rows, err := b.engine.store.chunkRecipients(ctx, "spring", "r1", 0)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := decodeRow("tom", rows["tom@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fileRecipient{Line: 8, Email: "tom@example.com", Name: `Tom "T"`, Language: "en", Extra: map[string]string{"coupon": "T1"}}, fr); diff != "" {
		t.Errorf("stored row (-want +got):\n%s", diff)
	}
	// a second launch of the same run changes nothing
	if err := b.engine.HandleLaunch(ctx, launchArgs(c, "r1")); err != nil {
		t.Fatalf("HandleLaunch again: %v", err)
	}
	if again := b.status(t, "spring", "r1"); again.Counts != st.Counts || again.Chunks != st.Chunks {
		t.Errorf("after a second launch: %+v, want %+v", again, st)
	}
}

// failingSource stops with an error after n rows, as a launch whose
// worker dies in the middle of the audience.
type failingSource struct {
	audienceSource
	n int
}

var errCrash = errors.New("simulated crash")

func (f failingSource) each(ctx context.Context, resume string, emit func(candidate) error) error {
	seen := 0
	return f.audienceSource.each(ctx, resume, func(c candidate) error {
		if seen++; seen > f.n {
			return errCrash
		}
		return emit(c)
	})
}

func TestPlanResumesWithoutDoublePlanning(t *testing.T) {
	t.Parallel()
	for _, crashAfter := range []int{3, 4, 5, 7, 10, 29} {
		t.Run(fmt.Sprint(crashAfter), func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			ctx := t.Context()
			var sb strings.Builder
			sb.WriteString("email,name\n")
			for i := range 20 {
				fmt.Fprintf(&sb, "user%d@example.sk,User %d\n", i, i)
				if i%4 == 0 {
					fmt.Fprintf(&sb, "user%d@example.sk,Dup %d\n", i, i) // a real duplicate
				}
			}
			b.writeFile(t, "aud.csv", sb.String())
			c := emailCampaign("resume", jobs.Audience{File: "aud.csv"})
			a := launchArgs(c, "r1")
			if _, err := b.engine.store.createRun(ctx, a); err != nil {
				t.Fatal(err)
			}
			src := fileAudience{path: b.engine.audiencePath("aud.csv"), channel: jobs.ChannelEmail}
			for attempt := 0; ; attempt++ {
				_, err := b.engine.plan(ctx, "resume", "r1", failingSource{src, crashAfter})
				if err == nil {
					break
				}
				if !errors.Is(err, errCrash) || attempt > 40 {
					t.Fatalf("plan attempt %d: %v", attempt, err)
				}
			}
			st := b.status(t, "resume", "r1")
			checkCounts(t, st)
			if st.Counts.Pending != 20 || st.Counts.Skipped != 5 || st.Planning {
				t.Fatalf("status = %+v, want 20 pending, 5 duplicates skipped", st.Counts)
			}
			seen := map[string]int{}
			for _, ch := range b.chunks(t, "resume", "r1") {
				if len(ch) > 3 {
					t.Errorf("chunk of %d recipients, want at most 3", len(ch))
				}
				for _, id := range ch {
					seen[id]++
				}
			}
			for i := range 20 {
				if id := fmt.Sprintf("user%d@example.sk", i); seen[id] != 1 {
					t.Errorf("recipient %s is in %d chunks, want 1", id, seen[id])
				}
			}
			if diff := cmp.Diff(chunkTaskIDs("resume", "r1", st.Chunks), b.taskIDs(t)); diff != "" {
				t.Errorf("chunk tasks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLaunchFailsPermanentlyOnBadAudience(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, want string
	}{
		{"missing", "", "no such file"},
		{"no-email-column", "name,phone\nJana,+421905123456\n", `needs a "email" column`},
		{"twice", "email,EMAIL\na@b.sk,c@d.sk\n", "appears twice"},
		{"empty-header", "email,,x\na@b.sk,1,2\n", "has no name"},
		// an unclosed quote on line 3 would make one field of the rest of
		// the file (held in memory, every later row dropped unrecorded)
		{"unclosed-quote", "email,name\na@b.sk,A\nb@b.sk,\"Bob\n" + strings.Repeat("c@b.sk,C\n", 150_000), `line 3: a record (a quoted field not closed?) is longer than`},
		{"long-line", "email,name\na@b.sk,A\nb@b.sk,B\nc@b.sk," + strings.Repeat("x", 2<<20) + "\n", "line 4: a line is longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			if tt.content != "" {
				b.writeFile(t, "aud.csv", tt.content)
			}
			err := b.engine.HandleLaunch(t.Context(), launchArgs(emailCampaign("bad", jobs.Audience{File: "aud.csv"}), "r1"))
			if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("HandleLaunch = %v, want SkipRetry mentioning %q", err, tt.want)
			}
			st := b.status(t, "bad", "r1")
			if st.State != StateCancelled || !strings.Contains(st.Reason, tt.want) {
				t.Errorf("run state %s (%q), want cancelled with the reason", st.State, st.Reason)
			}
		})
	}
}

// A file that starts with a byte-order mark (PowerShell's Export-Csv,
// Excel's "CSV UTF-8") plans like any other, quoted header included.
func TestPlanFileAudienceWithByteOrderMark(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.writeFile(t, "aud.csv", "\uFEFF\"email\",\"name\"\r\n\"a@example.sk\",\"A\"\r\n\"b@example.sk\",\"B\"\r\n")
	if err := b.engine.HandleLaunch(t.Context(), launchArgs(emailCampaign("bom", jobs.Audience{File: "aud.csv"}), "r1")); err != nil {
		t.Fatalf("HandleLaunch: %v", err)
	}
	if got := b.ledger(t, "bom", "r1"); len(got) != 2 || got["a@example.sk"] != "pending|" || got["b@example.sk"] != "pending|" {
		t.Errorf("ledger = %v, want both recipients pending", got)
	}
}

func TestPlanRefusesAFileChangedBetweenAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	path := b.writeFile(t, "aud.csv", "email\na@example.sk\nb@example.sk\nc@example.sk\nd@example.sk\n")
	a := launchArgs(emailCampaign("changed", jobs.Audience{File: "aud.csv"}), "r1")
	if _, err := b.engine.store.createRun(ctx, a); err != nil {
		t.Fatal(err)
	}
	src := fileAudience{path: path, channel: jobs.ChannelEmail}
	if _, err := b.engine.plan(ctx, "changed", "r1", failingSource{src, 3}); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v", err)
	}
	if err := os.WriteFile(path, []byte("email\nz@example.sk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	err := b.engine.HandleLaunch(ctx, a)
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "changed while the launch was planning") {
		t.Fatalf("HandleLaunch after the file changed = %v", err)
	}
}

func TestPlanManyRowsInBoundedBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.ChunkSize = 500 })
	var sb strings.Builder
	sb.WriteString("email,language,code\n")
	const n = 5003
	for i := range n {
		fmt.Fprintf(&sb, "u%05d@example.sk,sk,C%d\n", i, i)
	}
	b.writeFile(t, "big.csv", sb.String())
	if err := b.engine.HandleLaunch(t.Context(), launchArgs(emailCampaign("big", jobs.Audience{File: "big.csv"}), "r1")); err != nil {
		t.Fatal(err)
	}
	st := b.status(t, "big", "r1")
	checkCounts(t, st)
	if st.Counts.Pending != n || st.Chunks != 11 {
		t.Fatalf("status = %+v chunks %d, want %d pending in 11 chunks", st.Counts, st.Chunks, n)
	}
	for i, ch := range b.chunks(t, "big", "r1") {
		if want := min(500, n-i*500); len(ch) != want {
			t.Errorf("chunk %d has %d recipients, want %d", i, len(ch), want)
		}
	}
}

func TestEmptyAudienceFinishesAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.writeFile(t, "empty.csv", "email,name\n")
	if err := b.engine.HandleLaunch(t.Context(), launchArgs(emailCampaign("empty", jobs.Audience{File: "empty.csv"}), "r1")); err != nil {
		t.Fatal(err)
	}
	st := b.status(t, "empty", "r1")
	if st.State != StateFinished || st.Counts.Total != 0 || st.Chunks != 0 || st.Planning {
		t.Errorf("status = %+v, want finished with nothing to send", st)
	}
	if ids := b.taskIDs(t); len(ids) != 0 {
		t.Errorf("tasks = %v, want none", ids)
	}
}
