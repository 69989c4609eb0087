"""Members of a partitioned data set on a volume (FORMATS.md 6.1, 6.5; 5.4 DS1LSTAR).

Layout on disk: the directory blocks (KL 8, DL 256) from R1 of relative track 0, an
EOF record, then the members: each one a run of blocks starting at the TTR in its
directory entry and ending with an EOF record.  DS1LSTAR is the TTR of the data set's
final EOF record (as Hercules dasdload writes it), so a new or replaced member is
appended after it and the old copy stays where it was until :meth:`Pds.compress`,
as on MVS.

Every change is one image transaction: member blocks, directory and DSCB fields are
written together or not at all.  The directory is checked for room before anything
is written.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from emulator.dataset import io
from emulator.dataset import records as rf
from emulator.errors import ConflictError, EmulatorError, FormatError, NotFoundError, SpaceError
from emulator.layouts.ckd import COUNT_SIZE, EOT_MARKER, HA_SIZE
from emulator.layouts.pds import DIRBLK_DATALEN, DIRBLK_KEYLEN
from emulator.pds.directory import (
    LM_ATR1,
    LM_ATR1_SCATTER,
    LM_BASIC_SIZE,
    LM_SCATTER_SIZE,
    NAME_LEN,
    DirEntry,
    EntryColumns,
    blocks_needed,
    build_directory,
    load_module_alias_name,
    name_to_bytes,
    note_list_ref,
    parse_blocks,
    relocate_userdata,
    ttr_bytes,
    ttr_from,
    validate_name,
)
from emulator.pds.directory import check as check_directory
from emulator.pds.ispf import IspfStats
from emulator.track import parse_track

DSORG_PO = 0x0200
#: The R of a count field is one byte.
MAX_REC = 255
#: Load-module user data (IHAPDS, FORMATS.md 6.4): FTBO flag byte 1 and the sections
#: it announces, used to build an alias entry's alias section.
LM_FTB1 = 18
LM_FTB1_SSI = 0x10
LM_FTB1_APF = 0x08
LM_FTB1_KNOWN = 0x80 | LM_FTB1_SSI | LM_FTB1_APF
#: FTBO byte 2: AMODE of the main entry point (X'03') and of the alias entry point
#: (X'0C'); an alias entry at the main entry point gets the main AMODE in both.
LM_FTB2 = 19
LM_FTB2_MAIN_AMODE = 0x03
LM_FTB2_ALIAS_AMODE = 0x0C
LM_EPA = 15
LM_SSI_SIZE = 4
LM_APF_SIZE = 2

Ttr = tuple[int, int]


@dataclass(frozen=True)
class Directory:
    """A PDS directory as read from the volume: ``entries`` in directory order (an
    alias's ``alias_of`` resolved as :meth:`Pds.members` does), the TTR of each
    directory block (``block_ttrs``; their number is the directory's size) and the TTR
    of the EOF record after them (``eof``)."""

    entries: list[DirEntry]
    block_ttrs: list[Ttr]
    eof: Ttr

    @property
    def blocks(self) -> int:
        """Directory blocks allocated (room for entries, :func:`blocks_needed`)."""
        return len(self.block_ttrs)


class Pds:
    """A partitioned data set (DSORG=PO) on a :class:`~emulator.volume.volume.Volume`."""

    def __init__(self, vol: Any, dsname: Any):
        self.vol = vol
        name = getattr(dsname, "dsname", dsname)
        info = vol.dataset(name)
        self.dsname = info.dsname
        if not info.dsorg_raw & DSORG_PO:
            raise FormatError(
                f"data set is not partitioned (DSORG {info.dsorg or '?'})",
                self._path,
                self._where(),
            )

    # -- places and names -------------------------------------------------------
    @property
    def _path(self) -> str | None:
        return getattr(getattr(self.vol, "image", None), "path", None)

    def _where(self, member: str | None = None) -> str:
        name = self.dsname if member is None else f"{self.dsname}({member})"
        return f"{self.vol.volser}: {name}"

    @property
    def info(self):
        """The data set's current DatasetInfo (re-read: writes change DS1LSTAR)."""
        return self.vol.dataset(self.dsname)

    def __repr__(self) -> str:
        return f"<Pds {self.dsname} on {self.vol.volser}>"

    # -- raw records -------------------------------------------------------------
    def _walk(
        self, info: Any, start: Ttr, member: str | None = None
    ) -> Iterator[tuple[Ttr, bytes, bytes]]:
        """Records from ``start`` (which must exist) up to and including the next EOF,
        as ((tt, r), key, data); bounded by the data set's tracks.

        Not ``io.read_blocks``: callers need the EOF's TTR, and a TTR that names no
        record must be an error rather than a silent start on the next track.
        """
        tracks = info.tracks
        where = self._where(member)
        tt, r = start
        if not (0 <= tt < tracks and 1 <= r <= MAX_REC):
            raise FormatError(
                f"TTR {tt:04X}{r:02X} is outside the data set ({tracks} tracks)",
                self._path,
                where,
            )
        first = True
        for cur in range(tt, tracks):
            recs = self._track(info, cur)
            if first and not any(rec.rec == r for rec in recs):
                raise FormatError(
                    f"no record R{r} on relative track {tt} (TTR {tt:04X}{r:02X})",
                    self._path,
                    where,
                )
            for rec in recs:
                if first and rec.rec < r:
                    continue
                yield (cur, rec.rec), rec.key, rec.data
                if rec.is_eof:
                    return
            first = False
        raise FormatError(
            f"no EOF record after TTR {tt:04X}{r:02X} before the end of the data set",
            self._path,
            where,
        )

    def _track(self, info: Any, tt: int) -> list:
        trk = self.vol.trk_of(info, tt)
        try:
            return parse_track(self.vol.image.read_track(trk), where=self._where())
        except EmulatorError as exc:
            raise exc.located(self._path) from None

    def _update_records(self, info: Any, updates: dict[Ttr, tuple[bytes, bytes]]) -> None:
        """Rewrite the key and data of existing records in place (same lengths), leaving
        every other byte of their tracks as it is."""
        by_track: dict[int, dict[int, tuple[bytes, bytes]]] = {}
        for (tt, r), kd in updates.items():
            by_track.setdefault(tt, {})[r] = kd
        for tt, recs in sorted(by_track.items()):
            trk = self.vol.trk_of(info, tt)
            image = bytearray(self.vol.image.read_track(trk))
            pos, done = HA_SIZE, set()
            while pos + COUNT_SIZE <= len(image) and image[pos : pos + COUNT_SIZE] != EOT_MARKER:
                rec, kl = image[pos + 4], image[pos + 5]
                dl = int.from_bytes(image[pos + 6 : pos + 8], "big")
                body = pos + COUNT_SIZE
                if pos != HA_SIZE and rec in recs:
                    key, data = recs[rec]
                    if (len(key), len(data)) != (kl, dl):
                        raise FormatError(
                            f"R{rec} on relative track {tt} is KL {kl} DL {dl}, "
                            f"cannot rewrite it as KL {len(key)} DL {len(data)}",
                            self._path,
                            self._where(),
                        )
                    image[body : body + kl + dl] = key + data
                    done.add(rec)
                pos = body + kl + dl
            missing = set(recs) - done
            if missing:
                raise FormatError(
                    f"records {sorted(missing)} not found on relative track {tt}",
                    self._path,
                    self._where(),
                )
            self.vol.write_track(trk, bytes(image))

    # -- directory ---------------------------------------------------------------
    def _directory(self, info: Any) -> tuple[list[DirEntry], list[Ttr], Ttr]:
        """(entries, TTR of each directory block, TTR of the EOF after the directory)."""
        blocks: list[tuple[bytes, bytes]] = []
        ttrs: list[Ttr] = []
        eof: Ttr | None = None
        for n, (ttr, key, data) in enumerate(self._walk(info, (0, 1)), start=1):
            if not key and not data:
                eof = ttr
                break
            if len(key) != DIRBLK_KEYLEN or len(data) != DIRBLK_DATALEN:
                raise FormatError(
                    f"directory block {n} at TTR {ttr[0]:04X}{ttr[1]:02X} is KL {len(key)} "
                    f"DL {len(data)}, not KL {DIRBLK_KEYLEN} DL {DIRBLK_DATALEN}",
                    self._path,
                    self._where(),
                )
            blocks.append((key, data))
            ttrs.append(ttr)
        if eof is None or not blocks:
            raise FormatError(
                "the directory has no blocks before its EOF record", self._path, self._where()
            )
        try:
            entries = parse_blocks(blocks, where=self._where())
        except EmulatorError as exc:
            raise exc.located(self._path) from None
        return entries, ttrs, eof

    def _directory_blocks(self, info: Any) -> list[tuple[bytes, bytes]]:
        out = []
        for _ttr, key, data in self._walk(info, (0, 1)):
            if not key and not data:
                break
            out.append((key, data))
        return out

    def _write_directory(self, info: Any, entries: Sequence[DirEntry], ttrs: list[Ttr]) -> None:
        self._put_directory(info, ttrs, *self._build_directory(entries, ttrs))

    def _build_directory(
        self, entries: Sequence[DirEntry] | EntryColumns, ttrs: list[Ttr]
    ) -> tuple[list[tuple[bytes, bytes]], int]:
        try:
            if isinstance(entries, EntryColumns):
                return entries.build(len(ttrs))
            return build_directory(entries, len(ttrs))
        except EmulatorError as exc:
            raise exc.located(self._path, self._where()) from None

    def _put_directory(
        self, info: Any, ttrs: list[Ttr], blocks: list[tuple[bytes, bytes]], count: int
    ) -> None:
        self._update_records(info, dict(zip(ttrs, blocks, strict=True)))
        self.vol.update(self.dsname, nobdb=count)

    def members(self) -> list[DirEntry]:
        """Every directory entry in directory order, aliases included; an alias's
        ``alias_of`` is the main member with the same TTR or, for a load module, the
        name in the alias section of its user data."""
        entries, _, _ = self._directory(self.info)
        return resolve_aliases(entries)

    def directory(self) -> Directory:
        """The directory, read once: entries, block TTRs and the EOF after them.

        For callers that make many directory changes (an import, a copy): change the
        entries in memory, then :meth:`write_directory` them once."""
        entries, ttrs, eof = self._directory(self.info)
        return Directory(resolve_aliases(entries), ttrs, eof)

    def write_directory(
        self, entries: Sequence[DirEntry] | EntryColumns, directory: Directory | None = None
    ) -> None:
        """Replace the directory with ``entries`` (any order: they are sorted and
        packed as :func:`build_blocks` does) and set DS1NOBDB, in one transaction;
        SpaceError ("directory full") before writing when they do not fit.
        ``directory``: as read by :meth:`directory` (its block TTRs are reused; the
        blocks themselves are rewritten whole).  Entries are stored as given: TTRs,
        alias bits and user data are the caller's."""
        ttrs = directory.block_ttrs if directory is not None else self._directory(self.info)[1]
        blocks, count = self._build_directory(entries, ttrs)  # refusals before any write
        with self.vol.transaction():
            self._put_directory(self.info, ttrs, blocks, count)

    def end_of_data(self, directory: Directory | None = None) -> Ttr:
        """TTR of the data set's final EOF record: new member blocks go after it
        (DS1LSTAR when it points there; see :meth:`_end_of_data`)."""
        d = directory if directory is not None else self.directory()
        return self._end_of_data(self.info, d.eof, d.entries)

    def blocks_of(self, entry: DirEntry) -> list[io.Block]:
        """The blocks from ``entry``'s TTR up to the next EOF record, with their TTRs,
        without reading the directory (``entry`` as :meth:`directory` gave it)."""
        out = []
        for ttr, key, data in self._walk(self.info, entry.ttr, entry.name):
            if not key and not data:
                break
            out.append(io.Block(ttr[0], ttr[1], key, data))
        return out

    def member(self, name: str) -> DirEntry:
        """The directory entry of ``name`` (NotFoundError if there is none)."""
        try:
            key = name_to_bytes(name.upper())
        except FormatError:
            key = None
        for entry in self.members():
            if entry.name_bytes == key:
                return entry
        raise NotFoundError(f"member {name.upper()} not found", self._path, self._where())

    def __contains__(self, name: str) -> bool:
        try:
            self.member(name)
        except NotFoundError:
            return False
        return True

    # -- reading -----------------------------------------------------------------
    def blocks_with_ttr(self, name: str) -> list[io.Block]:
        """The member's blocks with their TTRs (for copying load modules, whose user
        data and note lists hold TTRs)."""
        return self.blocks_of(self.member(name))

    def read_blocks(self, name: str) -> list[tuple[bytes, bytes]]:
        """The member's blocks ``(key, data)`` from its TTR up to its EOF record."""
        return [(b.key, b.data) for b in self.blocks_with_ttr(name)]

    def read(self, name: str) -> list[bytes]:
        """The member's logical records (deblocked by the data set's RECFM and LRECL)."""
        info = self.info
        blocks = [data for _, data in self.read_blocks(name)]
        try:
            return rf.deblock(info.recfm_raw, info.lrecl, blocks, self._where(name.upper()))
        except EmulatorError as exc:
            raise exc.located(self._path) from None

    # -- space -------------------------------------------------------------------
    def _end_of_data(self, info: Any, dir_eof: Ttr, entries: Sequence[DirEntry]) -> Ttr:
        """TTR of the data set's final EOF record.

        DS1LSTAR normally points at it (Hercules); if it points at a data block (as z/OS
        is believed to do) the EOF after that block is used; if it is unset or points
        nowhere, the furthest EOF of the directory and every member is taken.
        """
        tt, r = info.lstar
        if (tt, r) >= dir_eof and tt < info.tracks:
            try:
                last = dir_eof
                for ttr, _, _ in self._walk(info, (tt, r)):
                    last = ttr
                return last
            except FormatError:
                pass  # DS1LSTAR points nowhere: find the end the slow way
        end = dir_eof
        for start in sorted({e.ttr for e in entries}):
            for ttr, _, _ in self._walk(info, start):
                end = max(end, ttr)
        return end

    def _append_at(self, info: Any, end: Ttr) -> tuple[Any, Ttr]:
        """(info, start TTR) for blocks written after the EOF at ``end``."""
        tt, r = end
        if r < MAX_REC:
            return info, (tt, r + 1)
        if tt + 1 >= info.tracks:
            info = self._extend(info)
        return info, (tt + 1, 1)

    def _extend(self, info: Any) -> Any:
        unit, _primary, secondary = info.space
        more = secondary * (self.vol.heads if str(unit).upper().startswith("CYL") else 1)
        if more <= 0:
            raise SpaceError(
                "the data set is full and has no secondary space", self._path, self._where()
            )
        return self.vol.extend(self.dsname, more)

    # -- writing -----------------------------------------------------------------
    def write(
        self,
        name: str,
        records: Iterable[bytes] | None = None,
        stats: IspfStats | None | str = "auto",
        userdata: bytes | None = None,
        userid: str = "IBMUSER",
        *,
        blocks: Iterable[bytes | tuple[bytes, bytes]] | None = None,
        ttr_count: int = 0,
        old_ttrs: Sequence[Ttr] | None = None,
        now: _dt.datetime | None = None,
    ) -> DirEntry:
        """Add or replace member ``name``; returns its new directory entry.

        Give logical ``records`` (blocked by the data set's RECFM/LRECL/BLKSIZE) or
        ready ``blocks`` (data, or (key, data)).  User data: ``userdata`` if given (with
        ``ttr_count`` TTRs in it), else ``stats``: "auto" does what the ISPF editor does
        on SAVE for a text member (a new member, or a replaced one without statistics,
        gets :meth:`IspfStats.new`; a replaced one with statistics gets
        :meth:`IspfStats.updated`), and nothing for RECFM=U (load libraries); an
        :class:`IspfStats` is stored as given; None stores no user data.

        ``old_ttrs`` (the TTR each block had where it came from) relocates the TTRs in
        ``userdata`` and in a load module's note list, as IEBCOPY and dasdload do.

        Aliases of a replaced member keep pointing at the old copy, as on MVS.  The
        directory is checked for room first; the data set takes secondary extents when
        full.  Blocks, EOF, directory and DS1LSTAR/DS1TRBAL/DS1NOBDB form one transaction.
        """
        item = dict(
            records=records, stats=stats, userdata=userdata, userid=userid, blocks=blocks,
            ttr_count=ttr_count, old_ttrs=old_ttrs, now=now,
        )  # fmt: skip
        return self.write_many([(name, item)])[0]

    def write_many(self, members: Iterable[tuple[str, dict]]) -> list[DirEntry]:
        """Add or replace several members in one transaction with ONE directory rewrite.

        ``members``: ``(name, options)`` pairs, the options being :meth:`write`'s
        keyword arguments (``records`` or ``blocks``, ``stats``, ``userdata``,
        ``userid``, ``ttr_count``, ``old_ttrs``, ``now``).  Returns the new entries in
        the order given.  Loading many members (an import, IEBCOPY) costs one directory
        parse and one rebuild instead of one per member.
        """
        members = list(members)
        if not members:
            return []
        info = self.info
        entries, dir_ttrs, dir_eof = self._directory(info)
        current = {e.name: e for e in entries}
        prepared = []
        for raw_name, opts in members:
            name = validate_name(raw_name, self._where())
            data_blocks, probe, old_ttrs = self._prepare(info, name, current.get(name), **opts)
            current[name] = probe
            prepared.append((name, data_blocks, probe, old_ttrs))
        needed = blocks_needed(list(current.values()))
        if needed > len(dir_ttrs):
            raise SpaceError(
                f"directory full: {len(dir_ttrs)} blocks, need {needed}",
                self._path,
                self._where(prepared[-1][0] if len(prepared) == 1 else None),
            )
        written: list[DirEntry] = []
        with self.vol.transaction():
            end = self._end_of_data(info, dir_eof, entries)
            for name, data_blocks, probe, old_ttrs in prepared:
                info, start = self._append_at(info, end)
                result = io.write_blocks(self.vol, info, data_blocks, start=start)
                info = self.info
                end = result.eof
                ttrs = result.ttrs
                if old_ttrs is not None:
                    mapping = dict(zip(old_ttrs, ttrs, strict=True))
                    probe = replace(probe, userdata=relocate_userdata(probe, mapping))
                    self._relocate_note_list(
                        info, probe, mapping, dict(zip(ttrs, data_blocks, strict=True))
                    )
                entry = replace(probe, ttr=ttrs[0] if ttrs else result.eof)
                current[name] = entry
                written.append(entry)
            self._write_directory(info, list(current.values()), dir_ttrs)
        return written

    def _prepare(
        self,
        info: Any,
        name: str,
        old: DirEntry | None,
        records: Iterable[bytes] | None = None,
        stats: IspfStats | None | str = "auto",
        userdata: bytes | None = None,
        userid: str = "IBMUSER",
        blocks: Iterable[bytes | tuple[bytes, bytes]] | None = None,
        ttr_count: int = 0,
        old_ttrs: Sequence[Ttr] | None = None,
        now: _dt.datetime | None = None,
    ) -> tuple[list[tuple[bytes, bytes]], DirEntry, Sequence[Ttr] | None]:
        """Blocks, directory entry (TTR still 0) and old TTRs of one member to write."""
        if (records is None) == (blocks is None):
            raise FormatError(
                "give either records or blocks to write", self._path, self._where(name)
            )
        keyfill = bytes(info.keylen or 0)
        if blocks is not None:
            data_blocks = [
                (bytes(b[0]), bytes(b[1])) if isinstance(b, tuple) else (keyfill, bytes(b))
                for b in blocks
            ]
            try:  # only for the line counts of ISPF statistics
                recs = rf.deblock(info.recfm_raw, info.lrecl, [d for _, d in data_blocks])
            except EmulatorError:
                recs = None
            lines = len(recs) if recs is not None else len(data_blocks)
        else:
            recs = [bytes(r) for r in records]
            try:
                data_blocks = [
                    (keyfill, b) for b in rf.block(info.recfm_raw, info.lrecl, info.blksize, recs)
                ]
            except EmulatorError as exc:
                raise exc.located(self._path, self._where(name)) from None
            lines = len(recs)
        if old_ttrs is not None and len(old_ttrs) != len(data_blocks):
            raise FormatError(
                f"{len(old_ttrs)} old TTRs for {len(data_blocks)} blocks",
                self._path,
                self._where(name),
            )
        if userdata is None:
            userdata, ttr_count = self._auto_userdata(
                info, stats, old, lines, recs, userid, now, name
            )
        probe = DirEntry(name, (0, 0), ttr_count=ttr_count, userdata=bytes(userdata))
        return data_blocks, probe, old_ttrs

    def _auto_userdata(
        self,
        info: Any,
        stats: IspfStats | None | str,
        old: DirEntry | None,
        lines: int,
        recs: list[bytes] | None,
        userid: str,
        now: _dt.datetime | None,
        name: str,
    ) -> tuple[bytes, int]:
        if stats is None:
            return b"", 0
        if isinstance(stats, IspfStats):
            return stats.encode(), 0
        if stats != "auto":
            raise FormatError(
                f"stats must be an IspfStats, None or 'auto', not {stats!r}",
                self._path,
                self._where(name),
            )
        if rf.is_undefined(info.recfm_raw):
            return b"", 0
        when = now or _dt.datetime.now()
        previous = old.ispf if old is not None else None
        if previous is None:
            return IspfStats.new(lines, userid, when).encode(), 0
        try:
            old_recs = self.read(name)
        except EmulatorError:
            old_recs = None
        return previous.updated(lines, userid, when, old=old_recs, new=recs).encode(), 0

    def _relocate_note_list(
        self,
        info: Any,
        entry: DirEntry,
        mapping: dict[Ttr, Ttr],
        written: dict[Ttr, tuple[bytes, bytes]],
    ) -> None:
        """Rewrite the TTRs of a load module's note list (4-byte entries) through
        ``mapping``, as Hercules dasdload's update_note_list does."""
        ref = note_list_ref(entry)
        if ref is None:
            return
        ttr, count = ref
        if ttr not in written:
            raise FormatError(
                f"note list TTR {ttr[0]:04X}{ttr[1]:02X} is not a block of the member",
                self._path,
                self._where(entry.name),
            )
        key, data = written[ttr]
        if len(data) < 4 * count:
            raise FormatError(
                f"note list of {len(data)} bytes is too short for {count} entries",
                self._path,
                self._where(entry.name),
            )
        patched = bytearray(data)
        for i in range(count):
            old = ttr_from(bytes(patched[4 * i : 4 * i + 3]))
            if old in mapping:
                patched[4 * i : 4 * i + 3] = ttr_bytes(mapping[old])
        if bytes(patched) != data:
            written[ttr] = (key, bytes(patched))
            self._update_records(info, {ttr: (key, bytes(patched))})

    # -- directory-only changes ---------------------------------------------------
    def delete(self, name: str) -> list[str]:
        """Delete a member; returns the names removed.  An alias removes only itself; a
        main member removes itself and its aliases (same TTR, or load-module aliases
        naming it).  The data stays until :meth:`compress`."""
        target = self.member(name)
        info = self.info
        entries, dir_ttrs, _ = self._directory(info)
        entries = resolve_aliases(entries)
        if target.alias:
            gone = {target.name}
        else:
            gone = {target.name} | {
                e.name for e in entries if e.alias and e.alias_of == target.name
            }
        keep = [e for e in entries if e.name not in gone]
        with self.vol.transaction():
            self._write_directory(info, keep, dir_ttrs)
        return sorted(gone, key=lambda n: name_to_bytes(n))

    def rename(self, old: str, new: str) -> DirEntry:
        """Rename a member or alias (ConflictError if ``new`` exists).  Like STOW, the
        user data is kept as it is."""
        target = self.member(old)
        new = validate_name(new, self._where(old.upper()))
        info = self.info
        entries, dir_ttrs, _ = self._directory(info)
        if any(e.name == new for e in entries):
            raise ConflictError(f"member {new} already exists", self._path, self._where(new))
        renamed = replace(target, name=new, alias_of=None)
        keep = [e for e in entries if e.name != target.name]
        self._check_room([*keep, renamed], dir_ttrs, new)
        with self.vol.transaction():
            self._write_directory(info, [*keep, renamed], dir_ttrs)
        return renamed

    def alias(self, alias_name: str, target: str) -> DirEntry:
        """Add ``alias_name`` as an alias of ``target``: same TTR and user data, alias
        bit set.  For a load module the alias section (entry point, main member name;
        FORMATS.md 6.4) is filled in when the user data's layout is understood, else the
        user data is copied as it is."""
        main = self.member(target)
        if main.alias and main.alias_of and main.alias_of in self:
            main = self.member(main.alias_of)
        main_name = main.alias_of if main.alias else main.name
        alias_name = validate_name(alias_name, self._where(target.upper()))
        info = self.info
        entries, dir_ttrs, _ = self._directory(info)
        if any(e.name == alias_name for e in entries):
            raise ConflictError(
                f"member {alias_name} already exists", self._path, self._where(alias_name)
            )
        userdata = main.userdata
        if main.ttr_count and main_name:
            userdata = _alias_userdata(main.userdata, main_name, main.alias)
        entry = DirEntry(
            alias_name, main.ttr, alias=True, ttr_count=main.ttr_count, userdata=userdata
        )
        self._check_room([*entries, entry], dir_ttrs, alias_name)
        with self.vol.transaction():
            self._write_directory(info, [*entries, entry], dir_ttrs)
        return replace(entry, alias_of=main_name)

    def _check_room(
        self, entries: Sequence[DirEntry], dir_ttrs: list[Ttr], name: str | None
    ) -> None:
        needed = blocks_needed(entries)
        if needed > len(dir_ttrs):
            raise SpaceError(
                f"directory full: {len(dir_ttrs)} blocks, need {needed}",
                self._path,
                self._where(name),
            )

    # -- compress ----------------------------------------------------------------
    def compress(self) -> dict[str, Ttr]:
        """Rewrite every member contiguously after the directory, as IEBCOPY compress in
        place does: members keep their order, space no entry points at is dropped,
        directory TTRs, user-data TTRs (C-byte count) and note lists are relocated,
        aliases keep pointing at their member, DS1LSTAR/DS1TRBAL are updated.
        Returns {name: new TTR}."""
        info = self.info
        entries, dir_ttrs, dir_eof = self._directory(info)
        runs: list[tuple[Ttr, list[tuple[Ttr, bytes, bytes]], Ttr]] = []
        # One run per distinct TTR, in disk order.  An alias pointing into the middle of
        # another member's blocks (never made by this module) would get its own copy.
        for start in sorted({e.ttr for e in entries}):
            blocks, eof = [], start
            for ttr, key, data in self._walk(info, start):
                if not key and not data:
                    eof = ttr
                    break
                blocks.append((ttr, key, data))
            runs.append((start, blocks, eof))

        mapping: dict[Ttr, Ttr] = {}
        with self.vol.transaction():
            if not runs:
                io.write_blocks(self.vol, info, [], start=dir_eof)
            end = dir_eof
            written: dict[Ttr, tuple[bytes, bytes]] = {}
            for _start, blocks, eof in runs:
                info, start = self._append_at(info, end)
                kd = [(key, data) for _, key, data in blocks]
                result = io.write_blocks(self.vol, info, kd, start=start)
                info = self.info
                for (old, _, _), new, pair in zip(blocks, result.ttrs, kd, strict=True):
                    mapping[old] = new
                    written[new] = pair
                mapping[eof] = result.eof
                end = result.eof
            new_entries = []
            for e in entries:
                moved = replace(e, ttr=mapping[e.ttr], userdata=relocate_userdata(e, mapping))
                new_entries.append(moved)
                ref = note_list_ref(e)
                if ref is not None and ref[0] in mapping:
                    self._relocate_note_list(info, moved, mapping, written)
            self._write_directory(info, new_entries, dir_ttrs)
        return {e.name: e.ttr for e in new_entries}

    # -- checking ----------------------------------------------------------------
    def check(self) -> list[str]:
        """Findings: directory problems (order, keys, garbage), members whose TTR or
        chain is broken, user-data TTRs outside their member."""
        where = self._where()
        info = self.info
        try:
            entries, _, dir_eof = self._directory(info)
        except EmulatorError as exc:
            return [str(exc)]
        findings = [f"{where}: {p}" for p in check_directory(self._directory_blocks(info))]
        spans: dict[Ttr, set[Ttr] | str] = {}
        for e in entries:
            if e.ttr not in spans:
                try:
                    spans[e.ttr] = {ttr for ttr, _, _ in self._walk(info, e.ttr)}
                except EmulatorError as exc:
                    spans[e.ttr] = exc.message
            span = spans[e.ttr]
            if isinstance(span, str):
                findings.append(f"{where}: member {e.name}: {span}")
                continue
            if e.ttr <= dir_eof:
                findings.append(
                    f"{where}: member {e.name}: TTR {e.ttr[0]:04X}{e.ttr[1]:02X} is inside the directory"
                )
            for ttr in e.user_ttrs:
                if ttr != (0, 0) and ttr not in span:
                    findings.append(
                        f"{where}: member {e.name}: user-data TTR {ttr[0]:04X}{ttr[1]:02X} "
                        "is not a block of the member"
                    )
        return findings


def resolve_aliases(entries: Sequence[DirEntry]) -> list[DirEntry]:
    """``entries`` with each alias's ``alias_of`` set: the first main member with the
    same TTR or, for a load module, the name in the alias section of its user data
    (None when neither names one)."""
    mains: dict[Ttr, str] = {}
    for e in entries:
        if not e.alias:
            mains.setdefault(e.ttr, e.name)
    out = []
    for e in entries:
        if e.alias:
            e = replace(e, alias_of=mains.get(e.ttr) or load_module_alias_name(e))
        out.append(e)
    return out


def _alias_userdata(data: bytes, main_name: str, from_alias: bool) -> bytes:
    """Load-module user data for an alias of the member whose user data is ``data``.

    If ``data`` already has an alias section (it came from an alias) only the main
    member name is set.  Otherwise the alias section (entry point = the main entry
    point, PDS2MNM = main name) is inserted after the basic and scatter sections, the
    alias AMODE bits are set from the main AMODE, and the SSI/APF sections are moved
    behind the alias section, padding to whole halfwords; user data
    with flags this does not understand is returned unchanged.
    """
    if len(data) < LM_BASIC_SIZE:
        return data
    prefix_len = LM_BASIC_SIZE + (LM_SCATTER_SIZE if data[LM_ATR1] & LM_ATR1_SCATTER else 0)
    name = name_to_bytes(main_name)
    if from_alias:
        off = prefix_len + 3
        if len(data) < off + NAME_LEN:
            return data
        return data[:off] + name + data[off + NAME_LEN :]
    ftb1 = data[LM_FTB1]
    if ftb1 & ~LM_FTB1_KNOWN or len(data) < prefix_len:
        return data
    pos = prefix_len
    ssi = apf = b""
    if ftb1 & LM_FTB1_SSI:
        pos += pos % 2
        ssi = data[pos : pos + LM_SSI_SIZE]
        pos += LM_SSI_SIZE
    if ftb1 & LM_FTB1_APF:
        apf = data[pos : pos + LM_APF_SIZE]
        pos += LM_APF_SIZE
    if pos > len(data) or any(data[pos:]):
        return data  # more than the sections we know of
    out = bytearray(data[:prefix_len] + data[LM_EPA : LM_EPA + 3] + name)
    ftb2 = out[LM_FTB2]
    out[LM_FTB2] = (ftb2 & ~LM_FTB2_ALIAS_AMODE) | ((ftb2 & LM_FTB2_MAIN_AMODE) << 2)
    if ssi:
        out += b"\x00" * (len(out) % 2) + ssi
    out += apf
    out += b"\x00" * (len(out) % 2)
    if len(out) > 62:
        return data
    return bytes(out)


__all__ = ["Directory", "Pds", "resolve_aliases"]
