"""Gather the logical content of data sets and members from track slots (Numba).

docs/formats/fingerprint.md "Content digests" defines the *stream* these kernels
build; FORMATS.md 1.2 (track images), 6.5 (members: blocks from a TTR to an EOF
record) and 7.2 (F, V, VS and U blocks) define what they read.

Two steps, both bounded by the arrays they are given (nothing read from a slot can
make them index outside it or loop forever):

* :func:`walk_records` walks the count fields of a list of track slots (``rows`` of a
  2-D ``slots`` array: an ``np.memmap`` view of a plain image, or a buffer of
  decompressed tracks) and returns a record table in track order (R0 left out).
* :func:`emit_records` appends records of that table to an output chunk as stream
  bytes (per ``MODE_*``), resumable across chunks through a small ``state`` array,
  and cuts record groups by content (``cut_hash``); :func:`emit_members` emits many
  small members into one chunk with their end offsets, for one BLAKE3 call each.
* :func:`parse_directory` reads a PDS directory (FORMATS.md 6.1, 6.2) from the same
  record table into arrays.

Bytes are copied with LLVM's ``memcpy`` and loaded as unaligned 64-bit words through
two small ``@intrinsic`` functions: Numba's own slice assignment ran at a quarter of
memory speed.  Every offset given to them has been checked against the slot row (by
the walk) and the output chunk (by the capacity test before each block).

Layout offsets (home address size, count-field size and field offsets) are passed in
as arguments (:data:`emulator.kernels.hashing.LAYOUT`), never read from globals.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

MODE_F = 0  # block data concatenated (records split at LRECL when ``split`` > 0)
MODE_V = 1  # BDW/RDW: each record as len(4, BE) || data
MODE_VS = 2  # BDW/SDW, spanned records reassembled: len(4, BE) || data
MODE_U = 3  # each block is a record: len(4, BE) || data
MODE_KEYED = 4  # each block: KL(1) || key || len(4, BE) || data

# state slots of emit_records
S_POS = 0  # write position in the output chunk
S_COMMIT = 1  # bytes of the chunk that are final (an open spanned record is not)
S_BASE = 2  # stream offset of the chunk's byte 0
S_RECS = 3  # logical records completed so far
S_DONE = 4  # 1 when the EOF record was reached
S_ERR = 5  # first error code, 0 if none
S_SPAN = 6  # 1 while a spanned record is open
S_SPFX = 7  # chunk position of the open spanned record's length prefix
S_GBYTES = 8  # stream bytes in the current group
S_GRECS = 9  # records in the current group
S_NG = 10  # group boundaries written in this call
S_BLOCKS = 11  # blocks emitted
S_ERRREC = 12  # record-table index of the block with the error
S_SKIP = 13  # stream bytes of the first block to leave out (resuming inside a block)
NSTATE = 16

# error codes (S_ERR, member status)
E_OK = 0
E_BDW = 1  # bad block descriptor word
E_RDW = 2  # bad record/segment descriptor word
E_SPAN = 3  # spanned segments out of order
E_NO_EOF = 4  # no EOF record before the end of the tracks read
E_TTR = 5  # a member's TTR names no record
E_TOO_BIG = 6  # member does not fit an empty chunk: stream it with emit_records
E_TRACK = 7  # a track slot is malformed (no end marker)

#: Bytes a block can add to the stream beyond its key and data (U/KEYED prefixes).
BLOCK_OVERHEAD = 5

# cut-hash constants (docs/formats/fingerprint.md "Cut hash")
_K1 = np.uint64(0x9E3779B185EBCA87)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_K3 = np.uint64(0x165667B19E3779F9)
_K4 = np.uint64(0x27D4EB2F165667C5)


@nb.njit(cache=True, nogil=True)
def _walk_track(
    slots, row, k, ha_size, count_size, off_rec, off_kl, off_dl,
    store, base, rec_k, rec_r, rec_kl, rec_dl, rec_pos,
):  # fmt: skip
    """Walk one slot row; returns (records R1.., error code); stores them from
    ``base`` when ``store``."""
    limit = slots.shape[1]
    if limit < ha_size + count_size:
        return 0, 1
    pos = ha_size
    m = 0
    first = True
    while True:
        if pos + count_size > limit:
            return m, 2
        eot = True
        for i in range(count_size):
            if slots[row, pos + i] != 0xFF:
                eot = False
                break
        if eot:
            return m, 0
        r = slots[row, pos + off_rec]
        kl = np.int64(slots[row, pos + off_kl])
        dl = (np.int64(slots[row, pos + off_dl]) << 8) | np.int64(slots[row, pos + off_dl + 1])
        nxt = pos + count_size + kl + dl
        if nxt > limit:
            return m, 3
        if not (first and r == 0):
            if store:
                j = base + m
                rec_k[j] = k
                rec_r[j] = r
                rec_kl[j] = kl
                rec_dl[j] = dl
                rec_pos[j] = pos
            m += 1
        first = False
        pos = nxt


@nb.njit(cache=True, nogil=True)
def walk_records(slots, rows, ha_size, count_size, off_rec, off_kl, off_dl):
    """Record table of the tracks ``slots[rows[k]]``, k in order.

    Returns ``(starts, rec_k, rec_r, rec_kl, rec_dl, rec_pos, err)``: the records of
    track k are ``starts[k]:starts[k+1]``; ``rec_pos`` is the count field's offset in
    its slot row; ``err[k]`` is non-zero when the track has no end marker inside its
    slot (its records up to the damage are kept; a record running past the slot is
    not).  The first record is left out when its record number is 0 (R0).
    """
    n = len(rows)
    err = np.zeros(n, dtype=np.int8)
    starts = np.zeros(n + 1, dtype=np.int64)
    d32 = np.zeros(0, dtype=np.int32)
    d8 = np.zeros(0, dtype=np.uint8)
    for k in range(n):
        m, e = _walk_track(
            slots, rows[k], k, ha_size, count_size, off_rec, off_kl, off_dl,
            False, 0, d32, d8, d32, d32, d32,
        )  # fmt: skip
        starts[k + 1] = starts[k] + m
        err[k] = e
    total = starts[n]
    rec_k = np.empty(total, dtype=np.int32)
    rec_r = np.empty(total, dtype=np.uint8)
    rec_kl = np.empty(total, dtype=np.int32)
    rec_dl = np.empty(total, dtype=np.int32)
    rec_pos = np.empty(total, dtype=np.int32)
    for k in range(n):
        _walk_track(
            slots, rows[k], k, ha_size, count_size, off_rec, off_kl, off_dl,
            True, starts[k], rec_k, rec_r, rec_kl, rec_dl, rec_pos,
        )  # fmt: skip
    return starts, rec_k, rec_r, rec_kl, rec_dl, rec_pos, err


@intrinsic
def memcpy_at(typingctx, dst, doff, src, soff, n):
    """memcpy(dst.data + doff, src.data + soff, n): LLVM's memcpy on the arrays' bytes.
    Callers guarantee the ranges lie inside both arrays (C-contiguous, uint8)."""
    sig = types.void(dst, types.intp, src, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        d, do, s, so, count = args
        darr = context.make_array(signature.args[0])(context, builder, d)
        sarr = context.make_array(signature.args[2])(context, builder, s)
        byte = ir.IntType(8).as_pointer()
        dp = builder.gep(builder.bitcast(darr.data, byte), [do])
        sp = builder.gep(builder.bitcast(sarr.data, byte), [so])
        cgutils.raw_memcpy(builder, dp, sp, count, 1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _load64(typingctx, arr, off):
    """The 8 bytes at ``arr.data + off`` as a native (little-endian) uint64."""
    sig = types.uint64(arr, types.intp)

    def codegen(context, builder, signature, args):
        a, o = args
        aarr = context.make_array(signature.args[0])(context, builder, a)
        p = builder.gep(builder.bitcast(aarr.data, ir.IntType(8).as_pointer()), [o])
        return builder.load(builder.bitcast(p, ir.IntType(64).as_pointer()), align=1)

    return sig, codegen


@intrinsic
def _byte(typingctx, arr, off):
    """The byte at ``arr.data + off`` (flat offset into a C-contiguous array)."""
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, signature, args):
        a, o = args
        aarr = context.make_array(signature.args[0])(context, builder, a)
        p = builder.gep(builder.bitcast(aarr.data, ir.IntType(8).as_pointer()), [o])
        return builder.zext(builder.load(p), ir.IntType(64))

    return sig, codegen


@nb.njit(cache=True, nogil=True, inline="always")
def _le64(out, s, n):
    if n >= 8:
        return _load64(out, s)
    v = np.uint64(0)
    for i in range(n):
        v |= np.uint64(out[s + i]) << np.uint64(8 * i)
    return v


@nb.njit(cache=True, nogil=True)
def cut_hash(out, s, e):
    """Cut hash of the record data ``out[s:e]``: its length and up to 24 sampled bytes
    (first 8, last 8, 8 around the middle) mixed by a 64-bit finaliser."""
    n = e - s
    a = _le64(out, s, min(n, 8))
    b = _load64(out, e - 8) if n >= 8 else np.uint64(0)
    c = _load64(out, s + n // 2 - 4) if n >= 16 else np.uint64(0)
    h = a * _K1
    bb = b * _K2
    h ^= (bb << np.uint64(31)) | (bb >> np.uint64(33))
    cc = c * _K3
    h ^= (cc << np.uint64(17)) | (cc >> np.uint64(47))
    h ^= np.uint64(n) * _K4
    h ^= h >> np.uint64(33)
    h *= _K2
    h ^= h >> np.uint64(29)
    h *= _K3
    h ^= h >> np.uint64(32)
    return h


@nb.njit(cache=True, nogil=True, inline="always")
def _put_len(out, pos, n):
    out[pos] = (n >> 24) & 0xFF
    out[pos + 1] = (n >> 16) & 0xFF
    out[pos + 2] = (n >> 8) & 0xFF
    out[pos + 3] = n & 0xFF


@nb.njit(cache=True, nogil=True)
def emit_records(
    slots,
    rows,
    rec_k,
    rec_kl,
    rec_dl,
    rec_pos,
    i0,
    i1,
    mode,
    split,
    count_size,
    st,
    out,
    cdc,
    gmin,
    gmax,
    gend,
    grec,
    gblk,
    gskip,
):
    """Append the stream bytes of records ``i0 .. i1-1`` (stopping at an EOF record)
    to ``out`` from ``st[S_POS]``; returns the index of the next record to emit.

    ``slots`` must be C-contiguous uint8 (rows of one track slot each).  Returns early,
    before a block that might not fit, so the caller can hash ``out[:st[S_COMMIT]]``
    and call again; on an EOF record sets ``st[S_DONE]`` and returns its index; on a
    descriptor error sets ``st[S_ERR]``/``st[S_ERRREC]`` and returns.  ``gend``/``grec``
    receive group boundaries (stream offset after the record, records so far) when
    ``cdc``, and ``gblk``/``gskip`` where the next group starts (record-table index of
    its block, stream bytes of that block before it); all must hold
    ``len(out) // gmin + 2``.  ``st[S_SKIP]`` bytes of the first block's stream are
    left out (to resume at such a place; not for VS).
    """
    cap = len(out)
    rowlen = slots.shape[1]
    pos = st[S_POS]
    base = st[S_BASE]
    recs = st[S_RECS]
    gbytes = st[S_GBYTES]
    grecs = st[S_GRECS]
    span = st[S_SPAN]
    spfx = st[S_SPFX]
    blocks = st[S_BLOCKS]
    skip = st[S_SKIP]
    ng = 0
    err = 0
    i = i0
    while i < i1:
        kl = np.int64(rec_kl[i])
        dl = np.int64(rec_dl[i])
        if kl == 0 and dl == 0:
            st[S_DONE] = 1
            break
        if pos + kl + dl + BLOCK_OVERHEAD > cap:
            break
        key = np.int64(rows[rec_k[i]]) * rowlen + np.int64(rec_pos[i]) + count_size
        data = key + kl
        bstart = base + pos - skip  # stream offset of this block's first byte
        if mode == MODE_F:
            sk = min(skip, dl)
            memcpy_at(out, pos, slots, data + sk, dl - sk)
            dl -= sk
            if not cdc:
                recs += (dl + split - 1) // split if split > 0 else (1 if dl else 0)
            elif split > 0:
                s = pos
                end = pos + dl
                while s < end:
                    e = min(s + split, end)
                    recs += 1
                    grecs += 1
                    gbytes += e - s
                    if gbytes >= gmax or (
                        gbytes >= gmin and np.int64(cut_hash(out, s, e) >> np.uint64(48)) < e - s
                    ):
                        gend[ng] = base + e
                        grec[ng] = recs
                        gblk[ng] = i
                        gskip[ng] = base + e - bstart
                        ng += 1
                        gbytes = 0
                        grecs = 0
                    s = e
            elif dl > 0:
                recs += 1
                grecs += 1
                gbytes += dl
                if gbytes >= gmax or (
                    gbytes >= gmin and np.int64(cut_hash(out, pos, pos + dl) >> np.uint64(48)) < dl
                ):
                    gend[ng] = base + pos + dl
                    grec[ng] = recs
                    gblk[ng] = i
                    gskip[ng] = base + pos + dl - bstart
                    ng += 1
                    gbytes = 0
                    grecs = 0
            pos += dl
        elif skip > 0 and (mode == MODE_U or mode == MODE_KEYED):
            pass  # resuming after this block: it was the last of a group
        elif mode == MODE_U or mode == MODE_KEYED:
            s = pos
            if mode == MODE_KEYED:
                out[pos] = kl
                memcpy_at(out, pos + 1, slots, key, kl)
                s = pos + 1 + kl
            _put_len(out, s, dl)
            memcpy_at(out, s + 4, slots, data, dl)
            e = s + 4 + dl
            recs += 1
            grecs += 1
            gbytes += e - pos
            if cdc and (
                gbytes >= gmax
                or (gbytes >= gmin and np.int64(cut_hash(out, s + 4, e) >> np.uint64(48)) < e - pos)
            ):
                gend[ng] = base + e
                grec[ng] = recs
                gblk[ng] = i
                gskip[ng] = base + e - bstart
                ng += 1
                gbytes = 0
                grecs = 0
            pos = e
        else:
            # V or VS: check the BDW, then walk the RDWs/SDWs inside the block.
            if dl < 4:
                err = E_BDW
                break
            b0 = _byte(slots, data)
            if b0 & 0x80:
                blen = (
                    ((b0 & 0x7F) << 24)
                    | (_byte(slots, data + 1) << 16)
                    | (_byte(slots, data + 2) << 8)
                    | _byte(slots, data + 3)
                )
            else:
                blen = (b0 << 8) | _byte(slots, data + 1)
                if _byte(slots, data + 2) != 0 or _byte(slots, data + 3) != 0:
                    blen = -1
            if blen != dl or dl == 4:
                err = E_BDW
                break
            p = data + 4
            end = data + dl
            while p < end:
                if p + 4 > end:
                    err = E_RDW
                    break
                ln = (_byte(slots, p) << 8) | _byte(slots, p + 1)
                f2 = _byte(slots, p + 2)
                if ln < 4 or p + ln > end or _byte(slots, p + 3) != 0:
                    err = E_RDW
                    break
                n = ln - 4
                done_s = -1  # a record completed: its data out[done_s:pos]
                nadd = 0
                if skip > 0:
                    if mode != MODE_V or ln > skip:
                        err = E_SPAN if mode != MODE_V else E_RDW
                        break
                    skip -= ln  # a record before the resume point: V records add ln bytes
                    p += ln
                    continue
                if mode == MODE_V:
                    if f2 != 0:
                        err = E_RDW
                        break
                    _put_len(out, pos, n)
                    memcpy_at(out, pos + 4, slots, p + 4, n)
                    done_s = pos + 4
                    pos += 4 + n
                    nadd = n + 4
                else:
                    if f2 & 0x7C:
                        err = E_RDW
                        break
                    if f2 & 0x80:  # null segment: no data
                        p += ln
                        continue
                    code = f2 & 0x03
                    if code == 0 or code == 1:  # complete or first
                        if span:
                            err = E_SPAN
                            break
                        memcpy_at(out, pos + 4, slots, p + 4, n)
                        if code == 0:
                            _put_len(out, pos, n)
                            done_s = pos + 4
                            nadd = n + 4
                        else:
                            span = 1
                            spfx = pos
                        pos += 4 + n
                    else:  # last (2) or middle (3)
                        if not span:
                            err = E_SPAN
                            break
                        memcpy_at(out, pos, slots, p + 4, n)
                        pos += n
                        if code == 2:
                            total = pos - spfx - 4
                            _put_len(out, spfx, total)
                            span = 0
                            done_s = spfx + 4
                            nadd = total + 4
                if done_s >= 0:
                    recs += 1
                    grecs += 1
                    gbytes += nadd
                    if cdc and (
                        gbytes >= gmax
                        or (
                            gbytes >= gmin
                            and np.int64(cut_hash(out, done_s, pos) >> np.uint64(48)) < nadd
                        )
                    ):
                        gend[ng] = base + pos
                        grec[ng] = recs
                        gblk[ng] = i
                        gskip[ng] = base + pos - bstart
                        ng += 1
                        gbytes = 0
                        grecs = 0
                p += ln
            if err:
                break
        blocks += 1
        skip = 0
        i += 1
    if err:
        st[S_ERR] = err
        st[S_ERRREC] = i
    st[S_POS] = pos
    st[S_RECS] = recs
    st[S_GBYTES] = gbytes
    st[S_GRECS] = grecs
    st[S_SPAN] = span
    st[S_SPFX] = spfx
    st[S_BLOCKS] = blocks
    st[S_NG] = ng
    st[S_SKIP] = skip
    st[S_COMMIT] = spfx if span else pos
    return i


# parse_directory status codes
D_OK = 0
D_NOT_DIR = 1  # a directory record is not KL 8, DL 256
D_USED = 2  # a used-byte count outside 2..256
D_ENTRY = 3  # an entry runs past the used bytes
D_NO_END = 4  # EOF record before the X'FF'*8 end entry
D_MORE = 5  # the record table ended inside the directory (load more tracks)


@nb.njit(cache=True, nogil=True)
def parse_directory(slots, rows, rec_k, rec_kl, rec_dl, rec_pos, count_size):
    """The PDS directory (FORMATS.md 6.1, 6.2) from record 0 of the table on.

    Returns ``(status, eof, names, tt, r, c, udoff, ud)``: ``eof`` is the index of the
    EOF record after the directory (-1 if not reached); per entry, in directory order,
    ``names`` (the 8 name bytes as a big-endian uint64, so they sort as bytes), the
    TTR, the C byte and the offset of its user data in ``ud`` (all user data
    concatenated; length ``2 * (c & 31)``).  Entries up to a damaged block are kept.
    """
    rowlen = slots.shape[1]
    nrec = len(rec_kl)
    status = D_MORE
    eof = -1
    for pass_ in range(2):
        if pass_ == 0:
            n = 0
            nud = 0
        else:
            names = np.empty(n, dtype=np.uint64)
            tts = np.empty(n, dtype=np.int64)
            rs = np.empty(n, dtype=np.int64)
            cs = np.empty(n, dtype=np.uint8)
            udoff = np.empty(n, dtype=np.int64)
            ud = np.empty(nud, dtype=np.uint8)
            n = 0
            nud = 0
        status = D_MORE
        i = 0
        ended = False
        while i < nrec and not ended:
            kl = rec_kl[i]
            dl = rec_dl[i]
            if kl == 0 and dl == 0:
                eof = i
                status = D_NO_END
                break
            if kl != 8 or dl != 256:
                status = D_NOT_DIR
                break
            data = np.int64(rows[rec_k[i]]) * rowlen + np.int64(rec_pos[i]) + count_size + 8
            used = (_byte(slots, data) << 8) | _byte(slots, data + 1)
            if used < 2 or used > 256:
                status = D_USED
                break
            p = 2
            bad = False
            while p < used:
                if p + 12 > used:
                    bad = True
                    break
                name = _load64(slots, data + p)
                if name == np.uint64(0xFFFFFFFFFFFFFFFF):
                    ended = True
                    break
                c = _byte(slots, data + p + 11)
                ulen = 2 * (c & 0x1F)
                if p + 12 + ulen > used:
                    bad = True
                    break
                if pass_ == 1:
                    # byte-swap: the 8 name bytes as a big-endian number
                    v = np.uint64(0)
                    for b in range(8):
                        v = (v << np.uint64(8)) | np.uint64(_byte(slots, data + p + b))
                    names[n] = v
                    tts[n] = (_byte(slots, data + p + 8) << 8) | _byte(slots, data + p + 9)
                    rs[n] = _byte(slots, data + p + 10)
                    cs[n] = c
                    udoff[n] = nud
                    if ulen:
                        memcpy_at(ud, nud, slots, data + p + 12, ulen)
                n += 1
                nud += ulen
                p += 12 + ulen
            if bad:
                status = D_ENTRY
                break
            i += 1
        if ended:
            # the directory's EOF record follows its last block
            status = D_MORE
            j = i + 1
            while j < nrec:
                if rec_kl[j] == 0 and rec_dl[j] == 0:
                    eof = j
                    status = D_OK
                    break
                j += 1
    return status, eof, names, tts, rs, cs, udoff, ud


@nb.njit(cache=True, nogil=True)
def member_ends(rec_kl, rec_dl, starts):
    """For each member start (record index, -1 if none): the index of its EOF record
    (-1 if the table ends first) and an upper bound of its stream size."""
    n = len(starts)
    nrec = len(rec_kl)
    eofs = np.full(n, -1, dtype=np.int64)
    bound = np.zeros(n, dtype=np.int64)
    for k in range(n):
        i = starts[k]
        if i < 0:
            continue
        b = 0
        while i < nrec:
            if rec_kl[i] == 0 and rec_dl[i] == 0:
                eofs[k] = i
                break
            b += np.int64(rec_kl[i]) + np.int64(rec_dl[i]) + BLOCK_OVERHEAD
            i += 1
        bound[k] = b
    return eofs, bound


@nb.njit(cache=True, nogil=True)
def emit_members(
    slots,
    rows,
    rec_k,
    rec_kl,
    rec_dl,
    rec_pos,
    starts,
    eofs,
    bound,
    k0,
    mode,
    split,
    count_size,
    out,
    m_end,
    m_recs,
    m_status,
):
    """Emit members ``k0, k0+1, ...`` one after another into ``out``; member k's
    stream is ``out[m_end[k-1]:m_end[k]]`` (from 0 for the first of the call).

    Returns ``(next member, bytes used)``; stops before a member that does not fit
    (status E_TOO_BIG when even an empty chunk cannot hold it: the caller streams it
    with :func:`emit_records`).  A member whose blocks break the RECFM rules is
    re-emitted as U records (each block ``len || data``) with status E_BDW/E_RDW/E_SPAN,
    so its digest still follows its bytes.
    """
    cap = len(out)
    nrec = len(rec_kl)
    st = np.zeros(NSTATE, dtype=np.int64)
    gend = np.zeros(1, dtype=np.int64)
    grec = np.zeros(1, dtype=np.int64)
    pos = 0
    k = k0
    while k < len(starts):
        i = starts[k]
        if i < 0:
            m_status[k] = E_TTR
            m_end[k] = pos
            m_recs[k] = 0
            k += 1
            continue
        if pos + bound[k] > cap:
            if pos == 0:
                m_status[k] = E_TOO_BIG
            break
        last = eofs[k] if eofs[k] >= 0 else nrec
        for j in range(NSTATE):
            st[j] = 0
        st[S_POS] = pos
        emit_records(
            slots, rows, rec_k, rec_kl, rec_dl, rec_pos, i, last, mode, split, count_size,
            st, out, False, 1, 1, gend, grec, gend, grec,
        )  # fmt: skip
        status = E_OK
        if st[S_ERR] != 0 or st[S_SPAN] != 0:
            status = st[S_ERR] if st[S_ERR] != 0 else E_SPAN
            for j in range(NSTATE):
                st[j] = 0
            st[S_POS] = pos
            emit_records(
                slots, rows, rec_k, rec_kl, rec_dl, rec_pos, i, last, MODE_U, 0, count_size,
                st, out, False, 1, 1, gend, grec, gend, grec,
            )  # fmt: skip
        elif eofs[k] < 0:
            status = E_NO_EOF
        m_status[k] = status
        pos = st[S_POS]
        m_end[k] = pos
        m_recs[k] = st[S_RECS]
        k += 1
    return k, pos


__all__ = [
    "walk_records",
    "parse_directory",
    "emit_records",
    "emit_members",
    "member_ends",
    "cut_hash",
    "MODE_F",
    "MODE_V",
    "MODE_VS",
    "MODE_U",
    "MODE_KEYED",
    "NSTATE",
]
