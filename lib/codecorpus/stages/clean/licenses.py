"""Licence policy: which files may be kept, by their `license` field.

Licences are compared trimmed and lower-cased. A missing licence (null, "" or "unknown", which
ingest writes for a missing field) is kept or dropped by `keep_unknown_license`, before the
lists are looked at. Otherwise a denied licence drops; with a non-empty allow list, any licence
not on it drops too; with an empty allow list, everything not denied is kept.
"""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

UNKNOWN = ("", "unknown")


def normalized(license_col: Column) -> Column:
    return F.lower(F.trim(F.coalesce(license_col, F.lit(""))))


def _norm_list(values) -> list[str]:
    return sorted({v.strip().lower() for v in values})


def license_ok(c, license_col: Column) -> Column:
    """True when the licence passes the policy of CleanConfig `c` (never null)."""
    lic = normalized(license_col)
    allow, deny = _norm_list(c.licenses_allow), _norm_list(c.licenses_deny)
    allowed = lic.isin(*allow) if allow else F.lit(True)
    denied = lic.isin(*deny) if deny else F.lit(False)
    return (F.when(lic.isin(*UNKNOWN), F.lit(bool(c.keep_unknown_license)))
            .otherwise(allowed & ~denied))

