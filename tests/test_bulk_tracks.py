"""Bulk track building and writing: Device.place, build_tracks, Volume.write_slots, the
columnar payload scan, and directory sizing without entry objects.  Each bulk path is
checked against the one-record-at-a-time path it replaces on hot paths, and what it
writes against Hercules."""

from __future__ import annotations

import random

import numpy as np
import pytest

from emulator import api
from emulator.errors import ConflictError, FormatError
from emulator.geometry import all_devices
from emulator.image.check import check_track_image
from emulator.kernels.tracks import build_tracks, first_bad_slot
from emulator.track import build_track, parse_track
from emulator.volume import Volume
from ssm.basket import ops


def _reference_place(dev, sizes, used, r, max_rec=255):
    """Placement record by record with Device.fits, as writers did it."""
    tt, out = 0, []
    for kl, dl in sizes:
        new = dev.fits(used, kl, dl)
        if new is None or r >= max_rec:
            new = dev.fits(0, kl, dl)
            tt, r = tt + 1, 0
        used, r = new, r + 1
        out.append((tt, r))
    return out, used


@pytest.mark.parametrize("dev", all_devices(), ids=lambda d: d.name)
def test_place_matches_fits_record_by_record(dev):
    rnd = random.Random(dev.devtype)
    lengths = [0, 1, 80, 800, 3120, 6160, 19069, 27998, dev.r1max]
    sizes = []
    while len(sizes) < 2000:
        kl = rnd.choice([0, 0, 8])
        dl = min(rnd.choice(lengths), dev.r1max - kl)
        if dev.fits(0, kl, dl) is not None:
            sizes.append((kl, dl))
    for used, r in [(0, 0), (dev.track_len // 2, 3), (0, 254)]:
        want, want_used = _reference_place(dev, sizes, used, r)
        trk, rec, got_used = dev.place([k for k, _ in sizes], [d for _, d in sizes], used, r)
        assert list(zip(trk.tolist(), rec.tolist(), strict=True)) == want
        assert got_used == want_used


def test_place_refuses_a_record_no_track_holds():
    dev = next(d for d in all_devices() if d.name == "3390")
    with pytest.raises(FormatError, match="fits no 3390 track"):
        dev.place([0, 0], [80, dev.r1max + 1])


def test_build_tracks_equals_build_track():
    rnd = random.Random(7)
    blocks = [(bytes(rnd.randrange(256) for _ in range(rnd.choice([0, 8]))),
               bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 3000))))
              for _ in range(60)]  # fmt: skip
    dev = next(d for d in all_devices() if d.name == "3390")
    trk, rec, _ = dev.place([len(k) for k, _ in blocks], [len(d) for _, d in blocks])
    src = b"".join(k + d for k, d in blocks)
    key_len = np.array([len(k) for k, _ in blocks])
    data_len = np.array([len(d) for _, d in blocks])
    key_off = np.cumsum(key_len + data_len) - key_len - data_len
    kept = [(b"", b"kept record")]
    prefix = build_track(7, 3, kept)[:-8]
    ntrk = int(trk[-1]) + 1
    cyl = np.array([7 + (3 + t) // 15 for t in range(ntrk)])
    head = np.array([(3 + t) % 15 for t in range(ntrk)])
    # the records after the kept one on track 0 are numbered from 2
    rec = np.where(trk == 0, rec + 1, rec)
    slots, used, data_at = build_tracks(
        cyl, head, trk, rec, np.frombuffer(src, dtype=np.uint8), key_off, key_len,
        key_off + key_len, data_len, dev.r1max + 200, prefix,
    )  # fmt: skip
    for t in range(ntrk):
        mine = [blocks[i] for i in np.flatnonzero(trk == t)]
        want = build_track(int(cyl[t]), int(head[t]), (kept if t == 0 else []) + mine)
        assert bytes(slots[t, : used[t]]) == want
        assert not slots[t, used[t] :].any()
    for i, (_k, d) in enumerate(blocks):
        assert bytes(slots[trk[i], data_at[i] : data_at[i] + len(d)]) == d


def test_build_tracks_refuses_offsets_outside_the_source():
    one = np.array([0])
    with pytest.raises(FormatError, match="outside the source"):
        build_tracks(one, one, one, one + 1, np.zeros(10, np.uint8), one, one, one + 5,
                     np.array([6]), 1000)  # fmt: skip


def _volume(tmp_path):
    path = tmp_path / "bulk.3390"
    Volume.create(path, "3390", "BULK01", cyls=20).close()
    return path


def _slots_for(vol, trks, payloads):
    cyl, head = np.divmod(np.array(trks), vol.heads)
    data = [np.frombuffer(p, dtype=np.uint8) for p in payloads]
    src = np.concatenate(data)
    lens = np.array([len(p) for p in payloads])
    offs = np.cumsum(lens) - lens
    rows = np.arange(len(trks))
    return build_tracks(cyl, head, rows, np.ones(len(trks), np.int64), src, offs,
                        np.zeros_like(lens), offs, lens, vol.image.trksize)  # fmt: skip


def test_write_slots_writes_what_write_track_writes(tmp_path, hercules):
    path = _volume(tmp_path)
    trks = [40, 41, 90]
    payloads = [b"A" * 4000, b"B" * 27998, b"C" * 80]
    with api.open_volume(path, writable=True) as vol:
        slots, used, _ = _slots_for(vol, trks, payloads)
        with vol.transaction():
            vol.write_slots(trks, slots, used.tolist())
            # staged images read back as bytes before the commit
            assert parse_track(vol.read_track(41))[-1].data == b"B" * 27998
    other = tmp_path / "other.3390"
    Volume.create(other, "3390", "BULK01", cyls=20).close()
    with api.open_volume(other, writable=True) as vol:
        with vol.transaction():
            for trk, p in zip(trks, payloads, strict=True):
                cyl, head = divmod(trk, vol.heads)
                vol.write_track(trk, build_track(cyl, head, [(b"", p)]))
    assert path.read_bytes() == other.read_bytes()
    assert hercules.dasdls(path) == hercules.dasdls(other)


def test_write_slots_refuses_before_staging_anything(tmp_path):
    path = _volume(tmp_path)
    before = path.read_bytes()
    with api.open_volume(path, writable=True) as vol:
        slots, used, _ = _slots_for(vol, [40, 41], [b"A" * 100, b"B" * 100])
        slots[1, used[1] + 5] = 1  # garbage after the second image
        with pytest.raises(FormatError, match="not zero after the image"):
            vol.write_slots([40, 41], slots, used.tolist())
        slots, used, _ = _slots_for(vol, [40, 41], [b"A" * 100, b"B" * 100])
        with pytest.raises(FormatError, match="home address"):
            vol.write_slots([40, 42], slots, used.tolist())  # row 1 was built for track 41
        slots, used, _ = _slots_for(vol, [0], [b"A" * 100])
        with pytest.raises(ConflictError, match="volume label or VTOC"):
            vol.write_slots([0], slots, used.tolist())
    assert path.read_bytes() == before


def test_first_bad_slot_agrees_with_check_track_image():
    """The compiled slot check finds exactly the rows check_track_image (or the
    zero-padding rule) refuses, under random single-byte damage and wrong lengths."""
    trksize, heads = 1024, 15
    rnd = random.Random(5)
    for case in range(3000):
        trk = rnd.randrange(0, 300)
        cyl, head = divmod(trk, heads)
        records = [(b"K" * rnd.choice([0, 4]), rnd.randbytes(rnd.randrange(0, 60))) for _ in range(rnd.randrange(0, 5))]  # fmt: skip
        image = bytearray(build_track(cyl, head, records))
        row = np.zeros((1, trksize), dtype=np.uint8)
        n = len(image)
        kind = case % 4
        if kind == 1:  # one byte changed anywhere in the slot
            at = rnd.randrange(0, n + 20)
            if at < n:
                image[at] = rnd.randrange(256)
            else:
                row[0, at] = rnd.randrange(1, 256)
        elif kind == 2:  # the length is off (bytes past it are then not padding)
            n = max(0, n + rnd.choice([-9, -8, -1, 1, 8]))
        elif kind == 3:  # claimed for another track
            trk = (trk + 1) % 300
        row[0, : len(image)] = np.frombuffer(bytes(image), dtype=np.uint8)[:trksize]
        try:
            check_track_image(row[0, :n].tobytes(), trk, heads, trksize)
            good = not row[0, n:].any()
        except FormatError:
            good = False
        cyl, head = divmod(trk, heads)
        got = first_bad_slot(row, np.array([n]), np.array([cyl]), np.array([head]))
        assert got == (-1 if good else 0), (case, kind)


def test_scanned_member_payload_reads_as_it_was_written():
    rnd = random.Random(11)
    members = []
    for i in range(40):
        blocks = [ops.Block((i << 8) | (j + 1), b"", rnd.randbytes(rnd.randrange(0, 900)))
                  for j in range(rnd.randrange(0, 6))]  # fmt: skip
        members.append(
            ops.MemberImage(f"M{i:03d}", False, i % 2, rnd.randbytes(2 * (i % 5)), None, blocks)
        )
    members.append(ops.MemberImage("ALIAS", True, 0, b"", "M007"))
    decoded = ops.decode_members(ops.encode_members(members))
    assert [(m.name, m.alias, m.ttr_count, m.userdata, m.alias_of) for m in decoded] == [
        (m.name, m.alias, m.ttr_count, m.userdata, m.alias_of) for m in members
    ]
    for got, want in zip(decoded, members, strict=True):
        assert list(got.blocks) == list(want.blocks)
        assert ops.run_of(list(want.blocks)) == list(want.blocks)


@pytest.mark.parametrize("cut", [5, 9, 20, 200])
def test_truncated_member_payload_is_a_format_error(cut):
    payload = ops.encode_members(
        [ops.MemberImage("A", False, 0, b"", None, [ops.Block(1, b"", b"x" * 300)])]
    )
    with pytest.raises(FormatError, match="payload|count"):
        ops.decode_members(payload[:cut])
