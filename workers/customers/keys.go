package customers

// keys builds every Redis key of the customer store. The keys of one
// customer carry the hash tag {<id>} (ids cannot contain braces), so the
// record, its timeline and its event keys share one slot; an import's keys
// carry {import:<import id>}. The indexes are single keys in their own slots.
//
// Layout, with prefix "bo:", customer "c-42" and import "crm-11":
//
//	bo:customer:{c-42}               string JSON record (Customer plus the index claims it holds)
//	bo:customer:{c-42}:timeline      stream events, newest last, MAXLEN ~ TimelineMaxLen;
//	                                 fields at (RFC 3339), ch, kind, ref, text
//	bo:customer:{c-42}:evkeys        hash   event dedupe key -> id of the event it added
//	bo:idx:email                     hash   lower-case e-mail -> claim "<id>|<unix ms>|<nonce>"
//	bo:idx:phone                     hash   E.164 phone       -> claim "<id>|<unix ms>|<nonce>"
//	bo:tag:<tag>                     set    ids of customers carrying the tag
//	bo:customers:all                 set    every customer id
//	bo:import:{import:crm-11}        hash   import status, counters, checkpoint (see import_state.go)
//	bo:import:{import:crm-11}:errors list   the first 1000 rejected rows, "line N: field X: reason"
//
// Index entries are verified on read (the record must still hold the e-mail,
// phone or tag), so an entry left behind by a crash is never believed.
type keys struct {
	prefix string
}

func (k keys) record(id string) string   { return k.prefix + "customer:{" + id + "}" }
func (k keys) timeline(id string) string { return k.record(id) + ":timeline" }
func (k keys) evkeys(id string) string   { return k.record(id) + ":evkeys" }
func (k keys) emailIndex() string        { return k.prefix + "idx:email" }
func (k keys) phoneIndex() string        { return k.prefix + "idx:phone" }
func (k keys) tag(tag string) string     { return k.prefix + "tag:" + tag }
func (k keys) all() string               { return k.prefix + "customers:all" }
func (k keys) importState(id string) string {
	return k.prefix + "import:{import:" + id + "}"
}
func (k keys) importErrors(id string) string { return k.importState(id) + ":errors" }
