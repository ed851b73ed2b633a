-- Take a room's pending diff. ARGV: prefix, room, interval ms
-- -> {} when nothing is pending; {ms} while the last diff is younger than the
-- interval (try again in ms); {count, entries} to send, the list emptied.
-- Run on its own, without lib.lua.
local p, room = ARGV[1], ARGV[2]
local pending, sent = p .. 'diff:' .. room, p .. 'diff-sent:' .. room
if redis.call('EXISTS', pending) == 0 then return {} end
local wait = redis.call('PTTL', sent)
if wait > 0 then return {wait} end
redis.call('SET', sent, '1', 'PX', ARGV[3])
local entries = redis.call('LRANGE', pending, 0, -1)
redis.call('DEL', pending)
return {tonumber(redis.call('HGET', p .. 'counts', room) or '0'), entries}
