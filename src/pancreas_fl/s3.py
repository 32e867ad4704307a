"""A hospital's s3 objects: which to ask FLAME for, and which one the analysis reads.

A FLAME analyzer node receives its data in the *s3* format: a list with one dict per data
source, each mapping an object key (file name) to the object's content as ``bytes``. A
production node fetches only the keys in the ``query`` the analysis starts with
(:func:`s3_query`); ``dataset`` may be a key or a glob pattern that must match exactly one key
at each hospital (:func:`resolve_key`); :func:`find_object` returns that object's bytes.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from pancreas_fl.errors import DataError
from pancreas_fl.wording import listed

__all__ = ["find_object", "is_pattern", "resolve_key", "s3_query"]


def is_pattern(dataset: str) -> bool:
    """Whether ``dataset`` is a glob pattern (holds ``*``, ``?`` or ``[``)."""
    return any(c in dataset for c in "*?[")


def s3_query(dataset) -> list[str]:
    """Return the s3 query a node makes for ``dataset``, as the entrypoint does.

    A production FLAME node fetches only the objects named in the query: the dataset's key.
    A glob pattern cannot be queried, so it fetches every object of the hospital's bucket
    (``[]``) and the analysis picks the one match; a malformed ``dataset`` fetches nothing
    extra and is refused by the parameter check.
    """
    if not isinstance(dataset, str):
        return []
    return [] if is_pattern(dataset) else [dataset]


def resolve_key(data: object, dataset: str) -> str:
    """Return the object key the analysis reads: ``dataset`` itself, or the one key it matches.

    A key equal to ``dataset`` wins (a file may be named ``data[1].csv``). Otherwise, when
    ``dataset`` is a glob pattern, exactly one key of the hospital's s3 data must match it
    (:func:`fnmatch.fnmatchcase`: ``*``, ``?``, ``[...]``, case-sensitive).

    Raises
    ------
    DataError
        No key or several keys match; the message lists the keys.
    """
    if not is_pattern(dataset) or not isinstance(data, (list, tuple)):
        return dataset
    sources = [source for source in data if isinstance(source, Mapping)]
    keys = sorted({str(key) for source in sources for key in source})
    if dataset in keys:
        return dataset
    matches = [key for key in keys if fnmatch.fnmatchcase(key, dataset)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DataError(
            f"{len(matches)} object keys match the pattern: {listed(matches, kind='key')}",
            file=dataset,
            hint="Make 'dataset' match exactly one file at each hospital",
        )
    found = listed(keys, kind="object key") if keys else "no object at all"
    raise DataError(
        f"no object key matches the pattern; found {found}",
        file=dataset,
        hint="Pass a pattern (or key) that matches the hospital's data file",
    )


def find_object(data: object, dataset: str) -> bytes | bytearray | memoryview:
    """Return the bytes of object ``dataset`` from FLAME's s3 data, or say what is wrong.

    Raises
    ------
    DataError
        ``data`` is not what FLAME delivers for ``data_type='s3'`` (``None`` when the
        analysis asked for no object), holds no such key, or the object is not bytes or is
        blank.
    """
    _check_sources(data, dataset)
    for source in data:
        if dataset in source:
            raw = source[dataset]
            break
    else:
        keys = sorted({str(k) for source in data for k in source})
        found = listed(keys, kind="object key") if keys else "no object at all"
        raise DataError(
            f"object key {dataset!r} not found in {len(data)} data source(s); found {found}",
            file=dataset,
            hint="Pass dataset=<one of the keys found>, or ask the data owner to upload the file",
        )
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise DataError(
            f"the object is {_type_name(raw)}, not bytes",
            file=dataset,
            hint="FLAME's s3 data maps each key to the file's raw bytes; pass bytes "
            "(e.g. Path(...).read_bytes())",
        )
    if re.fullmatch(rb"\s*", raw) is not None:  # scans without copying the file
        raise DataError(
            f"the file is empty ({len(raw)} bytes, no header)",
            file=dataset,
            hint="Export the data again with a header row and one row per patient",
        )
    return raw


def _check_sources(data: object, dataset: str) -> None:
    """Refuse what is not FLAME's s3 data: ``None`` (no query), or not a list of dicts."""
    if data is None:
        raise DataError(
            "this hospital received no data (data=None): the analysis asked for no s3 object",
            file=dataset,
            hint=(
                f"Start the analysis with query=[{dataset!r}] (the dataset's object key), or "
                "query=[] for every object of the bucket, as pancreas_fl.main() does"
            ),
        )
    what = (
        "FLAME delivers s3 data as a list with one dict per data source, "
        "mapping object keys (file names) to bytes"
    )
    if not isinstance(data, (list, tuple)) or not all(isinstance(d, Mapping) for d in data):
        raise DataError(
            f"data must be a list of dicts, got {_type_name(data)}",
            file=dataset,
            hint=f"{what}; run the analysis with data_type='s3'",
        )
    if len(data) == 0:
        raise DataError(
            "data is an empty list (this hospital has no data source)",
            file=dataset,
            hint=f"{what}; ask the data owner to attach the dataset to the project",
        )


def _type_name(obj: object) -> str:
    if isinstance(obj, (list, tuple)):
        inner = sorted({type(d).__name__ for d in obj if not isinstance(d, Mapping)})
        return f"a {type(obj).__name__} containing {', '.join(inner)}"
    return type(obj).__name__
