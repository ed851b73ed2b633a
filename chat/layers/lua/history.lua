-- A room's epoch and latest offset, and its messages after an offset.
-- ARGV: window key, stream key, after (-1: the position only), window ms,
-- an epoch for a new run of offsets, window key ttl ms
-- -> {epoch, top} for the position; {epoch, top, 1, text...} with every
-- message after `after`; {epoch, top, 0} when some have left the window.
local meta, stream = ARGV[1], ARGV[2]
if redis.call('HSETNX', meta, 'epoch', ARGV[5]) == 1 then
  redis.call('HSET', meta, 'top', 0)
  redis.call('DEL', stream)
end
redis.call('PEXPIRE', meta, ARGV[6])
local epoch = redis.call('HGET', meta, 'epoch')
local top = tonumber(redis.call('HGET', meta, 'top'))
local after = tonumber(ARGV[3])
if after < 0 then return {epoch, top} end
if after >= top then return {epoch, top, after == top and 1 or 0} end
local entries = redis.call('XRANGE', stream, string.format('%d', after + 1), '+')
if #entries ~= top - after then return {epoch, top, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The oldest is the first: if it is young enough, so are the others.
if tonumber(entries[1][2][2]) < now - tonumber(ARGV[4]) then return {epoch, top, 0} end
local reply = {epoch, top, 1}
for i = 1, #entries do reply[i + 3] = entries[i][2][4] end
return reply
