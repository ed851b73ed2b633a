"""The default chat settings, defined once: the model's field defaults, the live
snapshot before the first load, and the page all read them from here."""

# SPEC "Bad input": a name 1 to 32 characters after trimming.
MAX_NAME_LENGTH = 32
# SPEC: a message 1 to 2,000 characters.
MAX_MESSAGE_LENGTH = 2000
# SPEC: per connection 5 messages a second with bursts of 10.
RATE_LIMIT_PER_SECOND = 5.0
RATE_LIMIT_BURST = 10
# SPEC: typing events at most one per 2 s per member.
TYPING_INTERVAL_SECONDS = 2.0
# SPEC: a fresh install allows ad-hoc rooms.
ALLOW_ADHOC_ROOMS = True
# Blank, as a text field of the model is when it has no default of its own.
BANNER = ""
# SPEC "Nothing lost across a short disconnect": a room's recovery window
# holds its last 100 messages (0 turns recovery off), none older than 120 s.
RECOVERY_MESSAGES = 100
RECOVERY_SECONDS = 120
