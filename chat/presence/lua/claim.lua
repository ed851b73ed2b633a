-- Claim a name. ARGV: prefix, room, name key, skeleton key, name as JSON,
-- member, ttl ms, coalesce above, pending ms -> the count, the names (as
-- members()) and whether the join was noted for the room's next diff; or nil
-- if a member's name has that name key or that skeleton key.
local room, key, skeleton, name, member = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local hkey, skey = p .. 'room:' .. room, p .. 'skeletons:' .. room
if redis.call('HEXISTS', hkey, key) == 1 then return nil end
if redis.call('HEXISTS', skey, skeleton) == 1 then return nil end
redis.call('HSET', hkey, key, member .. '\t' .. name .. '\t' .. skeleton)
redis.call('HSET', skey, skeleton, key)
local nkey = p .. 'names:' .. room
if redis.call('EXISTS', nkey) == 0 then redis.call('SET', nkey, '\n') end
redis.call('APPEND', nkey, name .. '\n')
redis.call('ZADD', p .. 'deadlines', now_ms() + tonumber(ARGV[7]),
           room .. '\t' .. key .. '\t' .. member)
local count = redis.call('HINCRBY', p .. 'counts', room, 1)
return {count, members(room), note(room, '+', name, count, ARGV[8], ARGV[9])}
