-- Claim a name. ARGV: prefix, room, name key, skeleton key, name as JSON,
-- member, ttl ms, coalesce above, pending ms, client address, limit, the
-- member to take the name over from ('' for none), the epoch and size of
-- the process's copy of the names ('' and 0 for none) -> the count, the
-- names (as listing()), whether the join was noted for the room's next diff,
-- the join's serial (for a take-over, which is no join, the latest one), and
-- for a take-over the member replaced; nil if a member's name has
-- that name key or that skeleton key; 'full' if the room holds `limit`
-- members already (0: none).
local room, key, skeleton, name, member = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local hkey, skey = p .. 'room:' .. room, p .. 'skeletons:' .. room
local takeover = ARGV[12]
if takeover ~= '' then
  local held = redis.call('HGET', hkey, key)
  if held then
    local owner, json = holder(held)
    if owner == takeover and json == name then
      -- The same member, back on a new connection: its entry, place and
      -- join time stay; only who holds it (and so refreshes it) changes.
      redis.call('HSET', hkey, key, member .. '\t' .. name .. '\t' .. skeleton)
      local deadlines = p .. 'deadlines'
      redis.call('ZREM', deadlines, room .. '\t' .. key .. '\t' .. owner)
      redis.call('ZADD', deadlines, now_ms() + tonumber(ARGV[7]),
                 room .. '\t' .. key .. '\t' .. member)
      local jkey = p .. 'joined:' .. room
      local joined = redis.call('HGET', jkey, key) or string.format('%d', now_ms())
      local tab = string.find(joined, '\t', 1, true)
      if tab then joined = string.sub(joined, 1, tab - 1) end
      redis.call('HSET', jkey, key, joined .. '\t' .. ARGV[10])
      local count = tonumber(redis.call('HGET', p .. 'counts', room) or '0')
      local serial = tonumber(redis.call('GET', p .. 'serial') or '0')
      return {count, listing(room, ARGV[13], ARGV[14], count, ARGV[8]), 0, serial, owner}
    end
  end
end
if redis.call('HEXISTS', skey, skeleton) == 1 then return nil end
-- HSETNX checks the name key and claims it at once.
if redis.call('HSETNX', hkey, key, member .. '\t' .. name .. '\t' .. skeleton) == 0 then
  return nil
end
local limit = tonumber(ARGV[11])
if limit > 0 and redis.call('HLEN', hkey) > limit then
  redis.call('HDEL', hkey, key)
  return 'full'
end
redis.call('HSET', skey, skeleton, key)
local now = now_ms()
redis.call('HSET', p .. 'joined:' .. room, key, string.format('%d', now) .. '\t' .. ARGV[10])
-- The first name of a room creates the key: it then starts with a newline too.
local line = name .. '\n'
local nkey = p .. 'names:' .. room
if redis.call('APPEND', nkey, line) == #line then redis.call('SET', nkey, '\n' .. line) end
redis.call('ZADD', p .. 'deadlines', now + tonumber(ARGV[7]),
           room .. '\t' .. key .. '\t' .. member)
local count = redis.call('HINCRBY', p .. 'counts', room, 1)
return {count, listing(room, ARGV[13], ARGV[14], count, ARGV[8]),
        note(room, '+', name, count, ARGV[8], ARGV[9]), next_serial()}
