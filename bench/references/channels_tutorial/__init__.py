"""Reference (b): the official Channels tutorial chat on the stock in-memory layer, under Daphne."""
