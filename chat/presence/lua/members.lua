-- ARGV: prefix, room -> the names in join order.
return members(ARGV[2])
