// Package customers keeps the shop's customer records on Redis: one JSON
// record per customer, e-mail, phone and tag indexes, per-channel consent,
// and a timeline (a Redis stream) of everything that happened with the
// customer: messages in and out, consent changes, letters, tickets, returns.
//
// Every key of one customer carries the hash tag {<id>}, so the record, its
// timeline and its event-dedupe keys share one slot and the Lua scripts that
// change them together stay atomic on Redis Cluster. The indexes live in
// other slots; writes are ordered so that a crash between them leaves only
// entries that lookups verify and later writes repair (see upsert.go).
//
// Import streams a CSV file of customers into the store in pipelined
// batches, checkpointing as it goes so that a retried task resumes.
package customers
