"""The Lua scripts of ``alarm_store_redis.RedisAlarmStore``, one per operation that touches
more than one key (so each is atomic), all prefixed with ``PRELUDE``.

Every key a script touches is under the store's key space (``<prefix>{alarms}:``: one hash
tag, so one cluster slot), and every key whose name is known before the call is in ``KEYS``:

- ``KEYS[1]``: the key space itself (no key of that name is ever written), ``KEYS[2..9]``: the
  store's fixed keys ``a``, ``k``, ``b``, ``live``, ``open``, ``chgn``, ``chg``, ``id``
  (``FIXED``), the same for every script;
- from ``KEYS[10]``: a chat's four keys ``chat:<chat>``, ``o:<chat>``, ``cond:<chat>``,
  ``h:<chat>`` (``CHAT_KEYS``) when the caller names the chat (add, a chat's page, purge,
  pause, resume); ``IMPORT`` has four per alarm.

Where the chat can only be read from the stored alarm (delete, set_state, mark_fired, expire:
the caller names an alarm id, or none), the script names that chat's keys by appending to
``KEYS[1]``: under the same hash tag, so in the slot the script runs on.

ARGV[1] is how many change-log entries to keep; a script's own arguments start at ARGV[2].
Scripts that return alarms return one JSON array of their stored rows ``[id, chat, state,
seq, fired_at, rearm_at, expires_at, data]``.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "ADD",
    "CHANGES",
    "CHAT",
    "CHAT_KEYS",
    "DELETE",
    "EXPIRE",
    "FIXED",
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

#: The fixed keys, after the key space, as KEYS[2..9] of every script.
FIXED: Final = ("a", "k", "b", "live", "open", "chgn", "chg", "id")
#: A chat's keys, as ``chat_keys`` in the scripts takes them from KEYS.
CHAT_KEYS: Final = ("chat:{}", "o:{}", "cond:{}", "h:{}")

# Shared by every script. An alarm is one JSON array in hash `a`:
# [id,chat,"state",seq,fired,rearm,expires,data] (fired and rearm null when unset, data its
# immutable part), the very row a read returns; load() reads its fields into a table (`tail`
# is `data]`), save() writes them back.
PRELUDE: Final = """
local B = KEYS[1]
local A, K, BLOCKED, LIVE, OPEN = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local CHGN, CHG, ID = KEYS[7], KEYS[8], KEYS[9]
local KEEP = tonumber(ARGV[1])
-- A chat's keys: from KEYS[at..at+3] where the caller named the chat, else named from the
-- stored chat under the key space (the same hash tag).
local function chat_keys(c, at)
  if at then
    return {all = KEYS[at], open = KEYS[at + 1], cond = KEYS[at + 2], h = KEYS[at + 3]}
  end
  return {all = B .. 'chat:' .. c, open = B .. 'o:' .. c, cond = B .. 'cond:' .. c,
    h = B .. 'h:' .. c}
end
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
-- ck: its chat's keys (chat_keys), named from the stored chat when nil.
local function index(id, a, add, ck)
  ck = ck or chat_keys(a.c)
  if not add then
    redis.call('ZREM', LIVE, id)
    redis.call('ZREM', OPEN, id)
    redis.call('ZREM', ck.open, id)
    local cond = redis.call('HGET', K, id)
    if cond and redis.call('HGET', ck.cond, cond) == tostring(id) then
      redis.call('HDEL', ck.cond, cond)
      for _, other in ipairs(redis.call('ZRANGE', ck.open, 0, -1)) do
        if redis.call('HGET', K, other) == cond then
          redis.call('HSET', ck.cond, cond, other)
          break
        end
      end
    end
    return
  end
  local live = live_of(a)
  if live then redis.call('ZADD', LIVE, id, id) end
  if live or a.s == 'paused' then
    redis.call('ZADD', OPEN, a.e, id)
    redis.call('ZADD', ck.open, id, id)
    redis.call('HSETNX', ck.cond, redis.call('HGET', K, id), id)
  end
end
local function forget(id, a, ck)
  ck = ck or chat_keys(a.c)
  index(id, a, false, ck)
  redis.call('HDEL', A, id)
  redis.call('HDEL', K, id)
  redis.call('HDEL', BLOCKED, id)
  redis.call('ZREM', ck.all, id)
end
local function changed(id)
  local n = redis.call('INCR', CHGN)
  redis.call('ZADD', CHG, n, n .. ':' .. id)
  if n % 256 == 0 then redis.call('ZREMRANGEBYRANK', CHG, 0, -(KEEP + 1)) end
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

# KEYS[10..13]: the chat's keys. ARGV[2..]: chat, condition digest, per-chat limit, global
# limit, data, expires_at. Returns {id}, or {-1, existing id}, {-2, chat count},
# {-3, global count}.
ADD: Final = """
local chat, cond = ARGV[2], ARGV[3]
local ck = chat_keys(chat, 10)
local existing = redis.call('HGET', ck.cond, cond)
if existing then return {-1, tonumber(existing)} end
local count = redis.call('ZCARD', ck.open)
if count >= tonumber(ARGV[4]) then return {-2, count} end
local total = redis.call('ZCARD', OPEN)
if total >= tonumber(ARGV[5]) then return {-3, total} end
local id = redis.call('INCR', ID)
local a = {c = chat, s = 'armed', q = '0', f = 'null', r = 'null', e = ARGV[7],
  tail = ARGV[6] .. ']'}
save(id, a)
redis.call('HSET', K, id, cond)
redis.call('ZADD', ck.all, id, id)
index(id, a, true, ck)
changed(id)
return {id}
"""

# KEYS[10 + 4i..13 + 4i]: the keys of alarm i's chat (i from 0). ARGV[2]: n, then per alarm:
# id, condition digest, its row. Returns {n}, or {-1, id} (storing nothing) when an id is
# already stored.
IMPORT: Final = """
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local id = ARGV[3 + i * 3]
  if redis.call('HEXISTS', A, id) == 1 then return {-1, id} end
end
local top = tonumber(redis.call('GET', ID) or '0')
for i = 0, n - 1 do
  local b = 3 + i * 3
  local id = ARGV[b]
  local ck = chat_keys(nil, 10 + i * 4)
  redis.call('HSET', A, id, ARGV[b + 2])
  redis.call('HSET', K, id, ARGV[b + 1])
  redis.call('ZADD', ck.all, id, id)
  index(id, load(id), true, ck)
  changed(id)
  if tonumber(id) > top then top = tonumber(id) end
end
redis.call('SET', ID, string.format('%d', top))
return {n}
"""

GET: Final = "return rows({ARGV[2]})"

# KEYS[10..13]: the chat's keys. ARGV[2..]: start, stop (ranks in the chat's alarms, by id).
CHAT: Final = "return rows(redis.call('ZRANGE', chat_keys(nil, 10).all, ARGV[2], ARGV[3]))"

# ARGV[2]: id.
DELETE: Final = """
local id = ARGV[2]
local a = load(id)
if not a then return 0 end
forget(id, a)
changed(id)
return 1
"""

# KEYS[10..13]: the chat's keys.
PURGE: Final = """
local ck = chat_keys(nil, 10)
local ids = redis.call('ZRANGE', ck.all, 0, -1)
for _, id in ipairs(ids) do
  local a = load(id)
  if a then forget(id, a, ck) end
  changed(id)
end
redis.call('DEL', ck.all, ck.open, ck.cond)
return #ids
"""

# ARGV[2..]: id, state, rearm_at ('' clears it), expires_at ('' keeps it).
SET_STATE: Final = """
local id = ARGV[2]
local a = load(id)
if not a then return false end
index(id, a, false)
a.s, a.r = ARGV[3], rearm_of(ARGV[4])
if ARGV[5] ~= '' then a.e = ARGV[5] end
redis.call('HDEL', BLOCKED, id)
save(id, a)
index(id, a, true)
changed(id)
return rows({id})
"""

# KEYS[10..13]: the chat's keys.
PAUSE: Final = """
local ck = chat_keys(nil, 10)
local n = 0
for _, id in ipairs(redis.call('ZRANGE', ck.open, 0, -1)) do
  local a = load(id)
  if live_of(a) then
    index(id, a, false, ck)
    redis.call('HSET', BLOCKED, id, a.s)
    a.s = 'paused'
    save(id, a)
    index(id, a, true, ck)
    changed(id)
    n = n + 1
  end
end
return n
"""

# KEYS[10..13]: the chat's keys.
RESUME: Final = """
local ck = chat_keys(nil, 10)
local n = 0
for _, id in ipairs(redis.call('ZRANGE', ck.open, 0, -1)) do
  local a = load(id)
  local was = redis.call('HGET', BLOCKED, id)
  if a.s == 'paused' and was then
    index(id, a, false, ck)
    a.s = was
    redis.call('HDEL', BLOCKED, id)
    save(id, a)
    index(id, a, true, ck)
    changed(id)
    n = n + 1
  end
end
return n
"""

# ARGV[2..]: id, expected seq, new seq, state, fired_at, rearm_at ('' none), firing, history.
MARK: Final = """
local id = ARGV[2]
local a = load(id)
if not a or tonumber(a.q) ~= tonumber(ARGV[3]) then return 0 end
local ck = chat_keys(a.c)
index(id, a, false, ck)
a.q, a.s, a.f, a.r = ARGV[4], ARGV[5], ARGV[6], rearm_of(ARGV[7])
redis.call('HDEL', BLOCKED, id)
save(id, a)
index(id, a, true, ck)
redis.call('LPUSH', ck.h, ARGV[8])
redis.call('LTRIM', ck.h, 0, tonumber(ARGV[9]) - 1)
changed(id)
return 1
"""

# ARGV[2..]: now, limit.
EXPIRE: Final = """
local ids = redis.call('ZRANGEBYSCORE', OPEN, '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
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

# ARGV[2..]: the last id read, page size. Returns {the page's last id, its length, rows}: the
# caller asks for the next page while it decodes this one.
PAGE: Final = """
local ids = redis.call('ZRANGEBYSCORE', LIVE, '(' .. ARGV[2], '+inf', 'LIMIT', 0, ARGV[3])
return {tonumber(ids[#ids] or '0'), #ids, rows(ids)}
"""

# ARGV[2..]: cursor, limit. Returns {head, oldest kept n (0: none), entries}.
CHANGES: Final = """
local head = tonumber(redis.call('GET', CHGN) or '0')
local first = redis.call('ZRANGE', CHG, 0, 0, 'WITHSCORES')
local oldest = 0
if first[2] then oldest = tonumber(first[2]) end
return {head, oldest,
  redis.call('ZRANGEBYSCORE', CHG, '(' .. ARGV[2], '+inf', 'LIMIT', 0, ARGV[3])}
"""
