"""Real MVS libraries on Hercules-built volumes: every device type and image form.

Hercules `dasdload` builds volumes from the real XMIT files in ../shared/fixtures/real
(text PDS with ISPF statistics and aliases, load libraries with aliases, a sequential
data set) on 3390, 3380 and 3350, plain and compressed (zlib, bzip2).  Ours must list
each volume exactly as `dasdls -info` does, and every member's bytes must equal what
`dasdcat` prints.  The two real volume images in the folder are checked the same way.
"""

from __future__ import annotations

import pytest

from emulator import api
from emulator.errors import UnsupportedError

XMITS = {
    "REVIEW.HELP": ("xmit", "yetacp__mvs_sysgen__revhelp.xmi"),
    "REVIEW.LOAD": ("xmit", "yetacp__mvs_sysgen__rev370ld.xmi"),
    "RTI.LOADLIB": ("xmit", "CBTTape__CBT746__LOADLIB.xmi"),
    "PYTHON.XMI.PDS": ("xmit", "mainframed__xmi__test_pds_msg.xmi"),
    "PYTHON.XMI.SEQ": ("xmseq", "mainframed__xmi__test_seq.xmi"),
}
# PYTHON.XMI.PDS has 27920-byte blocks: more than a 3350 track holds (19069).
TOO_BIG_FOR = {"3350": {"PYTHON.XMI.PDS"}}
FORMS = {"plain": (), "zlib": ("-z",), "bzip2": ("-bz2",)}


def _control(devtype: str, real) -> str:
    lines = [f"REAL{devtype[-2:]} {devtype} 30"]
    for dsn, (method, name) in XMITS.items():
        if dsn not in TOO_BIG_FOR.get(devtype, ()):
            lines.append(f"{dsn} {method} {real / name}")
    lines.append("EMPTY.PS empty trk 1 0 0 ps fb 80 3120")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module", params=[(d, f) for d in ("3390", "3380", "3350") for f in FORMS])
def hercules_volume(request, hercules, real_fixtures, tmp_path_factory):
    devtype, form = request.param
    tmp = tmp_path_factory.mktemp(f"real-{devtype}-{form}")
    image = tmp / f"real.{devtype}"
    return hercules.dasdload(_control(devtype, real_fixtures), image, tmp, *FORMS[form])


def _assert_lists_like_dasdls(hercules, image) -> None:
    theirs = hercules.dasdls_info(image)
    with api.open_volume(image) as vol:
        ours = vol.datasets()
    assert [d.dsname for d in ours] == [row["dsname"] for row in theirs]
    for info, row in zip(ours, theirs, strict=True):
        assert (info.dsorg, info.recfm, info.blksize, info.keylen) == (
            row["dsorg"],
            row["recfm"],
            row["blksize"],
            row["keylen"],
        ), info.dsname
        assert (info.tracks, len(info.extents)) == (row["tracks"], row["extents"]), info.dsname
        if info.lrecl:  # dasdls leaves LRECL blank when it is 0
            assert info.lrecl == row["lrecl"], info.dsname


def _assert_members_match_dasdcat(hercules, image) -> int:
    checked = 0
    with api.open_volume(image) as vol:
        for info in vol.datasets():
            if info.dsorg != "PO":
                continue
            ours = [m["name"] for m in api.list_members(vol, info.dsname)]
            assert sorted(ours) == sorted(hercules.dasdcat_members(image, info.dsname))
            for name in ours:
                expected = hercules.dasdcat_member(image, info.dsname, name)
                assert api.read_bytes(vol, f"{info.dsname}({name})") == expected, name
                checked += 1
    return checked


def test_hercules_built_volume_lists_and_reads_identically(hercules, hercules_volume):
    _assert_lists_like_dasdls(hercules, hercules_volume)
    assert _assert_members_match_dasdcat(hercules, hercules_volume) > 30
    with api.open_volume(hercules_volume) as vol:
        seq = api.read_bytes(vol, "PYTHON.XMI.SEQ")
        assert api.check(vol) == []
    assert seq == hercules.dasdcat_dataset(hercules_volume, "PYTHON.XMI.SEQ")


def test_real_generated_volume(hercules, real_fixtures):
    image = real_fixtures / "GENERATED__hercules-3.13-dasdload__genvol.3390"
    _assert_lists_like_dasdls(hercules, image)
    assert _assert_members_match_dasdcat(hercules, image) > 40


def test_real_cckd64_volume_with_indexed_vtoc(real_fixtures, tmp_path):
    image = real_fixtures / "SDL-Hercules-390__hyperion__3390.cckd64"
    with api.open_volume(image) as vol:
        assert vol.volser == "XXXXXX"
        assert vol.indexed
        names = [d.dsname for d in vol.datasets()]
        assert names == ["SYS1.VTOCIX.XXXXXX", "FISHTEST.FOUR-K"]
        fish = vol.dataset("FISHTEST.FOUR-K")
        assert (fish.dsorg, fish.recfm, fish.lrecl, fish.blksize) == ("PS", "F", 4096, 4096)
        records = api.read_records(vol, "FISHTEST.FOUR-K")
        assert records and all(len(r) == 4096 for r in records)


@pytest.mark.parametrize("devtype", ["2314", "2305", "3330", "3340", "3375", "9345"])
def test_older_device_types_read_identically(hercules, real_fixtures, tmp_path, devtype):
    # Read-only device types: a text PDS with ISPF statistics and aliases (6480-byte
    # blocks fit all of these tracks), built by Hercules, read as Hercules reads it.
    ctl = (
        f"V{devtype} {devtype} 20\n"
        f"REVIEW.HELP xmit {real_fixtures / XMITS['REVIEW.HELP'][1]}\n"
        "EMPTY.PS empty trk 1 0 0 ps fb 80 800\n"
    )
    image = hercules.dasdload(ctl, tmp_path / f"old.{devtype}", tmp_path)
    _assert_lists_like_dasdls(hercules, image)
    assert _assert_members_match_dasdcat(hercules, image) == 15
    with api.open_volume(image) as vol:
        assert vol.device.name == devtype
        with pytest.raises(UnsupportedError):
            api.allocate(vol, "NEW.PS")
