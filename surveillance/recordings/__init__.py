"""The recording index: which segment files exist, their gaps, holds and retention rules.

No video here (that is :mod:`surveillance.media`): a row per segment file (camera, stream,
relative path, start and end in epoch seconds, size, SHA-256, keyframe offsets), a row per
gap in the footage with its reason, a row per case hold. Each camera stream's closed
segments form a hash chain (:mod:`.chain`), so ``surveillance verify --recordings`` tells
an altered, deleted or missing file or row from a removal that retention recorded.

Modules: :mod:`.tables` (ORM), :mod:`.records` (what leaves the store), :mod:`.store`
(short transactions), :mod:`.policy` (which cameras record what, for how long),
:mod:`.retention` (what to remove next), :mod:`.verify` (the chain check),
:mod:`.commands` (the command line).
"""
