package schedules

// Redis keys of the schedules store. Every key of one entry carries the
// hash tag {<entry name>}, so the recording script's keys share a slot on
// Redis Cluster. Entry names are [a-z0-9-], so they cannot break the tag.

// runsIndexKey is a sorted set of an entry's recorded run ids, scored by
// the tick's Unix time.
func runsIndexKey(prefix, name string) string { return prefix + "schedule:{" + name + "}:runs" }

// runsKey is a hash of an entry's run records: run id -> JSON Run.
func runsKey(prefix, name string) string { return prefix + "schedule:{" + name + "}:run" }
