"""Dumps into baskets: `ssm export --full` from XMIT, unload and tape files.

Each real dump is exported, imported onto an empty volume, and the result must hold the
same members and bytes as receiving the dump directly with the emulator.
"""

from __future__ import annotations

import pytest

from emulator import api
from emulator.errors import EmulatorError
from emulator.interchange import unload, xmit
from ssm.apply import import_basket
from ssm.export import export

REVHELP = "yetacp__mvs_sysgen__revhelp.xmi"
DDTLMOD = "DERIVED__jake-mainframe__MVSDDT__mvsddt.het.file2.DDTLMOD.iebcopy"
TAPE = "mainframed__xmi__test_tape.aws"


def _contents(image) -> dict:
    out = {}
    with api.open_volume(image) as vol:
        for info in vol.datasets():
            if info.dsorg == "PO":
                for m in api.list_members(vol, info.dsname):
                    out[(info.dsname, m["name"])] = api.read_bytes(
                        vol, f"{info.dsname}({m['name']})"
                    )
            else:
                out[(info.dsname, None)] = api.read_bytes(vol, info.dsname)
    return out


def _export_and_import(tmp_path, source):
    basket = tmp_path / "dump.basket"
    export(basket, images=[source], full=True)
    target = tmp_path / "hot.3390"
    api.create_volume(target, "3390", "HOT001", cyls=30).close()
    result = import_basket(basket, [target])
    assert result.verified
    return target


def test_xmit_dump_to_basket(real_fixtures, tmp_path):
    target = _export_and_import(tmp_path, real_fixtures / REVHELP)
    direct = tmp_path / "direct.3390"
    with api.create_volume(direct, "3390", "DIRECT", cyls=30) as vol:
        xmit.receive(real_fixtures / REVHELP, vol)
    assert _contents(target) == _contents(direct)
    assert len(_contents(target)) == 15


def test_unload_dump_to_basket(real_fixtures, tmp_path):
    target = _export_and_import(tmp_path, real_fixtures / DDTLMOD)
    got = _contents(target)
    assert sorted(m for _, m in got) == ["DDT", "DDTSYM", "IGC0023C", "MVSDDT"]
    direct = tmp_path / "direct.3390"
    with api.create_volume(direct, "3390", "DIRECT", cyls=30) as vol:
        unload.load_unload(vol, "DUMP.DERIVEDJ", unload.read_unload_file(real_fixtures / DDTLMOD))
    assert list(got.values()) == list(_contents(direct).values())


def test_tape_dump_to_basket(real_fixtures, tmp_path):
    got = _contents(_export_and_import(tmp_path, real_fixtures / TAPE))
    names = {dsn for dsn, _ in got}
    assert names == {"PYTHON.XMI.SEQ", "PYTHON.XMI.PDS", "PYTHON.SEQ.XMIT", "PYTHON.PDS.XMIT"}


def test_not_a_dump_is_one_clear_error(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("just some text, not a dump\n" * 20)
    with pytest.raises(EmulatorError):
        export(tmp_path / "x.basket", images=[junk], full=True)
    assert not (tmp_path / "x.basket").exists()
