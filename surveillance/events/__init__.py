"""Events: facts an operator acts on (a camera offline, a frozen picture, motion in a zone).

No video and no HTTP here. One condition is one event: its ``key`` names the condition, and
while an event with that key is active (not ended) raising it again updates it instead of
making a second one (a partial unique index holds the rule in the database). Modules:
:mod:`.records` (what the rest of the service sees), :mod:`.tables` (ORM rows),
:mod:`.store` (the only code touching the events tables).
"""
