"""Volume label and VTOC layouts (FORMATS.md 4 and 5; Format 7: 5.7).

Every DSCB is declared as its full 140-byte key+data image, so offsets match the
"abs" column of FORMATS.md and Hercules ``dasdblks.h`` (field names are the IBM
names in lower case).  All fields are big-endian.
"""

from __future__ import annotations

import construct as cs

DSCB_KEYLEN = 44
DSCB_DATALEN = 96
DSCB_SIZE = 140

#: CCHHR: cylinder, head, record (a pointer to a DSCB or the first VTOC record).
CCHHR = cs.Struct("cyl" / cs.Int16ub, "head" / cs.Int16ub, "rec" / cs.Int8ub)

#: Extent descriptor (F1 DS1EXT1..3, F3, F4 DS4VTOCE).
Extent = cs.Struct(
    "xttype" / cs.Int8ub,
    "xtseqn" / cs.Int8ub,
    "xtbcyl" / cs.Int16ub,
    "xtbtrk" / cs.Int16ub,
    "xtecyl" / cs.Int16ub,
    "xtetrk" / cs.Int16ub,
)
EXTENT_SIZE = 10
XTTYPE_DATA = 0x01
XTTYPE_CYL = 0x81

#: VOL1 label data (80 bytes; key 'VOL1').
Vol1 = cs.Struct(
    "vol1id" / cs.Bytes(4),
    "vol1vser" / cs.Bytes(6),
    "vol1fsct" / cs.Int8ub,
    "vol1vtoc" / CCHHR,
    "vol1rsv1" / cs.Bytes(21),
    "vol1ownr" / cs.Bytes(14),
    "vol1rsv2" / cs.Bytes(29),
)

#: Format-1 (and Format-8) DSCB: one data set.
Format1 = cs.Struct(
    "ds1dsnam" / cs.Bytes(44),
    "ds1fmtid" / cs.Int8ub,
    "ds1dssn" / cs.Bytes(6),
    "ds1volsq" / cs.Int16ub,
    "ds1credt" / cs.Bytes(3),
    "ds1expdt" / cs.Bytes(3),
    "ds1noepv" / cs.Int8ub,
    "ds1nobdb" / cs.Int8ub,
    "ds1flag1" / cs.Int8ub,
    "ds1syscd" / cs.Bytes(13),
    "ds1refd" / cs.Bytes(3),
    "ds1smsfg" / cs.Int8ub,
    "ds1scxtf" / cs.Int8ub,
    "ds1scxtv" / cs.Int16ub,
    "ds1dsorg" / cs.Int16ub,
    "ds1recfm" / cs.Int8ub,
    "ds1optcd" / cs.Int8ub,
    "ds1blkl" / cs.Int16ub,
    "ds1lrecl" / cs.Int16ub,
    "ds1keyl" / cs.Int8ub,
    "ds1rkp" / cs.Int16ub,
    "ds1dsind" / cs.Int8ub,
    "ds1scal1" / cs.Int8ub,
    "ds1scal3" / cs.Int24ub,
    "ds1lstar" / cs.Bytes(3),
    "ds1trbal" / cs.Int16ub,
    "ds1resv" / cs.Int8ub,
    "ds1ttthi" / cs.Int8ub,
    "ds1ext1" / Extent,
    "ds1ext2" / Extent,
    "ds1ext3" / Extent,
    "ds1ptrds" / CCHHR,
)

#: Format-3 DSCB: extents 4..16 of a data set.
Format3 = cs.Struct(
    "ds3keyid" / cs.Bytes(4),
    "ds3extnt" / cs.Array(4, Extent),
    "ds3fmtid" / cs.Int8ub,
    "ds3adext" / cs.Array(9, Extent),
    "ds3ptrds" / CCHHR,
)

#: Format-4 DSCB: the VTOC itself and the device description.
Format4 = cs.Struct(
    "ds4keyid" / cs.Bytes(44),
    "ds4idfmt" / cs.Int8ub,
    "ds4hpchr" / CCHHR,
    "ds4dsrec" / cs.Int16ub,
    "ds4hcchh" / cs.Bytes(4),
    "ds4noatk" / cs.Int16ub,
    "ds4vtoci" / cs.Int8ub,
    "ds4noext" / cs.Int8ub,
    "ds4smsfg" / cs.Int8ub,
    "ds4devac" / cs.Int8ub,
    "ds4dscyl" / cs.Int16ub,
    "ds4dstrk" / cs.Int16ub,
    "ds4devtk" / cs.Int16ub,
    "ds4devi" / cs.Int8ub,
    "ds4devl" / cs.Int8ub,
    "ds4devk" / cs.Int8ub,
    "ds4devfg" / cs.Int8ub,
    "ds4devtl" / cs.Int16ub,
    "ds4devdt" / cs.Int8ub,
    "ds4devdb" / cs.Int8ub,
    "ds4amtim" / cs.Bytes(8),
    "ds4amcat" / cs.Bytes(3),
    "ds4r2tim" / cs.Bytes(8),
    "ds4res1" / cs.Bytes(5),
    "ds4f6ptr" / cs.Bytes(5),
    "ds4vtoce" / Extent,
    "ds4res2" / cs.Bytes(10),
    "ds4eflvl" / cs.Int8ub,
    "ds4efptr" / cs.Bytes(5),
    "ds4res3" / cs.Int8ub,
    "ds4dcyl" / cs.Int32ub,
    "ds4res4" / cs.Bytes(2),
    "ds4devf2" / cs.Int8ub,
    "ds4res5" / cs.Int8ub,
)

#: One free-space extent in a Format-5 DSCB: relative track, whole cylinders, tracks.
FreeExtent = cs.Struct("rtrk" / cs.Int16ub, "cyls" / cs.Int16ub, "trks" / cs.Int8ub)

#: Format-5 DSCB: free space (26 extents; chained).
Format5 = cs.Struct(
    "ds5keyid" / cs.Bytes(4),
    "ds5avext" / cs.Array(8, FreeExtent),
    "ds5fmtid" / cs.Int8ub,
    "ds5mavet" / cs.Array(18, FreeExtent),
    "ds5ptrds" / CCHHR,
)

#: One free-space extent in a Format-7 DSCB (FORMATS.md 5.7): first free relative track
#: and the end.  ``end`` is the last free track + 1, as IBM's s390-tools ``ds7ext``
#: declares it ("ending RTA value + 1"); see emulator/volume/vtoc.py for the choice.
F7Extent = cs.Struct("start" / cs.Int32ub, "end" / cs.Int32ub)
F7EXTENT_SIZE = 8

#: Format-7 DSCB: extended free space on volumes of more than 65535 tracks (16 extents;
#: chained from DS4EFPTR through DS7PTRDS).
Format7 = cs.Struct(
    "ds7keyid" / cs.Bytes(4),
    "ds7extnt" / cs.Array(5, F7Extent),
    "ds7fmtid" / cs.Int8ub,
    "ds7adext" / cs.Array(11, F7Extent),
    "ds7res1" / cs.Bytes(2),
    "ds7ptrds" / CCHHR,
)

# DS4VTOCI bits (IBM names, FORMATS.md 5.2)
DS4DOSBT = 0x80
DS4DVTOC = 0x40
DS4EFVLD = 0x20
DS4DIRF = 0x04
DS4IVTOC = 0x01

#: DS4EFLVL when free space is kept in Format-7 DSCBs (FORMATS.md 5.2).
DS4EFLVL_F7 = 0x07

# DS1DSORG (first byte / second byte as a halfword)
DSORG_IS = 0x8000
DSORG_PS = 0x4000
DSORG_DA = 0x2000
DSORG_CX = 0x1000
DSORG_PO = 0x0200
DSORG_U = 0x0100
DSORG_VSAM = 0x0008

# DS1SCAL1 space units
SCAL_ABSTR = 0x00
SCAL_BLK = 0x40
SCAL_TRK = 0x80
SCAL_CYL = 0xC0

# DS1DSIND
DSIND_LASTVOL = 0x80
DSIND_BLK8 = 0x20

__all__ = [
    "CCHHR",
    "Extent",
    "Vol1",
    "Format1",
    "Format3",
    "Format4",
    "Format5",
    "FreeExtent",
    "Format7",
    "F7Extent",
]
