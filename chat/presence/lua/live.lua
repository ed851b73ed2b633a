-- The live members. ARGV: prefix, room ('' for every room with members)
-- -> for each member: room, name key, its holder entry, its joined entry
-- ('' if it has none), flat.
local rooms
if ARGV[2] ~= '' then
  rooms = {ARGV[2]}
else
  rooms = redis.call('HKEYS', p .. 'counts')
end
local out = {}
for _, room in ipairs(rooms) do
  local held = redis.call('HGETALL', p .. 'room:' .. room)
  local jkey = p .. 'joined:' .. room
  for i = 1, #held, 2 do
    out[#out + 1] = room
    out[#out + 1] = held[i]
    out[#out + 1] = held[i + 1]
    out[#out + 1] = redis.call('HGET', jkey, held[i]) or ''
  end
end
return out
