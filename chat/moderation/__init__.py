"""Moderation: live members, kicks, bans, closed rooms, slow mode and room sizes.

What moderators decide is written to the database (chat.models: Ban, Kick,
Room) by admin or `manage.py chat_moderate`, through the functions of
`services`. Every server process reads it with the live settings
(chat.conf), so no chat frame waits on the database; `verdicts` says what
applies to one connection, and `watch` makes each process close its own
connections as soon as a reload brings a ban, a kick or a closed room that
reaches them.
"""
