-- Push a process's deadlines forward. ARGV: prefix, ttl ms, entry...
-- -> the entries that are gone (swept or freed).
local deadline = now_ms() + tonumber(ARGV[2])
local gone = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', p .. 'deadlines', ARGV[i]) then
    redis.call('ZADD', p .. 'deadlines', deadline, ARGV[i])
  else
    gone[#gone + 1] = ARGV[i]
  end
end
return gone
