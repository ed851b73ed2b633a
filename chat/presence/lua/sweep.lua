-- Remove expired members. ARGV: prefix, limit, coalesce above, pending ms
-- -> room, name as JSON, member, count, noted, serial for each expired
-- member, flat.
local expired = redis.call('ZRANGEBYSCORE', p .. 'deadlines', '-inf', now_ms(),
                           'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, entry in ipairs(expired) do
  redis.call('ZREM', p .. 'deadlines', entry)
  local room, key, member = string.match(entry, '^([^\t]*)\t([^\t]*)\t(.*)$')
  local name, count, serial = drop(room, key, member)
  if name then
    out[#out + 1] = room
    out[#out + 1] = name
    out[#out + 1] = member
    out[#out + 1] = count
    out[#out + 1] = note(room, '-', name, count, ARGV[3], ARGV[4])
    out[#out + 1] = serial
  end
end
return out
