package campaigns

import "strconv"

// keys builds every Redis key of the campaign engine. All keys of one run
// carry the hash tag {<campaign>:<run>}, so they share one slot and the
// ledger scripts stay atomic on Redis Cluster. Keys that span runs (latest
// run, run index, SMS SID index) are single-key and need no tag.
//
// Layout, with prefix "bo:" and campaign "spring", run "r1":
//
//	bo:campaign:{spring:r1}:run         hash   state, counts, frozen definition, planning progress
//	bo:campaign:{spring:r1}:ledger      hash   recipient id -> "state|unix ms|detail"
//	bo:campaign:{spring:r1}:chunk:<n>   list   recipients of chunk n (closed once full): the id, or
//	                                           "<id>\n<row JSON>" for a file audience
//	bo:campaign:{spring:r1}:done        bitmap bit n set when chunk n finished
//	bo:campaign:{spring:r1}:slots       zset   chunk n -> lease expiry (unix ms), at most N chunks in flight
//	bo:campaign:{spring:r1}:owners      hash   chunk n -> lease token of the worker holding it
//	bo:campaign:{spring:r1}:skips       hash   "line:<n>" -> reason, file rows that have no ledger entry
//	bo:campaign:{spring:r1}:noevent     set    recipients sent whose timeline event is not yet written
//	bo:campaign:{spring:r1}:sent:<min>  string sends in unix minute <min> (expires after 3 minutes)
//	bo:campaign:latest:spring           string id of the newest run
//	bo:campaign:runs:spring             zset   run id -> start (unix ms)
//	bo:campaign:names                   set    every campaign name ever launched
//	bo:campaign:sid:<MessageSid>        string "<campaign>\n<run>\n<recipient>" (expires after SIDTTL)
//	bo:campaign:daemon:<id>             string set by a daemon's engine while it lives (expires after AliveTTL)
//	bo:campaign:daemon:<id>:runs        set    "<campaign>\n<run>" of every run that daemon took slots of
//	bo:campaign:daemons                 set    ids of the daemons that keep themselves alive
//
// The shared rate limiter lives at "rate:<prefix>campaign:<campaign>":
// github.com/go-redis/redis_rate always puts its own "rate:" in front.
type keys struct {
	prefix string
}

// runKeys are the keys of one run; all share the run's hash tag.
type runKeys struct {
	run, ledger, done, slots, owners, skips, noevent string
	base                                             string // "<prefix>campaign:{name:run}:"
}

func (k keys) run(campaign, run string) runKeys {
	b := k.prefix + "campaign:{" + campaign + ":" + run + "}:"
	return runKeys{
		base: b, run: b + "run", ledger: b + "ledger", done: b + "done",
		slots: b + "slots", owners: b + "owners", skips: b + "skips", noevent: b + "noevent",
	}
}

func (r runKeys) chunk(n int) string { return r.base + "chunk:" + strconv.Itoa(n) }

func (r runKeys) sentMinute(unixMinute int64) string {
	return r.base + "sent:" + strconv.FormatInt(unixMinute, 10)
}

func (k keys) latest(campaign string) string { return k.prefix + "campaign:latest:" + campaign }
func (k keys) runs(campaign string) string   { return k.prefix + "campaign:runs:" + campaign }
func (k keys) names() string                 { return k.prefix + "campaign:names" }
func (k keys) sid(messageSID string) string  { return k.prefix + "campaign:sid:" + messageSID }
func (k keys) alive(daemon string) string    { return k.prefix + "campaign:daemon:" + daemon }
func (k keys) daemonRuns(daemon string) string {
	return k.prefix + "campaign:daemon:" + daemon + ":runs"
}
func (k keys) daemons() string { return k.prefix + "campaign:daemons" }
func (k keys) limiter(campaign string) string {
	return k.prefix + "campaign:" + campaign
}
