"""The Lua scripts of ``alarm_store_redis.RedisAlarmStore``, one per operation that touches
more than one key (so each is atomic), all prefixed with ``PRELUDE``.

Every script gets ARGV[1] = the key base (``<prefix>{alarms}:``, one hash tag) and ARGV[2] =
how many change-log entries to keep; its own arguments start at ARGV[3]. KEYS[1] is the base's
``id`` key, for Redis Cluster to route the script to the slot of the hash tag. Scripts that
return alarms return one JSON array of their stored rows ``[id, chat, state, seq, fired_at,
rearm_at, expires_at, data]``.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "ADD",
    "CHANGES",
    "CHAT",
    "DELETE",
    "EXPIRE",
    "GET",
    "IMPORT",
    "MARK",
    "PAGE",
    "PAUSE",
    "PRELUDE",
    "PURGE",
    "RESUME",
    "SET_STATE",
)

# Shared by every script. ARGV[1] is the key base, ARGV[2] how many change-log entries to keep.
# An alarm is one JSON array in hash `a`: [id,chat,"state",seq,fired,rearm,expires,data]
# (fired and rearm null when unset, data its immutable part), the very row a read returns;
# load() reads its fields into a table (`tail` is `data]`), save() writes them back.
PRELUDE: Final = """
local B = ARGV[1]
local KEEP = tonumber(ARGV[2])
local A, K, BLOCKED = B .. 'a', B .. 'k', B .. 'b'
local function load(id)
  local row = redis.call('HGET', A, id)
  if not row then return nil end
  local c, s, q, f, r, e, tail = string.match(row,
    '^%[[^,]+,([^,]+),"(%a+)",([^,]+),([^,]+),([^,]+),([^,]+),(.*)$')
  return {c = c, s = s, q = q, f = f, r = r, e = e, tail = tail}
end
local function save(id, a)
  redis.call('HSET', A, id, '[' .. id .. ',' .. a.c .. ',"' .. a.s .. '",' .. a.q .. ',' ..
    a.f .. ',' .. a.r .. ',' .. a.e .. ',' .. a.tail)
end
local function live_of(a) return a.s == 'armed' or (a.s == 'fired' and a.r ~= 'null') end
-- Take the alarm out of (add = false) or put it into (add = true) the indexes its fields
-- place it in: a change is index(id, a, false), the change, save(id, a), index(id, a, true).
local function index(id, a, add)
  local held = B .. 'cond:' .. a.c
  if not add then
    redis.call('ZREM', B .. 'live', id)
    redis.call('ZREM', B .. 'open', id)
    redis.call('ZREM', B .. 'o:' .. a.c, id)
    local cond = redis.call('HGET', K, id)
    if cond and redis.call('HGET', held, cond) == tostring(id) then
      redis.call('HDEL', held, cond)
      for _, other in ipairs(redis.call('ZRANGE', B .. 'o:' .. a.c, 0, -1)) do
        if redis.call('HGET', K, other) == cond then
          redis.call('HSET', held, cond, other)
          break
        end
      end
    end
    return
  end
  local live = live_of(a)
  if live then redis.call('ZADD', B .. 'live', id, id) end
  if live or a.s == 'paused' then
    redis.call('ZADD', B .. 'open', a.e, id)
    redis.call('ZADD', B .. 'o:' .. a.c, id, id)
    redis.call('HSETNX', held, redis.call('HGET', K, id), id)
  end
end
local function forget(id, a)
  index(id, a, false)
  redis.call('HDEL', A, id)
  redis.call('HDEL', K, id)
  redis.call('HDEL', BLOCKED, id)
  redis.call('ZREM', B .. 'chat:' .. a.c, id)
end
local function changed(id)
  local n = redis.call('INCR', B .. 'chgn')
  redis.call('ZADD', B .. 'chg', n, n .. ':' .. id)
  if n % 256 == 0 then redis.call('ZREMRANGEBYRANK', B .. 'chg', 0, -(KEEP + 1)) end
end
-- The alarms as one JSON array of their rows, read a thousand at a time (unpack's limit).
local function rows(ids)
  local out = {}
  for i = 1, #ids, 1000 do
    local part = redis.call('HMGET', A, unpack(ids, i, math.min(i + 999, #ids)))
    for j = 1, #part do
      if part[j] then out[#out + 1] = part[j] end
    end
  end
  return '[' .. table.concat(out, ',') .. ']'
end
local function rearm_of(r) if r == '' then return 'null' end return r end
"""

# ARGV[3..]: chat, condition digest, per-chat limit, global limit, data, expires_at.
# Returns {id}, or {-1, existing id}, {-2, chat count}, {-3, global count}.
ADD: Final = """
local chat, cond = ARGV[3], ARGV[4]
local existing = redis.call('HGET', B .. 'cond:' .. chat, cond)
if existing then return {-1, tonumber(existing)} end
local count = redis.call('ZCARD', B .. 'o:' .. chat)
if count >= tonumber(ARGV[5]) then return {-2, count} end
local total = redis.call('ZCARD', B .. 'open')
if total >= tonumber(ARGV[6]) then return {-3, total} end
local id = redis.call('INCR', B .. 'id')
local a = {c = chat, s = 'armed', q = '0', f = 'null', r = 'null', e = ARGV[8],
  tail = ARGV[7] .. ']'}
save(id, a)
redis.call('HSET', K, id, cond)
redis.call('ZADD', B .. 'chat:' .. chat, id, id)
index(id, a, true)
changed(id)
return {id}
"""

# ARGV[3]: n, then per alarm: id, chat, condition digest, its row.
# Returns {n}, or {-1, id} (storing nothing) when an id is already stored.
IMPORT: Final = """
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local id = ARGV[4 + i * 4]
  if redis.call('HEXISTS', A, id) == 1 then return {-1, id} end
end
local top = tonumber(redis.call('GET', B .. 'id') or '0')
for i = 0, n - 1 do
  local b = 4 + i * 4
  local id = ARGV[b]
  redis.call('HSET', A, id, ARGV[b + 3])
  redis.call('HSET', K, id, ARGV[b + 2])
  redis.call('ZADD', B .. 'chat:' .. ARGV[b + 1], id, id)
  index(id, load(id), true)
  changed(id)
  if tonumber(id) > top then top = tonumber(id) end
end
redis.call('SET', B .. 'id', string.format('%d', top))
return {n}
"""

GET: Final = "return rows({ARGV[3]})"

# ARGV[3..]: chat, start, stop (ranks in the chat's alarms, by id).
CHAT: Final = "return rows(redis.call('ZRANGE', B .. 'chat:' .. ARGV[3], ARGV[4], ARGV[5]))"

DELETE: Final = """
local id = ARGV[3]
local a = load(id)
if not a then return 0 end
forget(id, a)
changed(id)
return 1
"""

PURGE: Final = """
local chat = ARGV[3]
local ids = redis.call('ZRANGE', B .. 'chat:' .. chat, 0, -1)
for _, id in ipairs(ids) do
  local a = load(id)
  if a then forget(id, a) end
  changed(id)
end
redis.call('DEL', B .. 'chat:' .. chat, B .. 'o:' .. chat, B .. 'cond:' .. chat)
return #ids
"""

# ARGV[3..]: id, state, rearm_at ('' clears it), expires_at ('' keeps it).
SET_STATE: Final = """
local id = ARGV[3]
local a = load(id)
if not a then return false end
index(id, a, false)
a.s, a.r = ARGV[4], rearm_of(ARGV[5])
if ARGV[6] ~= '' then a.e = ARGV[6] end
redis.call('HDEL', BLOCKED, id)
save(id, a)
index(id, a, true)
changed(id)
return rows({id})
"""

PAUSE: Final = """
local n = 0
for _, id in ipairs(redis.call('ZRANGE', B .. 'o:' .. ARGV[3], 0, -1)) do
  local a = load(id)
  if live_of(a) then
    index(id, a, false)
    redis.call('HSET', BLOCKED, id, a.s)
    a.s = 'paused'
    save(id, a)
    index(id, a, true)
    changed(id)
    n = n + 1
  end
end
return n
"""

RESUME: Final = """
local n = 0
for _, id in ipairs(redis.call('ZRANGE', B .. 'o:' .. ARGV[3], 0, -1)) do
  local a = load(id)
  local was = redis.call('HGET', BLOCKED, id)
  if a.s == 'paused' and was then
    index(id, a, false)
    a.s = was
    redis.call('HDEL', BLOCKED, id)
    save(id, a)
    index(id, a, true)
    changed(id)
    n = n + 1
  end
end
return n
"""

# ARGV[3..]: id, expected seq, new seq, state, fired_at, rearm_at ('' none), firing, history.
MARK: Final = """
local id = ARGV[3]
local a = load(id)
if not a or tonumber(a.q) ~= tonumber(ARGV[4]) then return 0 end
index(id, a, false)
a.q, a.s, a.f, a.r = ARGV[5], ARGV[6], ARGV[7], rearm_of(ARGV[8])
redis.call('HDEL', BLOCKED, id)
save(id, a)
index(id, a, true)
redis.call('LPUSH', B .. 'h:' .. a.c, ARGV[9])
redis.call('LTRIM', B .. 'h:' .. a.c, 0, tonumber(ARGV[10]) - 1)
changed(id)
return 1
"""

# ARGV[3..]: now, limit.
EXPIRE: Final = """
local ids = redis.call('ZRANGEBYSCORE', B .. 'open', '-inf', ARGV[3], 'LIMIT', 0, ARGV[4])
for _, id in ipairs(ids) do
  local a = load(id)
  index(id, a, false)
  a.s = 'expired'
  redis.call('HDEL', BLOCKED, id)
  save(id, a)
  changed(id)
end
return rows(ids)
"""

# ARGV[3..]: the last id read, page size. Returns {the page's last id, its length, rows}: the
# caller asks for the next page while it decodes this one.
PAGE: Final = """
local ids = redis.call('ZRANGEBYSCORE', B .. 'live', '(' .. ARGV[3], '+inf', 'LIMIT', 0, ARGV[4])
return {tonumber(ids[#ids] or '0'), #ids, rows(ids)}
"""

# ARGV[3..]: cursor, limit. Returns {head, oldest kept n (0: none), entries}.
CHANGES: Final = """
local head = tonumber(redis.call('GET', B .. 'chgn') or '0')
local first = redis.call('ZRANGE', B .. 'chg', 0, 0, 'WITHSCORES')
local oldest = 0
if first[2] then oldest = tonumber(first[2]) end
return {head, oldest,
  redis.call('ZRANGEBYSCORE', B .. 'chg', '(' .. ARGV[3], '+inf', 'LIMIT', 0, ARGV[4])}
"""
