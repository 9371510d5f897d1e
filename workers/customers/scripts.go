package customers

import "github.com/redis/go-redis/v9"

// The Lua scripts of the store. Scripts that touch several keys touch the
// keys of one customer only (hash tag {<id>}) or of one import (hash tag
// {import:<id>}), so each is atomic on Redis Cluster too.

// claimScript claims an index entry (an e-mail or phone) for a customer. It
// succeeds when the entry is free, already owned by the same customer, or
// still holds exactly the stale claim the caller checked and means to take
// over. A successful claim always writes the caller's new value, so the
// value identifies the one update that made it.
//
// KEYS[1] index hash (idx:email or idx:phone)
// ARGV[1] field: lower-case e-mail or E.164 phone
// ARGV[2] customer id claiming it
// ARGV[3] the new claim value "<id>|<unix ms>|<nonce>"
// ARGV[4] stale claim that may be replaced ("" = none)
// Returns "" when claimed an entry that was free or stale, "=" when claimed
// an entry the same customer already held, else the other owner's claim.
var claimScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local mine = cur and string.sub(cur, 1, #ARGV[2] + 1) == ARGV[2] .. '|'
if cur and not mine and cur ~= ARGV[4] then return cur end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if mine then return '=' end
return ''
`)

// releaseScript removes an index entry if it still holds the given claim.
//
// KEYS[1] index hash
// ARGV[1] field, ARGV[2] claim value
// Returns 1 when removed, 0 when the entry holds another claim or none.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`)

// writeScript replaces a customer record if it is still the one the caller
// read (compare-and-set), and appends the timeline events of the change
// (consent changes) in the same step.
//
// KEYS[1] record, KEYS[2] timeline
// ARGV[1] the record as read ("" = it must not exist)
// ARGV[2] the new record
// ARGV[3] timeline MAXLEN (trimmed approximately)
// ARGV[4..] events, five values each: at, ch, kind, ref, text
// Returns 1 when written, 0 when the record changed since it was read.
var writeScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
for i = 4, #ARGV, 5 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
    'at', ARGV[i], 'ch', ARGV[i+1], 'kind', ARGV[i+2], 'ref', ARGV[i+3], 'text', ARGV[i+4])
end
return 1
`)

// addEventScript appends an event to a customer's timeline; with a dedupe
// key, only the first event with that key is added.
//
// KEYS[1] record, KEYS[2] timeline, KEYS[3] event-key hash
// ARGV[1] dedupe key ("" = none)
// ARGV[2] timeline MAXLEN (trimmed approximately)
// ARGV[3..7] at, ch, kind, ref, text
// Returns {event id, 1} when added, {id of the first event, 0} when the key
// was seen; an error "NOTFOUND" when the customer does not exist.
var addEventScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOTFOUND customer does not exist')
end
if ARGV[1] ~= '' then
  local prev = redis.call('HGET', KEYS[3], ARGV[1])
  if prev then return {prev, 0} end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
  'at', ARGV[3], 'ch', ARGV[4], 'kind', ARGV[5], 'ref', ARGV[6], 'text', ARGV[7])
if ARGV[1] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], id) end
return {id, 1}
`)

// checkpointScript saves an import's progress and appends its new row
// errors, unless another run of the same import has taken it over.
//
// KEYS[1] import hash, KEYS[2] import errors list
// ARGV[1] run token of the caller
// ARGV[2] how many row errors the list keeps at most
// ARGV[3] n, the number of field/value pairs that follow
// ARGV[4 .. 3+2n] field/value pairs written to the import hash
// ARGV[4+2n ..] row errors to append (beyond the cap they are dropped)
// Returns 1; an error "LOST" when the run token is not the caller's.
var checkpointScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then
  return redis.error_reply('LOST import is being run by another worker')
end
local n = tonumber(ARGV[3])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + 2 * n)) end
local room = tonumber(ARGV[2]) - redis.call('LLEN', KEYS[2])
local i = 4 + 2 * n
while room > 0 and i <= #ARGV do
  redis.call('RPUSH', KEYS[2], ARGV[i])
  room = room - 1
  i = i + 1
end
return 1
`)
