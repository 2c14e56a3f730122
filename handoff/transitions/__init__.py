"""Ownership transitions: the only code that moves a conversation between bot, queue and
attendant, and the only code that records what staff did in one. Import from the topic:

- `common`: the refusals (`TransitionError`...), locking a patient's episode, checking who
  acts (the rules are core.access's), logging and publishing a transition;
- `queueing`: the bot's handoff request, distribution, the patient's place in the queue;
- `moves`: take, transfer, reassign, take over, requeue, priority;
- `talking`: replies (on any of the patient's channels), notes, joining a second channel;
- `reception`: the reception's typed actions and their effect on appointments;
- `resolution`: resolving an episode and handing the patient back to the bot;
- `listeners`: what the handoff does when the event bus tells it.

Each transition is one transaction that locks what it changes (the patient's open
conversation rows, always in id order, then the receiving attendant's profile row), re-checks
what it read, and logs a `HandoffEvent` before committing. So concurrent writers, in one
process or several on PostgreSQL, can never assign a conversation twice or put an attendant
over capacity. Side effects that leave the database (live events, messages to the patient,
the Rasa hand-back) happen after the commit.

Capacity counts patients, not conversations: one patient followed on two channels by the
same attendant takes one slot. Those conversations form the patient's *episode* (their open
conversations in the queue or with a person) and every transition moves the whole episode,
so a patient is never split between two people and resolving hands them back to the bot once.

Imports go one way: every module uses `common`; `moves`, `talking` and `resolution` also use
`queueing` (to distribute what they free); `listeners` uses `queueing` and `resolution`. Above
them sit handoff.presence and handoff.timers.
"""
