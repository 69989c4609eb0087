"""`ssm drill`: the month at the hot site, end to end, and its readiness report.

The drill itself runs once per module (two days on a tiny system, folder kept) and the
tests look at what it left: the report, the baskets, the untouched backup, and the
disaster restore, which Hercules `dasdls`/`dasdcat`/`dasdseq` must read exactly as they
read production.  The CLI runs a one-day drill in a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from emulator import api
from fixtures.generate import build_system
from ssm import fpfile
from ssm.cli import main
from ssm.compare import compare
from ssm.drill import SCHEME, DrillReport, copy_images, drill, image_bytes, image_files

SEED = 2


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def drilled(tmp_path_factory) -> tuple[DrillReport, Path, list[str]]:
    folder = tmp_path_factory.mktemp("drill") / "month"
    said: list[str] = []
    report = drill(folder, size="tiny", days=2, seed=SEED, progress=said.append)
    return report, folder, said


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".3390")


# -- the report -----------------------------------------------------------------------
def test_drill_verifies_end_to_end(drilled):
    report, folder, said = drilled
    assert report.ok, "\n".join(report.lines())
    assert report.kept and report.folder == str(folder)
    assert report.size == "tiny" and report.days == 2 and report.seed == SEED
    assert report.volumes == ["SYSRES", "USER01"]
    assert report.full_bytes == image_bytes(images_in(folder / "production"))
    assert [d.day for d in report.day_reports] == [1, 2]
    for d in report.day_reports:
        assert d.verified and d.import_verified and d.differences == 0 and not d.conflicts
        assert d.members_changed > 0 and d.datasets_changed > 0
        # cumulative: at least what changed today (an object changed twice counts once)
        assert d.cumulative_members + d.cumulative_datasets > 0
        assert 0 < d.basket_bytes < d.full_bytes and d.full_bytes == report.full_bytes
        assert d.ratio == pytest.approx(d.basket_bytes / d.full_bytes)
        assert d.operations > 0 and d.applied > 0
        assert d.export_seconds > 0 and d.import_seconds > 0 and d.restore_seconds > 0
        assert Path(d.basket).stat().st_size == d.basket_bytes
    assert report.day_reports[1].date > report.day_reports[0].date
    dis = report.disaster
    assert dis is not None and dis.verified
    assert dis.after_day == 2 and dis.basket == report.day_reports[-1].basket
    assert dis.import_verified and not dis.conflicts and not dis.differences
    assert not dis.check_findings and dis.reimport_noop and dis.error is None
    # progress was reported step by step
    assert said[0].startswith("building production") and said[-1] == "done"
    assert any("disaster" in s for s in said) and any("day 2/2" in s for s in said)


def test_report_text_and_json(drilled):
    report, _folder, _said = drilled
    text = "\n".join(report.lines())
    assert "READY" in text and "NOT READY" not in text
    assert "SYSRES, USER01" in text and "Disaster after day 2" in text
    assert "no differences" in text and "already applied" in text
    assert "untouched" in text  # the scheme is explained
    rows = [line for line in report.lines() if line[:3].strip() in ("1", "2")]
    assert len(rows) == 2 and all(row.rstrip().endswith("yes") for row in rows)
    doc = json.loads(json.dumps(report.to_json(), sort_keys=True))
    assert doc["ok"] is True and doc["scheme"] == SCHEME
    assert [d["verified"] for d in doc["day_reports"]] == [True, True]
    assert doc["disaster"]["verified"] is True
    assert doc["day_reports"][0]["basket_bytes"] == report.day_reports[0].basket_bytes


# -- what the drill left behind -------------------------------------------------------
def test_backup_untouched_and_baskets_cumulative(drilled, tmp_path):
    report, folder, _said = drilled
    # The generator is deterministic: the month-start backup must still be, byte for
    # byte, the system as first built.
    fresh = build_system(tmp_path / "fresh", seed=SEED, size="tiny", volumes=2)
    backup = images_in(folder / "hotsite" / "backup")
    assert [p.name for p in backup] == [p.name for p in fresh]
    assert [sha(p) for p in backup] == [sha(p) for p in fresh]
    baskets = sorted((folder / "hotsite" / "baskets").iterdir())
    assert [b.name for b in baskets] == ["day01.basket", "day02.basket"]
    fps = folder / "fingerprints"
    base = fpfile.read(fps / "month-start.ssmfp")
    day2 = fpfile.read(fps / "day02.ssmfp")
    # the cumulative basket carries every change since the month start
    assert not compare(base, day2).equal
    assert compare(day2, fpfile.read(fps / "standby-day02.ssmfp")).equal


def test_disaster_restore_equals_production(drilled):
    report, folder, _said = drilled
    production = images_in(folder / "production")
    restored = images_in(folder / "disaster")
    assert [p.name for p in restored] == [p.name for p in production]
    from ssm.fingerprint import fingerprint

    assert compare(fingerprint(production), fingerprint(restored)).equal
    for prod, rest in zip(production, restored, strict=True):
        with api.open_volume(prod) as pv, api.open_volume(rest) as rv:
            assert pv.volser == rv.volser
            assert not api.check(rv)
            pnames = sorted(i.dsname for i in api.list_datasets(pv))
            assert pnames == sorted(i.dsname for i in api.list_datasets(rv))


def _changed_objects(folder: Path):
    """(dsname, member) of members and (dsname, None) of sequential data sets that
    differ between the month start and the last evening, on production now."""
    fps = folder / "fingerprints"
    days = sorted(fps.glob("day*.ssmfp"))
    diff = compare(fpfile.read(fps / "month-start.ssmfp"), fpfile.read(days[-1]))
    members = [(m.dsname, m.member) for m in diff.members if m.change != "deleted"]
    datasets = [d.dsname for d in diff.datasets if d.change in ("changed", "added", "renamed")]
    return members, datasets, diff


@pytest.mark.oracle
def test_hercules_reads_the_restore_as_production(drilled, hercules, tmp_path):
    """dasdls lists the same data sets with the same DCB; dasdcat prints every changed
    member identically; dasdseq reads changed FB sequential data sets identically."""
    report, folder, _said = drilled
    production = images_in(folder / "production")
    restored = images_in(folder / "disaster")
    members, datasets, diff = _changed_objects(folder)
    assert members and datasets, diff.to_json()

    def dcb_rows(image):
        rows = hercules.dasdls_info(image)
        return sorted((r["dsname"], r["dsorg"], r["recfm"], r["lrecl"], r["blksize"]) for r in rows)

    for prod, rest in zip(production, restored, strict=True):
        assert sorted(hercules.dasdls(prod)) == sorted(hercules.dasdls(rest))
        assert dcb_rows(prod) == dcb_rows(rest)

    def holder(images, dsname):
        for image in images:
            if dsname in hercules.dasdls(image):
                return image
        raise AssertionError(f"{dsname} on no volume")

    checked_members = 0
    for dsname, member in members:
        prod, rest = holder(production, dsname), holder(restored, dsname)
        assert hercules.dasdcat_members(prod, dsname) == hercules.dasdcat_members(rest, dsname)
        assert hercules.dasdcat_member(prod, dsname, member) == hercules.dasdcat_member(
            rest, dsname, member
        ), (dsname, member)
        checked_members += 1
    assert checked_members >= 3
    checked_seq = 0
    for dsname in datasets:
        prod, rest = holder(production, dsname), holder(restored, dsname)
        with api.open_volume(prod) as vol:
            info = vol.dataset(dsname)
        if info.dsorg != "PS":
            continue
        if info.recfm.startswith("F"):
            assert hercules.dasdseq(prod, dsname, tmp_path) == hercules.dasdseq(
                rest, dsname, tmp_path
            ), dsname
        else:  # RECFM V: dasdseq reads F/FB only; compare the records through the API
            with api.open_volume(prod) as pv, api.open_volume(rest) as rv:
                assert api.read_records(pv, dsname) == api.read_records(rv, dsname), dsname
        checked_seq += 1
    assert checked_seq >= 1


@pytest.mark.parametrize("seed", [3, 4])
def test_drill_content_and_secondary_change_same_day(tmp_path, seed):
    # seeds where a data set gets records and a new secondary quantity the same day
    report = drill(tmp_path / "d", size="tiny", days=2, seed=seed)
    assert report.ok, "\n".join(report.lines())


# -- helpers and refusals -------------------------------------------------------------
def test_copy_images_and_sizes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.3390").write_bytes(b"x" * 10)
    (src / "b.3390").write_bytes(b"y" * 7)
    (src / "b_1.3390").write_bytes(b"z" * 5)  # a second piece of a split image
    paths = [src / "a.3390", src / "b.3390"]
    assert [f.name for f in image_files(paths[1])] == ["b.3390", "b_1.3390"]
    assert image_bytes(paths) == 22
    copies = copy_images(paths, tmp_path / "dst")
    assert copies == [tmp_path / "dst" / "a.3390", tmp_path / "dst" / "b.3390"]
    assert (tmp_path / "dst" / "b_1.3390").read_bytes() == b"z" * 5
    # A volume created over 2 GB is named by its first piece: name_1, name_2, ...
    (src / "c_1.3390").write_bytes(b"1")
    (src / "c_2.3390").write_bytes(b"2")
    assert [f.name for f in image_files(src / "c_1.3390")] == ["c_1.3390", "c_2.3390"]


def test_drill_refuses_bad_arguments(tmp_path):
    from emulator.errors import ConflictError

    with pytest.raises(ValueError, match="unknown size"):
        drill(tmp_path / "x", size="huge")
    with pytest.raises(ValueError, match="days"):
        drill(tmp_path / "y", days=0)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("mine")
    with pytest.raises(ConflictError, match="empty"):
        drill(busy, days=1)
    assert (busy / "something").read_text() == "mine"  # nothing of the caller's touched


# -- the command ----------------------------------------------------------------------
def test_cli_drill_one_day(capsys):
    code = main(["drill", "--days", "1", "--size", "tiny", "--json"])
    cap = capsys.readouterr()
    assert code == 0, cap.out + cap.err
    assert cap.err == ""  # no progress when stderr is not a terminal
    doc = json.loads(cap.out)
    assert doc["ok"] is True and len(doc["day_reports"]) == 1
    assert doc["kept"] is False and not os.path.exists(doc["folder"])  # temp removed


def test_cli_drill_text_and_keep(capsys, tmp_path):
    code = main(["drill", "--days", "1", "--seed", "5", "--keep", str(tmp_path / "kept")])
    cap = capsys.readouterr()
    assert code == 0, cap.out + cap.err
    assert "READY" in cap.out and f"Folder kept: {tmp_path / 'kept'}" in cap.out
    assert (tmp_path / "kept" / "hotsite" / "baskets" / "day01.basket").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--size", "huge"], "invalid choice: 'huge'"),
        (["--days", "0"], "at least 1"),
        (["--volumes", "12"], "volumes"),
    ],
)
def test_cli_drill_errors(capsys, args, fragment):
    code = main(["drill", *args])
    cap = capsys.readouterr()
    assert code == 2, cap
    assert fragment in cap.err and "Traceback" not in cap.err
