"""Hostile input (docs/RELIABILITY.md "Hostile input (fuzzing)"): every input saved in
tests/fuzz_corpus/ by ``tools/fuzz.py --save`` (each once crashed, hung, allocated too
much or left a half-written image) goes through its reader again and may only give the
project's errors; a short seeded run of every fuzz target; and every byte of a basket
made by ``ssm export`` flipped, each copy refused by ``ssm import`` before it writes."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import load_tool

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fuzz_corpus"

fuzz = load_tool("fuzz")

#: Executions of each target in the seeded run (about 5 s in all on one core).
SHORT_RUN = 40
#: Seconds one execution may take here: generous, for a machine shared with other
#: work (the fuzzer's own limit is 5 s); a loop that does not end still fails.
TIMEOUT = 60


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Seeds and the consumers' context, made by the project's own writers."""
    previous = signal.signal(signal.SIGALRM, fuzz._on_alarm)
    try:
        yield fuzz.build_seeds(tmp_path_factory.mktemp("fuzz"))
    finally:
        signal.signal(signal.SIGALRM, previous)


def _corpus() -> list:
    if not CORPUS.is_dir():
        return []
    return [
        pytest.param(name, path, id=f"{name}/{path.name}")
        for name, path in fuzz.corpus_files(CORPUS)
    ]


def test_corpus_is_complete():
    """Each saved input has its note, and names a target that exists."""
    for folder in CORPUS.iterdir():
        assert folder.name in fuzz.TARGETS, folder
        for path in folder.glob("*.bin*"):
            note = path.with_name(path.name.split(".")[0] + ".txt")
            assert note.is_file() and f"target: {folder.name}" in note.read_text(), note


@pytest.mark.parametrize("name,path", _corpus())
def test_corpus_gives_only_our_errors(made, name, path):
    _, ctx = made
    data = fuzz.corpus_bytes(path)
    ctx = fuzz.context_for(name, path, ctx)  # e.g. the volume a basket was made for
    outcome, signature, detail = fuzz.run_one(
        fuzz.TARGETS[name], data, ctx, timeout=TIMEOUT, trace=True
    )
    assert outcome in ("ok", "error"), f"{signature}\n{detail}"


@pytest.mark.parametrize("name", list(fuzz.TARGETS))
def test_short_seeded_run(made, name):
    seeds, ctx = made
    target = fuzz.TARGETS[name]
    bad = []
    for index in range(SHORT_RUN):
        inp = fuzz.make_input(seeds[name], target, 7, index)
        outcome, signature, detail = fuzz.run_one(
            target, inp.data(), ctx, timeout=TIMEOUT, trace=True
        )
        if outcome in fuzz.BAD:
            steps = "; ".join(inp.describe())
            bad.append(f"execution {index}: {outcome}: {signature}: {steps}\n{detail}")
    assert not bad, "\n".join(bad)


def test_inputs_are_made_again_from_their_number(made):
    seeds, _ = made
    for name, target in fuzz.TARGETS.items():
        a = fuzz.make_input(seeds[name], target, 3, 11).data()
        assert a == fuzz.make_input(seeds[name], target, 3, 11).data()
        assert a != seeds[name][0].data or name in ("fpfile", "basket")


def test_resealed_files_pass_their_digests(made):
    """A resealed fingerprint file or basket reads back: the fuzzer gets past the digests."""
    from ssm import fpfile
    from ssm.basket import fmt

    seeds, ctx = made
    fp = seeds["fpfile"][0]
    assert fpfile.loads(fuzz.fp_seal(fp.sections)).members.tobytes() == (
        fpfile.loads(fp.data).members.tobytes()
    )
    basket = seeds["basket"][0]
    path = ctx.workdir / "resealed.basket"
    path.write_bytes(fuzz.basket_seal(basket.sections))
    with fmt.verify_basket(path) as resealed, fmt.verify_basket(_write(ctx, basket.data)) as made_:
        assert resealed.operations == made_.operations
        assert [resealed.payload(i) for i in range(resealed.payload_count)] == [
            made_.payload(i) for i in range(made_.payload_count)
        ]


def _write(ctx, data: bytes) -> Path:
    path = ctx.workdir / "original.basket"
    path.write_bytes(data)
    return path


def test_every_flipped_byte_of_an_exported_basket_is_refused_before_writing(made, tmp_path):
    seeds, ctx = made
    result = fuzz.basket_flips(seeds["basket"][0].data, ctx.basket_target, tmp_path)
    assert result["flipped"] == result["size"] > 1000
    assert result["missed"] == []
    assert result["detected"] == result["flipped"]


def test_blank_member_name_in_an_unload_names_the_file(made):
    """Found by the fuzzer as an error without a file: the load failed on the name."""
    from emulator import codepage
    from emulator.errors import FormatError
    from emulator.interchange import unload as ul

    seeds, _ = made
    data = bytearray(seeds["unload"][1].data)
    pos = data.find(codepage.blank_pad("MEM0", 8))
    data[pos : pos + 8] = codepage.blank_pad("", 8)
    with pytest.raises(FormatError, match="blank member name") as info:
        ul.parse_unload_bytes(bytes(data), "blank.unload")
    assert info.value.path == "blank.unload"
