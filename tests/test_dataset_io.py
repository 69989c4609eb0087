"""Data set blocks on tracks (FORMATS.md 7.3, 5.4), with Hercules as the oracle.

Hercules -> us: volumes built by ``dasdload`` (TEXT and SEQ methods; 3.13's SEQ takes
RECFM F/FB only, so V data is not loaded this way) read by ``read_records`` equal what
``dasdseq`` unloads.  Us -> Hercules: data sets written by ``write_records`` are read
identically by ``dasdseq`` (F/FB) or ``dasdseq -abs`` (V, U: the raw blocks), listed by
``dasdls``, and carry the DS1LSTAR/DS1TRBAL that ``dasdload`` writes for the same data.
"""

from __future__ import annotations

import struct

import oracle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.dataset import io
from emulator.dataset import records as rf
from emulator.errors import FormatError, SpaceError
from emulator.volume.volume import Volume

TEXT_LINES = [f"LINE {i:05d} hello world [x] {{y}} ~ \\ ^ !#@$" for i in range(200)]


def _seq_bytes(n_records: int, lrecl: int = 80) -> bytes:
    return b"".join(bytes([(i * 7 + j) % 256 for j in range(lrecl)]) for i in range(n_records))


def _split(data: bytes, lrecl: int) -> list[bytes]:
    return [data[i : i + lrecl] for i in range(0, len(data), lrecl)]


# dasdload SEQ cases: name, RECFM, LRECL, BLKSIZE, records, tracks.  The record counts pick
# the interesting placements: a short last block, exactly one full track (the EOF goes to
# R1 of the next track), many unblocked records over several tracks, one large block.
SEQ_CASES = [
    ("MY.SEQ", "FB", 80, 3120, 128, 2),
    ("MY.FULL", "FB", 80, 3120, 39 * 15, 3),
    ("MY.FULLER", "FB", 80, 3120, 39 * 15 + 1, 3),
    ("MY.UNBL", "F", 80, 80, 200, 4),
    ("MY.BIG", "FB", 80, 27920, 700, 2),
    ("MY.ONE", "FB", 80, 6160, 1, 1),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A 3390 volume built by dasdload: TEXT, SEQ and EMPTY data sets."""
    if not oracle.have_hercules():
        pytest.skip("Hercules utilities not installed")
    tmp = tmp_path_factory.mktemp("dasdload")
    (tmp / "text.txt").write_text("\n".join(TEXT_LINES) + "\n")
    lines = ["LOAD01 3390 5", "MY.TEXT TEXT text.txt TRK 2 0 0 PS FB 80 3120"]
    for name, recfm, lrecl, blksize, n, trks in SEQ_CASES:
        (tmp / f"{name}.bin").write_bytes(_seq_bytes(n, lrecl))
        lines.append(f"{name} SEQ {name}.bin TRK {trks} 0 0 PS {recfm} {lrecl} {blksize}")
    lines.append("MY.EMPTY EMPTY TRK 1 0 0 PS FB 80 3120")
    image = oracle.dasdload("\n".join(lines) + "\n", tmp / "load.3390", tmp)
    return oracle, image, tmp


# -- Hercules -> us ---------------------------------------------------------------------
@pytest.mark.oracle
@pytest.mark.parametrize("name", ["MY.TEXT"] + [c[0] for c in SEQ_CASES] + ["MY.EMPTY"])
def test_read_records_equals_dasdseq(loaded, name):
    oracle, image, tmp = loaded
    with Volume.open(image) as vol:
        info = vol.dataset(name)
        recs = io.read_records(vol, info)
    assert b"".join(recs) == oracle.dasdseq(image, name, tmp)
    unblocked = info.recfm_raw & rf.RECFM_B == 0
    assert all(len(r) == info.lrecl for r in recs) or unblocked


@pytest.mark.oracle
def test_text_loaded_by_dasdload_reads_as_lines(loaded):
    oracle, image, _ = loaded
    with Volume.open(image) as vol:
        info = vol.dataset("MY.TEXT")
        lines = rf.records_to_lines(io.read_records(vol, info), "1047", info.recfm_raw)
    assert lines == TEXT_LINES  # no "|": dasdload's table differs there (oracle.py)


@pytest.mark.oracle
def test_read_blocks_walks_tracks_in_order(loaded):
    _, image, _ = loaded
    with Volume.open(image) as vol:
        info = vol.dataset("MY.FULLER")  # 15 full blocks on track 0, 1 short on track 1
        blocks = list(io.read_blocks(vol, info))
        assert [(b.tt, b.r) for b in blocks] == [(0, r) for r in range(1, 16)] + [(1, 1)]
        assert [len(b.data) for b in blocks] == [3120] * 15 + [80]
        assert all(b.key == b"" for b in blocks)
        assert [(b.tt, b.r) for b in io.read_blocks(vol, info, start=(0, 15))] == [
            (0, 15),
            (1, 1),
        ]
        assert list(io.read_blocks(vol, vol.dataset("MY.EMPTY"))) == []
        with pytest.raises(FormatError, match="outside the data set"):
            list(io.read_blocks(vol, info, start=(3, 1)))


# -- us -> Hercules ---------------------------------------------------------------------
@pytest.fixture
def volume(tmp_path):
    vol = Volume.create(tmp_path / "ours.3390", "3390", "OURS01", cyls=5)
    yield vol
    vol.close()


@pytest.mark.oracle
@pytest.mark.parametrize("case", SEQ_CASES, ids=[c[0] for c in SEQ_CASES])
def test_written_fixed_data_matches_dasdload(loaded, volume, tmp_path, case):
    oracle, herc_image, _ = loaded
    name, recfm, lrecl, blksize, n, trks = case
    recs = _split(_seq_bytes(n, lrecl), lrecl)
    info = volume.allocate(name, recfm=recfm, lrecl=lrecl, blksize=blksize, space=("TRK", trks, 0))
    result = io.write_records(volume, info, recs)
    ours = volume.dataset(name)
    with Volume.open(herc_image) as herc:
        theirs = herc.dataset(name)
        their_blocks = [(b.tt, b.r, b.data) for b in io.read_blocks(herc, theirs)]
    assert (ours.lstar, ours.trbal) == (theirs.lstar, theirs.trbal)
    assert result.eof == ours.lstar and result.tracks_used == ours.lstar[0] + 1
    assert [(b.tt, b.r, b.data) for b in io.read_blocks(volume, ours)] == their_blocks
    assert result.ttrs == [(tt, r) for tt, r, _ in their_blocks]
    assert oracle.dasdseq(volume.path, name, tmp_path) == b"".join(recs)
    assert name in oracle.dasdls(volume.path)
    assert volume.check() == []


@pytest.mark.oracle
def test_empty_write_matches_dasdload_empty(loaded, volume):
    _, herc_image, _ = loaded
    info = volume.allocate("MY.EMPTY", recfm="FB", lrecl=80, blksize=3120, space=("TRK", 1, 0))
    io.write_records(volume, info, [])
    with Volume.open(herc_image) as herc:
        theirs = herc.dataset("MY.EMPTY")
    ours = volume.dataset("MY.EMPTY")
    assert (ours.lstar, ours.trbal) == (theirs.lstar, theirs.trbal) == ((0, 1), 58106)


VAR_CASES = [
    ("VB", 255, 3120, [bytes([i % 251]) * (i % 250) for i in range(700)]),
    ("V", 300, 304, [bytes([0xC1 + i % 9]) * (i % 297) for i in range(150)]),
    ("VBS", 32756, 1000, [bytes([i % 256]) * (i * 37 % 5000) for i in range(60)]),
    ("VS", 3004, 800, [bytes([i % 256]) * (i * 53 % 3000) for i in range(40)]),
    ("U", 0, 6144, [bytes([i % 256]) * (1 + i * 97 % 6144) for i in range(120)]),
    ("FBA", 133, 27930, [b"\xf1" + bytes([0x40 + i % 100]) * 132 for i in range(300)]),
]


@pytest.mark.oracle
@oracle.hercules_required
@pytest.mark.parametrize("case", VAR_CASES, ids=[c[0] for c in VAR_CASES])
def test_written_variable_and_undefined_blocks_read_by_hercules(volume, tmp_path, case):
    recfm, lrecl, blksize, recs = case
    info = volume.allocate(
        "MY.DATA", recfm=recfm, lrecl=lrecl, blksize=blksize, space=("TRK", 15, 0)
    )
    result = io.write_records(volume, info, recs)
    info = volume.dataset("MY.DATA")
    blocks = rf.block(info.recfm_raw, info.lrecl, info.blksize, recs)
    raw = oracle.dasdseq_abs(volume.path, "MY.DATA", tmp_path, result.tracks_used)
    assert raw == b"".join(blocks)
    assert io.read_records(volume, info) == recs
    assert [b.data for b in io.read_blocks(volume, info)] == blocks
    assert "MY.DATA" in oracle.dasdls(volume.path)
    assert volume.check() == []


# -- placement, keys, space -----------------------------------------------------------------
def test_write_from_the_middle_keeps_earlier_records(volume):
    info = volume.allocate("MY.U", recfm="U", blksize=6144, space=("TRK", 2, 0))
    io.write_blocks(volume, info, [(b"", b"A" * 100), (b"", b"B" * 100), (b"", b"C" * 100)])
    result = io.write_blocks(volume, info, [(b"", b"D" * 100)], start=(0, 3))
    assert result.ttrs == [(0, 3)] and result.eof == (0, 4)
    info = volume.dataset("MY.U")
    assert info.lstar == (0, 4)
    assert [b.data[:1] for b in io.read_blocks(volume, info)] == [b"A", b"B", b"D"]
    with pytest.raises(FormatError, match="cannot write at R9"):
        io.write_blocks(volume, info, [(b"", b"E")], start=(0, 9))


def test_keyed_blocks(volume):
    info = volume.allocate("MY.KEYED", recfm="F", lrecl=100, blksize=100, keylen=8)
    blocks = [(b"KEY%05d" % i, bytes([i]) * 100) for i in range(30)]
    io.write_blocks(volume, info, blocks)
    got = list(io.read_blocks(volume, info))
    assert [(b.key, b.data) for b in got] == blocks
    assert io.read_records(volume, info) == [d for _, d in blocks]
    io.write_records(volume, info, [b"x" * 100])
    assert [(b.key, b.data) for b in io.read_blocks(volume, info)] == [(bytes(8), b"x" * 100)]


def test_extends_into_secondary_space(volume):
    info = volume.allocate("MY.GROW", recfm="FB", lrecl=80, blksize=27920, space=("TRK", 1, 2))
    recs = _split(_seq_bytes(349 * 2 * 3), 80)  # 6 half-track blocks: 3 tracks
    result = io.write_records(volume, info, recs)
    info = volume.dataset("MY.GROW")
    # two half-track blocks fill a track, so the EOF needs a fourth track: 1 + 2 + 2
    assert [(b.tt, b.r) for b in io.read_blocks(volume, info)][-2:] == [(2, 1), (2, 2)]
    assert result.eof == (3, 1) and info.lstar == (3, 1)
    assert len(info.extents) == 3 and info.tracks == 5
    assert io.read_records(volume, info) == recs


def test_no_secondary_space_is_a_space_error_and_changes_nothing(volume):
    info = volume.allocate("MY.FULL", recfm="FB", lrecl=80, blksize=3120, space=("TRK", 1, 0))
    io.write_records(volume, info, [b"1" * 80])
    before = volume.dataset("MY.FULL")
    with pytest.raises(SpaceError, match="no secondary space"):
        io.write_records(volume, info, [b"2" * 80] * (39 * 16))
    after = volume.dataset("MY.FULL")
    assert (after.lstar, after.trbal, after.extents) == (before.lstar, before.trbal, before.extents)
    assert io.read_records(volume, after) == [b"1" * 80]


def test_failing_input_rolls_everything_back(volume):
    info = volume.allocate("MY.ROLL", recfm="U", blksize=6144, space=("TRK", 1, 5))
    io.write_blocks(volume, info, [(b"", b"old")])

    def blocks():
        for i in range(100):
            yield b"", bytes([i]) * 6000
        raise RuntimeError("input failed")

    with pytest.raises(RuntimeError):
        io.write_blocks(volume, info, blocks())
    info = volume.dataset("MY.ROLL")
    assert len(info.extents) == 1 and info.lstar == (0, 2)
    assert io.read_records(volume, info) == [b"old"]


def test_bad_blocks_are_refused(volume):
    info = volume.allocate("MY.BAD", recfm="U", blksize=6144, space=("TRK", 1, 0))
    with pytest.raises(FormatError, match="read as end of file"):
        io.write_blocks(volume, info, [(b"", b"")])
    with pytest.raises(FormatError, match="does not fit on a 3390 track"):
        io.write_blocks(volume, info, [(b"", bytes(56665))])
    with pytest.raises(FormatError, match="outside the data set"):
        io.write_blocks(volume, info, [], start=(1, 1))


# -- damage on disk ---------------------------------------------------------------------
def _patch(image_path, trk: int, offset: int, data: bytes) -> None:
    """Change bytes inside a plain CKD image's track slot (behind the image layer)."""
    with open(image_path, "r+b") as fh:
        fh.seek(512 + trk * 56832 + offset)
        fh.write(data)


def test_count_field_for_another_track_is_a_format_error(volume):
    info = volume.allocate("MY.CCHH", recfm="FB", lrecl=80, blksize=800, space=("TRK", 1, 0))
    io.write_records(volume, info, [b"x" * 80] * 30)
    trk = info.extents[0].begin
    path = volume.path
    volume.close()
    _patch(path, trk, 5 + 16 + 8 + 800, struct.pack(">HH", 7, 3))  # R2's count field
    with Volume.open(path) as vol:
        cyl, head = divmod(trk, 15)
        with pytest.raises(FormatError) as exc:
            list(io.read_blocks(vol, vol.dataset("MY.CCHH")))
    message = str(exc.value)
    assert f"OURS01 {cyl}/{head}/2: MY.CCHH" in message
    assert "cylinder 7 head 3" in message and "ours.3390" in message


def test_bad_rdw_on_disk_names_the_record(volume):
    info = volume.allocate("MY.VB", recfm="VB", lrecl=84, blksize=400, space=("TRK", 1, 0))
    io.write_records(volume, info, [b"a" * 80] * 12)
    trk = info.extents[0].begin
    path = volume.path
    volume.close()
    # block 2 (R2): BDW at data offset 0, first RDW at 4 -> length 1
    r1_len = 8 + 4 + 4 * 84
    _patch(path, trk, 5 + 16 + r1_len + 8 + 4, b"\x00\x01")
    with Volume.open(path) as vol:
        cyl, head = divmod(trk, 15)
        with pytest.raises(FormatError, match=rf"OURS01 {cyl}/{head}/2: MY.VB.*RDW length 1"):
            io.read_records(vol, vol.dataset("MY.VB"))


# -- property: whatever fits is read back, TTRs follow the capacity formula --------------
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(st.sampled_from((0, 8, 44)), st.integers(1, 20000)), min_size=0, max_size=25
    ),
    st.integers(0, 2**32 - 1),
)
def test_blocks_round_trip_through_tracks(tmp_path_factory, sizes, seed):
    tmp = tmp_path_factory.mktemp("prop")
    with Volume.create(tmp / "p.3390", "3390", "PROP01", cyls=3) as vol:
        info = vol.allocate("P.DATA", recfm="U", blksize=32760, space=("TRK", 2, 3))
        blocks = [
            (bytes([(seed + i) % 256]) * kl, bytes([(seed >> 8) % 256 ^ i]) * dl)
            for i, (kl, dl) in enumerate(sizes)
        ]
        result = io.write_blocks(vol, info, blocks)
        info = vol.dataset("P.DATA")
        got = list(io.read_blocks(vol, info))
        assert [(b.key, b.data) for b in got] == blocks
        assert [(b.tt, b.r) for b in got] == result.ttrs
        assert info.lstar == result.eof
        # each track holds what the device formula allows, and the next block did not fit
        dev = vol.device
        by_track: dict[int, list[tuple[int, int]]] = {}
        for (tt, _r), (k, d) in zip(result.ttrs, blocks, strict=True):
            by_track.setdefault(tt, []).append((len(k), len(d)))
        by_track.setdefault(result.eof[0], []).append((0, 0))
        used_by_track = {}
        for tt, recs in by_track.items():
            used = 0
            for kl, dl in recs:
                used = dev.fits(used, kl, dl)
                assert used is not None
            used_by_track[tt] = used
        assert info.trbal == dev.track_balance(used_by_track[result.eof[0]])
        for tt in sorted(by_track)[:-1]:
            nxt = by_track[tt + 1][0]
            assert dev.fits(used_by_track[tt], *nxt) is None
