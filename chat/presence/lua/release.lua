-- Free a name its member holds. ARGV: prefix, room, name key, member,
-- coalesce above, pending ms -> the count after, whether the leave was
-- noted and its serial; or nil if the member does not hold it.
local name, count, serial = drop(ARGV[2], ARGV[3], ARGV[4])
if not name then return nil end
return {count, note(ARGV[2], '-', name, count, ARGV[5], ARGV[6]), serial}
