"""Interchange formats: IEBCOPY unload data sets (``unload``), the IEBCOPY utility
(``iebcopy``), TSO XMIT / NETDATA and tapes (FORMATS.md 8 and 9)."""
