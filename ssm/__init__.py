"""Hot-site synchronisation: fingerprint a system of DASD images, compare fingerprints.

    import ssm
    fp1 = ssm.fingerprint_system(["sysres.3390", "user01.3390"])
    ssm.write_fingerprint(fp1, "day1.ssmfp")
    fp2 = ssm.fingerprint_system(["sysres.3390", "user01.3390"], since=fp1)
    result = ssm.compare_fingerprints(fp1, fp2, include=["SYS1.**"])
    for entry in result.members:
        print(entry.change, entry.dsname, entry.member)

The file format is docs/formats/fingerprint.md; the comparison semantics are in
:mod:`ssm.compare`.  Names are imported on first use, so ``import ssm`` stays cheap
(the fingerprint engine loads Numba kernels and BLAKE3).  The functions have names of
their own (``fingerprint_system``, ``compare_fingerprints``) because ``ssm.fingerprint``
and ``ssm.compare`` are the modules that define them.
"""

from __future__ import annotations

import importlib

# public name -> (module, attribute)
_EXPORTS = {
    "fingerprint_system": ("ssm.fingerprint", "fingerprint"),
    "Progress": ("ssm.fingerprint", "Progress"),
    "read_fingerprint": ("ssm.fpfile", "read"),
    "write_fingerprint": ("ssm.fpfile", "write"),
    "Fingerprint": ("ssm.model", "Fingerprint"),
    "DatasetFp": ("ssm.model", "DatasetFp"),
    "MemberFp": ("ssm.model", "MemberFp"),
    "VolumeFp": ("ssm.model", "VolumeFp"),
    "compare_fingerprints": ("ssm.compare", "compare"),
    "Comparison": ("ssm.compare", "Comparison"),
    "DatasetChange": ("ssm.compare", "DatasetChange"),
    "MemberChange": ("ssm.compare", "MemberChange"),
    "CHANGES": ("ssm.compare", "CHANGES"),
    "audit_log": ("ssm.log", "audit_log"),
    "AuditLog": ("ssm.log", "AuditLog"),
    "DsnPattern": ("ssm.patterns", "DsnPattern"),
    "DsnFilter": ("ssm.patterns", "DsnFilter"),
    "NameMap": ("ssm.patterns", "NameMap"),
    "PatternError": ("ssm.patterns", "PatternError"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'ssm' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
