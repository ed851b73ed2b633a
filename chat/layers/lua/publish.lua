-- Number a room's message, keep it in the room's window and publish it, in
-- one atomic step, so that every process hears the room's messages in
-- offset order (Redis delivers a channel's messages in publish order).
-- ARGV: window key, stream key, Redis channel, the event as JSON without its
-- text (an object with keys), the message frame's JSON text (ending with '}'),
-- messages to keep (0: none), window ms, an epoch for a new run of offsets,
-- window key ttl ms -> the message's offset. The event published carries the
-- run's epoch, so that a member who stayed while the window was lost (its
-- key expired or was flushed) takes the new run's offsets, which start at 1.
local meta, stream = ARGV[1], ARGV[2]
local epoch = ARGV[8]
if redis.call('HSETNX', meta, 'epoch', epoch) == 1 then
  -- A new run of offsets: what an older run left in the stream is not of it.
  redis.call('DEL', stream)
else
  epoch = redis.call('HGET', meta, 'epoch')
end
local top = redis.call('HINCRBY', meta, 'top', 1)
redis.call('PEXPIRE', meta, ARGV[9])
local offset = string.format('%d', top)
local text = string.sub(ARGV[5], 1, -2) .. ',"offset":' .. offset .. '}'
if tonumber(ARGV[6]) > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XADD', stream, 'MAXLEN', ARGV[6], offset .. '-0', 't', string.format('%d', now),
             'd', text)
  redis.call('PEXPIRE', stream, ARGV[7])
end
local head = string.sub(ARGV[4], 1, -2) .. ',"epoch":"' .. epoch .. '"}'
redis.call('PUBLISH', ARGV[3], '#' .. offset .. ' ' .. head .. '\n' .. text)
return top
