package campaigns

import "github.com/redis/go-redis/v9"

// The ledger scripts. Every script touches the keys of one run only, all
// under the run's hash tag, so each is atomic on Redis Cluster too. Ledger
// entries are "state|unix ms|detail"; the run hash keeps one counter per
// state, changed in the same script as the entry, so the counters always
// sum to "total" and Status is O(1).

// createRunScript creates a run in state running unless it exists.
//
// KEYS[1] run hash
// ARGV[1] frozen campaign definition (JSON)
// ARGV[2] trigger, ARGV[3] retry_of, ARGV[4] now (unix ms)
// Returns 1 when created, 0 when the run already existed.
var createRunScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'running', 'reason', '', 'campaign', ARGV[1],
  'trigger', ARGV[2], 'retry_of', ARGV[3], 'started', ARGV[4], 'finished', '',
  'total', 0, 'pending', 0, 'sending', 0, 'sent', 0, 'delivered', 0, 'undelivered', 0,
  'failed', 0, 'skipped', 0, 'plan_chunk', 0, 'plan_fill', 0, 'chunks', 0,
  'chunks_done', 0, 'planned', 0, 'enqueued', 0, 'plan_ckpt', '')
return 1
`)

// planBatchScript adds one batch of audience rows to a run: new recipients
// become "pending" ledger entries appended to the chunk being filled (a
// file row as "<id>\n<row JSON>", so the chunk carries what it sends);
// rows skipped at planning become "skipped" entries (or, without a
// recipient id, a line in the skips hash); the checkpoint is stored with
// them, so a retried launch resumes exactly after the last committed
// batch. A batch is never larger than a chunk, so it closes at most one.
//
// KEYS[1] run hash, KEYS[2] ledger, KEYS[3] skips,
// KEYS[4] chunk list ARGV[2], KEYS[5] chunk list ARGV[2]+1
// ARGV[1] chunk size
// ARGV[2] chunk being filled as the caller read it (refused if stale)
// ARGV[3] checkpoint to store ("" keeps the old one)
// ARGV[4] now (unix ms)
// ARGV[5] "skip" to record a repeated recipient as a duplicate (file rows),
//
//	"ignore" to drop it silently (a re-scan of the same audience)
//
// ARGV[6..] groups of 4: recipient id ("" for a row with no address),
//
//	skip reason ("" to plan it), recipient data ("" for none), source line
//
// Returns {chunk being filled, its fill, recipients added, rows skipped,
// run state}; an error "STALE" when ARGV[2] is not the chunk being filled.
var planBatchScript = redis.NewScript(bulkHash + `
local run = KEYS[1]
if redis.call('EXISTS', run) == 0 then return redis.error_reply('NORUN run does not exist') end
if redis.call('HGET', run, 'planned') == '1' then return redis.error_reply('PLANNED planning already finished') end
local size = tonumber(ARGV[1])
local first = tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', run, 'plan_chunk'))
if cur ~= first then return redis.error_reply('STALE chunk being filled is ' .. cur) end
local fill = tonumber(redis.call('HGET', run, 'plan_fill'))
local now, dupmode = ARGV[4], ARGV[5]
local added, skipped = 0, 0
local push = {{}, {}}
local rids = {}
for i = 6, #ARGV, 4 do
  if ARGV[i] ~= '' then rids[#rids + 1] = ARGV[i] end
end
local known = hmget_all(KEYS[2], rids)
local seen = {} -- recipient id -> true once it has an entry
for k, rid in ipairs(rids) do
  if known[k] then seen[rid] = true end
end
local set = {}
for i = 6, #ARGV, 4 do
  local rid, reason, data, line = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  if rid == '' then
    if redis.call('HSETNX', KEYS[3], 'line:' .. line, reason) == 1 then skipped = skipped + 1 end
  elseif seen[rid] then
    if dupmode == 'skip' and reason == '' then
      if redis.call('HSETNX', KEYS[3], 'line:' .. line, 'duplicate') == 1 then skipped = skipped + 1 end
    end
  elseif reason ~= '' then
    seen[rid] = true
    set[#set + 1] = rid
    set[#set + 1] = 'skipped|' .. now .. '|' .. reason
    skipped = skipped + 1
  else
    if cur - first > 1 then return redis.error_reply('BATCH batch larger than a chunk') end
    seen[rid] = true
    set[#set + 1] = rid
    set[#set + 1] = 'pending|' .. now .. '|'
    local entry = rid
    if data ~= '' then entry = rid .. '\n' .. data end
    table.insert(push[1 + cur - first], entry)
    added = added + 1
    fill = fill + 1
    if fill >= size then cur = cur + 1; fill = 0 end
  end
end
call_all('HSET', KEYS[2], set)
for i = 1, 2 do
  if #push[i] > 0 then redis.call('RPUSH', KEYS[3 + i], unpack(push[i])) end
end
redis.call('HINCRBY', run, 'total', added + skipped)
redis.call('HINCRBY', run, 'pending', added)
redis.call('HINCRBY', run, 'skipped', skipped)
redis.call('HSET', run, 'plan_chunk', cur, 'plan_fill', fill, 'chunks', cur)
if ARGV[3] ~= '' then redis.call('HSET', run, 'plan_ckpt', ARGV[3]) end
return {cur, fill, added, skipped, redis.call('HGET', run, 'state')}
`)

// bulkHash has the helpers of the scripts that read or write many fields
// of one key: one HMGET per 500 fields, one HSET or SADD per 1000
// arguments, instead of a call per field. Redis writes every call of a
// script to the AOF as a command of its own, key included: a claim and a
// record of a recipient wrote 243 B of AOF one call per field, 156 B in
// bulk (groups of 5). The slices keep unpack within Lua's stack.
const bulkHash = `
local function hmget_all(key, fields)
  local out = {}
  for i = 1, #fields, 500 do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + 499, #fields)))
    for _, v in ipairs(part) do out[#out + 1] = v end
  end
  return out
end
local function call_all(cmd, key, args)
  for i = 1, #args, 1000 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args)))
  end
end
`

// finishRun marks the run finished when planning is done and every chunk
// is done (shared by planFinishScript and chunkDoneScript).
const finishRun = `
local function finish_if_done(run, now)
  local f = redis.call('HMGET', run, 'planned', 'chunks', 'chunks_done', 'state')
  if f[1] == '1' and tonumber(f[3]) >= tonumber(f[2]) and (f[4] == 'running' or f[4] == 'paused') then
    redis.call('HSET', run, 'state', 'finished', 'finished', now)
    return 'finished'
  end
  return f[4]
end
`

// planFinishScript closes the partly filled last chunk and marks planning
// done; a run whose chunks are all done already (or that has none) is
// finished at once.
//
// KEYS[1] run hash
// ARGV[1] now (unix ms)
// Returns {number of chunks, run state}.
var planFinishScript = redis.NewScript(finishRun + `
local run = KEYS[1]
if redis.call('EXISTS', run) == 0 then return redis.error_reply('NORUN run does not exist') end
if redis.call('HGET', run, 'planned') ~= '1' then
  local cur = tonumber(redis.call('HGET', run, 'plan_chunk'))
  if tonumber(redis.call('HGET', run, 'plan_fill')) > 0 then cur = cur + 1 end
  redis.call('HSET', run, 'plan_chunk', cur, 'plan_fill', 0, 'chunks', cur, 'planned', 1)
end
local state = finish_if_done(run, ARGV[1])
return {tonumber(redis.call('HGET', run, 'chunks')), state}
`)

// chunkDoneScript records chunk ARGV[1] as done (once), releases its slot
// and finishes the run when it was the last one. While the run goes on it
// names the chunks that could take the freed slot, in order: from the
// run's 'wake_from' cursor, the first planned chunks that are neither done
// nor held by a worker (at most ARGV[4] of them; done chunks are stepped
// over, at most 64 others looked at). The cursor stays on the first chunk
// named: one that could not be woken now (it was starting, or being
// refused a slot that very moment) is named again by the next chunk that
// ends, instead of waiting out its hold while a slot is free.
//
// KEYS[1] run hash, KEYS[2] done bitmap, KEYS[3] slots zset, KEYS[4] owners hash
// ARGV[1] chunk number, ARGV[2] now (unix ms), ARGV[3] slot lease token,
// ARGV[4] how many chunks to name at most
// Returns {run state afterwards, chunk, chunk, ...}.
var chunkDoneScript = redis.NewScript(finishRun + `
local run = KEYS[1]
if redis.call('EXISTS', run) == 0 then return redis.error_reply('NORUN run does not exist') end
if redis.call('SETBIT', KEYS[2], ARGV[1], 1) == 0 then
  redis.call('HINCRBY', run, 'chunks_done', 1)
end
if redis.call('HGET', KEYS[4], ARGV[1]) == ARGV[3] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
end
local state = finish_if_done(run, ARGV[2])
local out = {state}
if state == 'running' then
  local n = tonumber(redis.call('HGET', run, 'wake_from') or '0')
  local planned = tonumber(redis.call('HGET', run, 'chunks') or '0')
  local want = tonumber(ARGV[4])
  local looked, steps, first = 0, 0, nil
  while n < planned and #out <= want and looked < 64 and steps < 1024 do
    steps = steps + 1
    if redis.call('GETBIT', KEYS[2], n) == 0 then
      looked = looked + 1
      if redis.call('HEXISTS', KEYS[4], n) == 0 then
        out[#out + 1] = n
        first = first or n
      end
    end
    n = n + 1
  end
  redis.call('HSET', run, 'wake_from', first or n)
end
return out
`)

// transitionScript moves ledger entries between states and keeps the
// run's counters in step: one recipient (an outcome), or a batch (a chunk
// claiming the recipients it is about to send to or giving them back, the
// messages of several chunks recorded sent together). With ARGV[6] set,
// the run must be in that state (the check before a send: a paused or
// cancelled run sends nothing).
//
// KEYS[1] run hash, KEYS[2] ledger, KEYS[3] noevent set, KEYS[4] sent-this-minute counter
// ARGV[1] states an entry may be in, comma-separated ("pending,sending");
// "state:code" admits an entry in that state whose detail starts with
// code ("failed:in_doubt")
// ARGV[2] new state
// ARGV[3] now (unix ms)
// ARGV[4] max error ratio (0: never pause), ARGV[5] minimum attempts before it applies
// ARGV[6] required run state ("" for none)
// ARGV[7..] per recipient: id, detail (message id, "code|text", reason),
// "1" when it still needs its timeline event (added to noevent)
// Returns {-1, run state} when the run was not in the required state;
// otherwise {paused (0/1), run state after the call, r1, r2, ...} where ri
// is "+" and the old state when recipient i moved, "-" and its current
// state ("missing" without an entry) when it was in no allowed state. The
// run state lets a chunk that records a message learn that an operator
// paused or cancelled the run meanwhile.
var transitionScript = redis.NewScript(bulkHash + `
local run = KEYS[1]
local state = redis.call('HGET', run, 'state')
if not state then return redis.error_reply('NORUN run does not exist') end
if ARGV[6] ~= '' and state ~= ARGV[6] then return {-1, state} end
local allowed, allowedDetail = {}, {}
for st in string.gmatch(ARGV[1], '[^,]+') do
  local only, prefix = string.match(st, '^([^:]+):(.+)$')
  if only then allowedDetail[only] = prefix .. '|' else allowed[st] = true end
end
-- an entry may leave its state when the state is allowed, or when
-- "state:code" is and the entry's detail starts with that code
local function may_leave(e, old)
  if allowed[old] then return true end
  local prefix = allowedDetail[old]
  if not prefix then return false end
  local detail = string.match(e, '^[^|]*|[^|]*|(.*)$')
  return detail ~= nil and string.sub(detail, 1, #prefix) == prefix
end
local to = ARGV[2]
local prefix = to .. '|' .. ARGV[3] .. '|'
local out = {0, state}
local moved = 0
local left = {} -- old state -> entries that left it for another
local ids = {}
for i = 7, #ARGV, 3 do ids[#ids + 1] = ARGV[i] end
local cur = hmget_all(KEYS[2], ids)
local written = {} -- id -> entry written by this call (an id named twice)
local set, events = {}, {}
for k, id in ipairs(ids) do
  local i = 7 + (k - 1) * 3
  local e = written[id] or cur[k]
  local old = 'missing'
  if e then old = string.sub(e, 1, (string.find(e, '|', 1, true) or 0) - 1) end
  if e and may_leave(e, old) then
    local v = prefix .. ARGV[i + 1]
    written[id] = v
    set[#set + 1] = id
    set[#set + 1] = v
    if old ~= to then left[old] = (left[old] or 0) + 1 end
    if ARGV[i + 2] == '1' then events[#events + 1] = id end
    moved = moved + 1
    out[#out + 1] = '+' .. old
  else
    out[#out + 1] = '-' .. old
  end
end
call_all('HSET', KEYS[2], set)
call_all('SADD', KEYS[3], events)
local arrived = 0
for old, n in pairs(left) do
  redis.call('HINCRBY', run, old, -n)
  arrived = arrived + n
end
if arrived > 0 then redis.call('HINCRBY', run, to, arrived) end
if to == 'sent' and moved > 0 then
  redis.call('INCRBY', KEYS[4], moved)
  redis.call('EXPIRE', KEYS[4], 180)
end
local ratio = tonumber(ARGV[4])
if to == 'failed' and moved > 0 and ratio > 0 and state == 'running' then
  local c = redis.call('HMGET', run, 'sent', 'delivered', 'undelivered', 'failed')
  local failed = tonumber(c[4])
  local attempts = tonumber(c[1]) + tonumber(c[2]) + tonumber(c[3]) + failed
  if attempts >= tonumber(ARGV[5]) and failed / attempts > ratio then
    redis.call('HSET', run, 'state', 'paused', 'reason',
      string.format('error ratio %d/%d above max_error_ratio %s', failed, attempts, ARGV[4]))
    out[1] = 1
    out[2] = 'paused'
  end
end
return out
`)

// setStateScript changes a run's state when it is in one of the allowed
// states (pause, resume, cancel).
//
// KEYS[1] run hash
// ARGV[1] allowed current states, comma-separated
// ARGV[2] new state, ARGV[3] reason, ARGV[4] now (unix ms)
// Returns {1, old state} when changed, {0, current state} when not allowed.
var setStateScript = redis.NewScript(`
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return redis.error_reply('NORUN run does not exist') end
if not string.find(',' .. ARGV[1] .. ',', ',' .. state .. ',', 1, true) then return {0, state} end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'reason', ARGV[3])
if ARGV[2] == 'cancelled' then redis.call('HSET', KEYS[1], 'finished', ARGV[4]) end
return {1, state}
`)

// acquireSlotScript takes or renews the lease of chunk ARGV[1] on one of
// the run's in-flight slots. Expired leases (crashed workers) are dropped
// first. A chunk held by another worker, or a full run, is refused.
//
// KEYS[1] slots zset (chunk -> lease expiry), KEYS[2] owners hash (chunk -> token)
// ARGV[1] chunk number, ARGV[2] lease token, ARGV[3] now (unix ms),
// ARGV[4] lease length (ms), ARGV[5] slots per run
// Returns {1} when held; {0, "chunk"|"run", earliest expiry (unix ms)} when refused.
var acquireSlotScript = redis.NewScript(`
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
for _, n in ipairs(expired) do
  redis.call('ZREM', KEYS[1], n)
  redis.call('HDEL', KEYS[2], n)
end
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner and owner ~= ARGV[2] then
  return {0, 'chunk', redis.call('ZSCORE', KEYS[1], ARGV[1])}
end
if not owner and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, 'run', first[2]}
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {1}
`)

// releaseSlotScript gives up chunk ARGV[1]'s lease if ARGV[2] still holds it.
//
// KEYS[1] slots zset, KEYS[2] owners hash
// ARGV[1] chunk number, ARGV[2] lease token
// Returns 1 when released.
var releaseSlotScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)
