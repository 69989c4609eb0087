"""The undo journal of image writes (emulator/image/journal.py).

Its layout is the module docstring: version 2 stores each overwritten region with its
trailing zero bytes left off, version 1 (left on disk by earlier versions) stores it
whole.  Journals are read and built here from that text with ``struct``, not with the
module's own code.  Images are real volumes made by ``Volume.create``, split into
several files so that entries name more than one file.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from conftest import Crash, crash_commit

import emulator.image.ckd as ckd_mod
from emulator.errors import IntegrityError
from emulator.image import journal, open_image
from emulator.layouts.ckd import DEVHDR_SIZE
from emulator.track import build_track
from emulator.volume import Volume

TRAILER = b"END!"


@pytest.fixture
def volume(tmp_path, monkeypatch) -> list[Path]:
    """The files of a new empty 3390 volume of 10 cylinders, split 4 cylinders a file."""
    monkeypatch.setattr(ckd_mod, "max_cyls_per_file", lambda trksize, heads: 4)
    Volume.create(tmp_path / "jnl.3390", "3390", "JNL001", cyls=10).close()
    with open_image(tmp_path / "jnl_1.3390") as im:
        files = [Path(f) for f in im.files]
    assert len(files) == 3
    return files


def _contents(files: list[Path]) -> list[bytes]:
    return [f.read_bytes() for f in files]


def _slot(im, trk: int) -> tuple[int, int]:
    """(file index, offset) of a track slot: tracks 0-59 are file 0, 60-119 file 1..."""
    per_file = 4 * im.heads
    return trk // per_file, DEVHDR_SIZE + (trk % per_file) * im.trksize


def _header(magic: bytes, files: list[Path], sizes: list[int]) -> bytearray:
    body = bytearray(magic) + struct.pack(">I", len(files))
    for f, size in zip(files, sizes, strict=True):
        raw = f.name.encode()
        body += struct.pack(">H", len(raw)) + raw + struct.pack(">Q", size)
    return body


def _sealed(body: bytes) -> bytes:
    return bytes(body) + TRAILER + struct.pack(">I", zlib.crc32(body))


def _v2_entries(raw: bytes, nfiles: int) -> list[tuple[int, int, int, bytes]]:
    """(file index, offset, length, stored bytes) of a whole version-2 journal."""
    assert raw[:8] == b"DASDJNL2" and raw[-8:-4] == TRAILER
    assert struct.unpack(">I", raw[-4:])[0] == zlib.crc32(raw[:-8])
    (count,) = struct.unpack_from(">I", raw, 8)
    assert count == nfiles
    pos = 12
    for _ in range(count):
        (nlen,) = struct.unpack_from(">H", raw, pos)
        pos += 2 + nlen + 8
    entries = []
    while pos < len(raw) - 8:
        idx, offset, length, stored = struct.unpack_from(">IQII", raw, pos)
        pos += 20
        entries.append((idx, offset, length, raw[pos : pos + stored]))
        pos += stored
    assert pos == len(raw) - 8
    return entries


@pytest.mark.parametrize("image_writes", [0, 3, None])
def test_rollback_of_a_v2_journal_restores_the_exact_before_bytes(volume, image_writes):
    rnd = random.Random(5)
    im = open_image(volume[0], writable=True)
    trksize = im.trksize
    # Old bytes of every shape: a slot full of data whose very last byte is not zero, one
    # with data, zeros and a non-zero byte at its end, one with data then zero padding.
    full = rnd.randbytes(trksize - 1) + b"\x01"
    dotted = rnd.randbytes(300) + bytes(trksize - 301) + b"\x07"
    padded = rnd.randbytes(1000) + bytes(trksize - 1000)
    idx_a, off_a = _slot(im, 70)
    journal.apply_writes(
        im.files, [(idx_a, off_a, full), (idx_a, off_a + trksize, dotted)], im.lock
    )
    journal.apply_writes(im.files, [(2, _slot(im, 125)[1], padded)], im.lock)
    before = _contents(volume)
    sizes = [len(b) for b in before]

    idx_e, off_e = _slot(im, 20)
    writes = [(idx_e, off_e + k * trksize, rnd.randbytes(trksize)) for k in range(5)]  # empty
    writes += [(idx_a, off_a + k * trksize, rnd.randbytes(trksize)) for k in range(2)]
    writes.append((2, _slot(im, 125)[1], rnd.randbytes(trksize)))
    writes.append((2, sizes[2] - 100, rnd.randbytes(1000)))  # extends the last file
    writes.append((2, sizes[2] + 5000, rnd.randbytes(10)))  # wholly past its end
    with pytest.MonkeyPatch.context() as crash:
        crash_commit(crash, image_writes)
        with pytest.raises(Crash):
            journal.apply_writes(im.files, writes, im.lock)
    im.close()
    if image_writes != 0:
        assert _contents(volume) != before  # part of the commit reached the files

    raw = Path(journal.journal_path(str(volume[0]))).read_bytes()
    entries = _v2_entries(raw, len(volume))
    # One entry per write that overwrote old bytes (not the one wholly past the end),
    # each the old region exactly, with all its trailing zeros left off.
    assert len(entries) == len(writes) - 1
    for (idx, offset, length, stored), (widx, woffset, data) in zip(entries, writes, strict=False):
        assert (idx, offset) == (widx, woffset)
        assert length == min(offset + len(data), sizes[idx]) - offset
        assert stored + bytes(length - len(stored)) == before[idx][offset : offset + length]
        assert not stored.endswith(b"\0")
    assert len({len(e[3]) for e in entries[:5]}) == 1
    assert 0 < len(entries[0][3]) < 64  # an empty track: home address, R0, end marker
    assert [e[3] for e in entries[5:8]] == [full, dotted, padded[:1000]]
    assert entries[8][2:] == (100, b"")  # the zero padding at the end of the last file
    assert len(raw) < 3 * trksize + 1000

    open_image(volume[0]).close()  # a reader rolls the dead writer's commit back
    assert not os.path.exists(journal.journal_path(str(volume[0])))
    assert _contents(volume) == before


def test_rollback_of_a_v1_journal_left_by_an_earlier_version(volume):
    rnd = random.Random(6)
    before = _contents(volume)
    sizes = [len(b) for b in before]
    with open_image(volume[0]) as im:
        trksize = im.trksize
        writes = [(0, _slot(im, 3)[1], rnd.randbytes(2 * trksize))]
        writes.append((1, _slot(im, 64)[1], rnd.randbytes(trksize)))
    writes.append((2, sizes[2] - 10, rnd.randbytes(3000)))
    writes.append((2, sizes[2] + 4096, rnd.randbytes(20)))
    # The journal as version 1 wrote it: every old region whole, ">IQI" entries, an
    # empty one for a write past the end of its file.
    body = _header(b"DASDJNL1", volume, sizes)
    for idx, offset, data in writes:
        old = before[idx][offset : min(offset + len(data), sizes[idx])]
        body += struct.pack(">IQI", idx, offset, len(old)) + old
    Path(journal.journal_path(str(volume[0]))).write_bytes(_sealed(body))
    # The commit died half-way: the new bytes are on disk.
    for idx, offset, data in writes:
        with open(volume[idx], "r+b") as fh:
            fh.seek(offset)
            fh.write(data)
    assert _contents(volume) != before

    assert journal.recover(str(volume[0])) == "rolled back an interrupted write"
    assert not os.path.exists(journal.journal_path(str(volume[0])))
    assert _contents(volume) == before


@pytest.mark.parametrize(
    "version, damage",
    [
        (b"DASDJNL2", "cut"),
        (b"DASDJNL2", "crc"),
        (b"DASDJNL2", "magic"),
        (b"DASDJNL1", "cut"),
        (b"DASDJNL1", "crc"),
    ],
)
def test_a_journal_without_a_valid_trailer_is_discarded_untouched(volume, version, damage):
    before = _contents(volume)
    sizes = [len(b) for b in before]
    # Applied, it would change a track and cut the last file short.
    body = _header(version, volume, [*sizes[:2], sizes[2] // 2])
    payload = b"\xee" * 200
    if version == b"DASDJNL2":
        body += struct.pack(">IQII", 0, DEVHDR_SIZE, 400, len(payload)) + payload
    else:
        body += struct.pack(">IQI", 0, DEVHDR_SIZE, len(payload)) + payload
    raw = _sealed(body)
    raw = {
        "cut": raw[:-5],
        "crc": raw[:-1] + bytes([raw[-1] ^ 1]),
        "magic": b"DASDJNL9" + raw[8:],
    }[damage]
    jpath = journal.journal_path(str(volume[0]))
    Path(jpath).write_bytes(raw)

    assert journal.recover(str(volume[0])) == "discarded an unapplied journal"
    assert not os.path.exists(jpath)
    assert _contents(volume) == before


def _copy(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir()
    return [Path(shutil.copy2(f, folder / f.name)) for f in files]


@pytest.mark.parametrize("run_slots", [None, 3])
def test_coalesced_writes_give_the_bytes_of_writes_one_at_a_time(
    volume, tmp_path, monkeypatch, run_slots
):
    rnd = random.Random(7)
    one_commit, track_by_track = volume, _copy(volume, tmp_path / "copy")
    with open_image(volume[0]) as im:
        trksize = im.trksize
        if run_slots:  # runs cut every few slots, not only where writes stop continuing
            monkeypatch.setattr(journal, "RUN_BYTES", run_slots * trksize + 1)
        size2 = os.path.getsize(volume[2])
        # Runs of whole slots across a file boundary, short writes that continue each
        # other, an overlap (the later write wins), writes extending the last file.
        writes = [_slot(im, trk) + (rnd.randbytes(trksize),) for trk in range(50, 70)]
        writes += [(1, _slot(im, 80)[1] + k * 100, rnd.randbytes(100)) for k in range(7)]
        writes.append((1, _slot(im, 80)[1] + 250, b"\xaa" * 300))
        writes += [(2, size2 - 50 + k * 500, rnd.randbytes(500)) for k in range(3)]
    expect = [bytearray(b) for b in _contents(volume)]
    for idx, offset, data in writes:
        expect[idx][offset : offset + len(data)] = data  # a hole would be zeros: none here
    with open_image(one_commit[0], writable=True) as im:
        journal.apply_writes(im.files, writes, im.lock)
    with open_image(track_by_track[0], writable=True) as im:
        for write in writes:
            journal.apply_writes(im.files, [write], im.lock)
    assert _contents(one_commit) == _contents(track_by_track) == expect


def test_a_transaction_of_tracks_writes_what_single_track_commits_write(volume, tmp_path):
    track_by_track = _copy(volume, tmp_path / "copy")
    tracks = {
        trk: build_track(*divmod(trk, 15), [(b"", bytes([trk]) * (trk * 97))])
        for trk in range(40, 100)
    }
    with open_image(volume[0], writable=True) as im, im.transaction():
        for trk, image in tracks.items():
            im.write_track(trk, image)
    with open_image(track_by_track[0], writable=True) as im:
        for trk, image in tracks.items():
            im.write_track(trk, image)
            im.commit()
    assert _contents(volume) == _contents(track_by_track)
    with open_image(volume[0]) as im:
        assert [im.read_track(trk) for trk in tracks] == list(tracks.values())


def _tracks(first: int, count: int, fill: int) -> dict[int, bytes]:
    return {
        trk: build_track(*divmod(trk, 15), [(b"", bytes([fill]) * (trk * 31))])
        for trk in range(first, first + count)
    }


def test_a_background_commit_reads_back_at_once_and_is_on_disk_after_sync(volume):
    first, second = _tracks(40, 30, 1), _tracks(50, 30, 2)
    jpath = journal.journal_path(str(volume[0]))
    with open_image(volume[0], writable=True) as im:
        im.background_flush = True
        for tracks in (first, second):  # the second commit waits for the first's flush
            with im.transaction():
                for trk, image in tracks.items():
                    im.write_track(trk, image)
            with open_image(volume[0]) as reader:  # this process: no wait, no roll-back
                assert [reader.read_track(t) for t in tracks] == list(tracks.values())
        im.sync()
        assert not os.path.exists(jpath)
    expect = {**first, **second}
    with open_image(volume[0]) as im:
        assert [im.read_track(t) for t in expect] == list(expect.values())


def test_a_background_flush_that_fails_leaves_its_journal_to_roll_back(volume):
    before = _contents(volume)
    im = open_image(volume[0], writable=True)
    im.background_flush = True
    with pytest.MonkeyPatch.context() as crash:
        crash_commit(crash, None)  # every write lands, then the flush to disk fails
        with im.transaction():
            for trk, image in _tracks(40, 30, 3).items():
                im.write_track(trk, image)
        assert _contents(volume) != before
        with pytest.raises(IntegrityError, match="flushing a commit to disk failed"):
            im.sync()
    im.close()
    assert os.path.exists(journal.journal_path(str(volume[0])))
    open_image(volume[0]).close()  # the next open rolls the unflushed commit back
    assert _contents(volume) == before


def test_close_reports_a_failed_background_flush_and_still_lets_the_image_go(volume):
    before = _contents(volume)
    im = open_image(volume[0], writable=True)
    im.background_flush = True
    with pytest.MonkeyPatch.context() as crash:
        crash_commit(crash, None)
        with im.transaction():
            for trk, image in _tracks(40, 30, 4).items():
                im.write_track(trk, image)
        with pytest.raises(IntegrityError, match="flushing a commit to disk failed"):
            im.close()
    assert im.closed
    with open_image(volume[0], writable=True):  # the writer lock is free; it rolls back
        pass
    assert _contents(volume) == before
