package inbox

// keys builds every Redis key of the inbox. All carry the hash tag {inbox},
// so the scripts that touch several stay atomic on Redis Cluster; the inbox
// holds what staff have not yet dealt with, a small set, so one slot is
// enough.
//
// Layout, with prefix "bo:":
//
//	bo:{inbox}:e:<id>          hash  data -> entry JSON; resolved_at, resolved_by once dealt with
//	bo:{inbox}:open:message    zset  id -> arrival (unix ms): customers' messages awaiting an answer
//	bo:{inbox}:open:unmatched  zset  id -> arrival (unix ms): input that could not be filed
//	bo:{inbox}:counts          hash  "<kind>:<reason>" -> entries ever added
type keys struct {
	prefix string
}

func (k keys) base() string           { return k.prefix + "{inbox}:" }
func (k keys) entry(id string) string { return k.base() + "e:" + id }
func (k keys) open(kind Kind) string  { return k.base() + "open:" + string(kind) }
func (k keys) counts() string         { return k.base() + "counts" }
