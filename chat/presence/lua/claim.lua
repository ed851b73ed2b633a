-- Claim a name. ARGV: prefix, room, name key, name as JSON, member, ttl ms,
-- coalesce above, pending ms -> the count, the names (as members()) and
-- whether the join was noted for the room's next diff; or nil if taken.
local room, key, name, member = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local hkey = p .. 'room:' .. room
if redis.call('HEXISTS', hkey, key) == 1 then return nil end
redis.call('HSET', hkey, key, member .. '\t' .. name)
local nkey = p .. 'names:' .. room
if redis.call('EXISTS', nkey) == 0 then redis.call('SET', nkey, '\n') end
redis.call('APPEND', nkey, name .. '\n')
redis.call('ZADD', p .. 'deadlines', now_ms() + tonumber(ARGV[6]),
           room .. '\t' .. key .. '\t' .. member)
local count = redis.call('HINCRBY', p .. 'counts', room, 1)
return {count, members(room), note(room, '+', name, count, ARGV[7], ARGV[8])}
