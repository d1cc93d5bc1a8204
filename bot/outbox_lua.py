"""The Lua scripts of ``bot.outbox_redis.RedisOutbox``, one per operation that touches more
than one key, so each is atomic.

Every key a script touches is under the outbox's key space (``<prefix>{outbox}:``, one hash
tag, so one cluster slot) and every key whose name is known before the call is in ``KEYS``:
the fixed keys, and the ``job:<id>`` and ``chat:<chat_id>`` keys of the ids and chats the
caller names. Some keys can only be named from stored data: a job's ``chat:<chat_id>`` read
from its hash (``ACK``, ``DEAD``, ``SWEEP``), the ``job:<id>`` of each id read from a sorted
set (``SWEEP``, ``PARK``, ``READ``). Those scripts get the key space itself as ``KEYS[1]``
(no key of that name is ever written) and name such keys by appending to it, so they too sit
under the one hash tag, in the slot the script runs on.
"""

from __future__ import annotations

from typing import Final

__all__ = ("ACK", "DEAD", "LEAD", "MARK", "PARK", "PUT", "READ", "RELEASE", "RETRY", "SWEEP")

# KEYS: seq, pending, parked, chats, delivered, then per job: job:<id>, chat:<chat_id>.
# ARGV: delivered cutoff, capacity, n, then per job: id, chat_id, text, attempts, not_before,
# created_at, policy, markup. Returns a seq per job (0: a duplicate), or {-1, depth}.
PUT: Final = """
local SEQ, PENDING, PARKED, CHATS, DELIVERED = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cutoff = tonumber(ARGV[1]); local cap = tonumber(ARGV[2]); local n = tonumber(ARGV[3])
local fresh, seen, count = {}, {}, 0
for i = 1, n do
  local id = ARGV[4 + (i - 1) * 8]
  local dup = seen[id] or redis.call('EXISTS', KEYS[4 + i * 2]) == 1
  if not dup then
    local at = redis.call('ZSCORE', DELIVERED, id)
    dup = at ~= false and tonumber(at) > cutoff
  end
  seen[id] = true; fresh[i] = not dup
  if not dup then count = count + 1 end
end
local depth = redis.call('ZCARD', PENDING) + redis.call('ZCARD', PARKED)
if count > 0 and depth + count > cap then return {-1, depth} end
local out = {}
for i = 1, n do
  out[i] = 0
  if fresh[i] then
    local b = 4 + (i - 1) * 8
    local id = ARGV[b]; local chat = ARGV[b + 1]
    local seq = redis.call('INCR', SEQ)
    local state, set = 'pending', PENDING
    if redis.call('HEXISTS', CHATS, chat) == 1 then state, set = 'parked', PARKED end
    redis.call('HSET', KEYS[4 + i * 2], 'chat_id', chat, 'text', ARGV[b + 2], 'seq', seq,
      'attempts', ARGV[b + 3], 'not_before', ARGV[b + 4], 'created_at', ARGV[b + 5],
      'policy', ARGV[b + 6], 'markup', ARGV[b + 7], 'state', state, 'sending', 0)
    redis.call('ZADD', set, seq, id)
    redis.call('ZADD', KEYS[5 + i * 2], seq, id)
    redis.call('ZREM', DELIVERED, id)
    out[i] = seq
  end
end
return out
"""

# KEYS: space, job:<id>, pending, parked, dead, sending, delivered.
# ARGV: id, now, delivered cutoff. Returns 1 if the job was stored, else 0.
ACK: Final = """
local id = ARGV[1]
local chat = redis.call('HGET', KEYS[2], 'chat_id')
if not chat then return 0 end
redis.call('DEL', KEYS[2])
for i = 3, 6 do redis.call('ZREM', KEYS[i], id) end
redis.call('ZREM', KEYS[1] .. 'chat:' .. chat, id)
redis.call('ZADD', KEYS[7], ARGV[2], id)
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', ARGV[3])
return 1
"""

# KEYS: job:<id>, sending. ARGV: id, attempts, not_before. Also clears the "sending" mark.
RETRY: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'attempts', ARGV[2], 'not_before', ARGV[3], 'sending', 0)
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 0
"""

# KEYS: job:<id>, sending. ARGV: id. Marks a pending job "sending"; 1 if it was pending.
MARK: Final = """
local job = redis.call('HMGET', KEYS[1], 'seq', 'state')
if job[2] ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'sending', 1)
redis.call('ZADD', KEYS[2], job[1], ARGV[1])
return 1
"""

# KEYS: space, sending, pending, parked, dead. ARGV: reason, then the ids to keep.
# Dead-letters every other job marked "sending"; returns them as READ does, by seq.
SWEEP: Final = """
local B = KEYS[1]; local SENDING, DEAD = KEYS[2], KEYS[5]
local sets = {pending = KEYS[3], parked = KEYS[4], dead = DEAD}
local keep = {}; local out = {}
for i = 2, #ARGV do keep[ARGV[i]] = true end
for _, id in ipairs(redis.call('ZRANGE', SENDING, 0, -1)) do
  if not keep[id] then
    local k = B .. 'job:' .. id
    local job = redis.call('HMGET', k, 'chat_id', 'text', 'seq', 'attempts', 'not_before',
      'created_at', 'reason', 'state', 'policy', 'markup')
    redis.call('ZREM', SENDING, id)
    if job[1] then
      redis.call('ZREM', sets[job[8]], id)
      redis.call('ZREM', B .. 'chat:' .. job[1], id)
      redis.call('ZADD', DEAD, job[3], id)
      redis.call('HSET', k, 'state', 'dead', 'reason', ARGV[1], 'sending', 0)
      out[#out + 1] = {id, job[1], job[2], job[3], job[4], job[5], job[6], ARGV[1], job[9],
        job[10]}
    end
  end
end
return out
"""

# Park (to = parked, state = the ChatState) or reactivate (to = pending, state = '') a chat.
# KEYS: space, chats, chat:<chat_id>, pending, parked. ARGV: chat_id, to, state.
# Returns how many jobs moved.
PARK: Final = """
local B = KEYS[1]; local chat = ARGV[1]; local to = ARGV[2]
local from_set, to_set = KEYS[4], KEYS[5]
if to == 'parked' then
  redis.call('HSET', KEYS[2], chat, ARGV[3])
else
  from_set, to_set = KEYS[5], KEYS[4]
  redis.call('HDEL', KEYS[2], chat)
end
local moved = 0
local ids = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
for i = 1, #ids, 2 do
  if redis.call('ZREM', from_set, ids[i]) == 1 then
    redis.call('ZADD', to_set, ids[i + 1], ids[i])
    redis.call('HSET', B .. 'job:' .. ids[i], 'state', to)
    moved = moved + 1
  end
end
return moved
"""

# KEYS: space, job:<id>, pending, parked, dead, sending. ARGV: id, reason.
# Moves a pending or parked job to the dead letters.
DEAD: Final = """
local id = ARGV[1]; local k = KEYS[2]
local job = redis.call('HMGET', k, 'chat_id', 'seq', 'state')
if not job[1] or job[3] == 'dead' then return 0 end
local sets = {pending = KEYS[3], parked = KEYS[4]}
redis.call('ZREM', sets[job[3]], id)
redis.call('ZREM', KEYS[1] .. 'chat:' .. job[1], id)
redis.call('ZREM', KEYS[6], id)
redis.call('ZADD', KEYS[5], job[2], id)
redis.call('HSET', k, 'state', 'dead', 'reason', ARGV[2], 'sending', 0)
return 1
"""

# KEYS: space, the sorted set to read. ARGV: stop index, required state ('' for any).
# Returns {id, chat_id, text, seq, attempts, not_before, created_at, reason, policy, markup}
# per job, by seq.
READ: Final = """
local B = KEYS[1]; local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]))) do
  local job = redis.call('HMGET', B .. 'job:' .. id, 'chat_id', 'text', 'seq', 'attempts',
    'not_before', 'created_at', 'reason', 'state', 'policy', 'markup')
  if job[1] and (ARGV[2] == '' or job[8] == ARGV[2]) then
    out[#out + 1] = {id, job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[9], job[10]}
  end
end
return out
"""

# KEYS: lead. ARGV: owner, ttl_ms. Take the free lease or renew our own; 1 if we hold it now.
LEAD: Final = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lead. ARGV: owner. Deletes the lease only if owner holds it.
RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
