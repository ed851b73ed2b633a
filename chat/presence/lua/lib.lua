-- Functions shared by the registry's scripts; each script is this file, then its own.
local p = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- "<member>\t<json>\t<skeleton key>": the member, its name as JSON and its
-- skeleton key. Neither a channel name nor JSON holds a raw tab; a skeleton
-- may (U+1F16D's does), so it comes last. An entry that a process of an
-- earlier release wrote, during a rolling upgrade, has none.
local function holder(held)
  local first = string.find(held, '\t', 1, true)
  local second = string.find(held, '\t', first + 1, true)
  if not second then return string.sub(held, 1, first - 1), string.sub(held, first + 1) end
  return string.sub(held, 1, first - 1), string.sub(held, first + 1, second - 1),
         string.sub(held, second + 1)
end

-- The names in join order as stored: a newline before each and after the last.
local function members(room)
  return redis.call('GET', p .. 'names:' .. room) or ''
end

-- The room's names for a claim whose process has the first `known` bytes
-- of the list of `epoch` ('' and 0: nothing), the room holding `count`
-- members: {epoch, offset, piece}, the piece being the list from `offset`
-- on, which is 0 (all of it) unless the epoch is the same and the list still
-- ends a name where the copy ended; or, for a small room of which the
-- process has no copy, the list alone (as members()). A list has an epoch
-- while its room holds more than `above` members (processes keep copies of
-- those only, chat/presence/listing.py): a number never used before, for
-- any room, given when the room first asks for one and dropped whenever the
-- list is rewritten, so that while it stays the same the list has only grown.
local function listing(room, epoch, known, count, above)
  if count <= tonumber(above) and epoch == '' then return members(room) end
  local nkey, ekey = p .. 'names:' .. room, p .. 'names-epoch:' .. room
  local current = redis.call('GET', ekey)
  if not current then
    if count <= tonumber(above) then return members(room) end
    current = tostring(redis.call('INCR', p .. 'epochs'))
    redis.call('SET', ekey, current)
  elseif current == epoch and tonumber(known) > 0
      and redis.call('GETRANGE', nkey, known - 1, known - 1) == '\n' then
    return {current, known, redis.call('GETRANGE', nkey, known, -1)}
  end
  return {current, 0, members(room)}
end

local function remove_name(room, name)
  local nkey = p .. 'names:' .. room
  local names = redis.call('GET', nkey)
  if not names then return end
  local at = string.find(names, '\n' .. name .. '\n', 1, true)
  if not at then return end
  names = string.sub(names, 1, at) .. string.sub(names, at + #name + 2)
  if names == '\n' then
    redis.call('DEL', nkey)
  else
    redis.call('SET', nkey, names)
  end
  -- Rewritten: no process's copy continues it (see listing).
  redis.call('DEL', p .. 'names-epoch:' .. room)
end

-- Add a join ('+') or leave ('-') to the room's next diff if the room is
-- large or a diff is pending: 1 if it did, 0 if the event is to be sent now.
local function note(room, mark, name, count, above, pending_ms)
  local pending = p .. 'diff:' .. room
  if count <= tonumber(above) and redis.call('EXISTS', pending) == 0 then return 0 end
  redis.call('RPUSH', pending, mark .. name)
  redis.call('PEXPIRE', pending, pending_ms)
  return 1
end

-- The next serial of the registry: every join and leave of every room takes
-- one, in the order Redis ran them. A member's `joined` list is the room as of
-- its claim's serial; an event numbered at or below it is in that list
-- already, however late it reaches the member (chat/consumers.py, `listed`).
-- A counter that is new, or was lost (flushed, evicted) while members stayed,
-- starts at the time in microseconds: above every serial given before, unless
-- rooms made more than a million joins and leaves a second.
local function next_serial()
  local serial = redis.call('INCR', p .. 'serial')
  if serial == 1 then
    local t = redis.call('TIME')
    serial = tonumber(t[1]) * 1000000 + tonumber(t[2])
    redis.call('SET', p .. 'serial', string.format('%d', serial))
  end
  return serial
end

-- Free `key` in `room`, and its skeleton, if `member` holds it: its name, the
-- count after and the leave's serial, or nil if somebody else (or nobody)
-- holds it.
local function drop(room, key, member)
  local hkey = p .. 'room:' .. room
  local held = redis.call('HGET', hkey, key)
  if not held then return nil end
  local owner, name, skeleton = holder(held)
  if owner ~= member then return nil end
  redis.call('HDEL', hkey, key)
  if skeleton then redis.call('HDEL', p .. 'skeletons:' .. room, skeleton) end
  redis.call('HDEL', p .. 'joined:' .. room, key)
  remove_name(room, name)
  redis.call('ZREM', p .. 'deadlines', room .. '\t' .. key .. '\t' .. member)
  local count = redis.call('HINCRBY', p .. 'counts', room, -1)
  if count <= 0 then
    redis.call('HDEL', p .. 'counts', room)
    count = 0
  end
  return name, count, next_serial()
end
