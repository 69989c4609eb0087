"""Crash safety by killing, the CI sample of ``tools/killtest.py`` (docs/RELIABILITY.md).

Sixteen SIGKILLs that land before the command exits, two for each of ``dasd put``,
``dasd alloc``, ``iebcopy`` and ``ssm import`` on a plain and a compressed image of a
tiny generated system, at seeded random points.  After each: the next open recovers,
our check, ``dasdls`` and ``cckdcdsk`` find nothing, and the content is exactly the before or the after state.
The full run (240 kills) is ``python tools/killtest.py --kills 240``.
"""

from __future__ import annotations

SEED = 20261102


def test_killed_writers_leave_the_before_or_the_after_state(tmp_path, hercules, killtest):
    messages: list[str] = []
    scenarios, total = killtest.run(16, SEED, size="tiny", work=tmp_path, log=messages.append)
    corrupted = [m for m in messages if m.startswith("CORRUPTED")]
    assert total.get("corrupted", 0) == 0, corrupted
    assert total["recovered"] == total["tried"] >= 16
    assert {sc.name for sc in scenarios} == {
        f"{c}/{k}" for c in killtest.COMMANDS for k in killtest.KINDS
    }
    # Each scenario ran until two SIGKILLs landed before its command exited.
    assert [sc.counts["killed"] for sc in scenarios] == [2] * 8
