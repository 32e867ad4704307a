"""A CSV file's bytes to a parsed table, checked first: the text, the header, the rows.

:func:`read_table` is the one way pancreas-fl parses a CSV file: the hospitals' own files and
a file of new patients to predict for. Cheap structural checks run first, on the bytes, before
pandas parses anything, so that a bad file gives one clear line (what is wrong, where, and what
to do) instead of a pandas traceback:

1. the file is valid UTF-8 text without NUL bytes (UTF-16, with or without a byte-order
   mark, is named as such; a UTF-8 byte-order mark is fine);
2. the header (read with :mod:`csv`, because pandas silently renames duplicates to ``x.1``
   and empty names to ``Unnamed: 1``) uses commas, is a header at all (a first row of values,
   or one holding any decimal number, is a patient's record, not column names, and is never
   shown), has no over-long, empty or duplicate names and no field over the :mod:`csv`
   module's limit of 131,072 characters;
3. the caller's width check passes (``check_width``), and the rows can hold as many fields as
   the header has;
4. pandas parses it (ragged rows are reported by line), and it has at least one row.

The file stays bytes: where characters matter its text is decoded piece by piece, never held
as one string beside the bytes and the parsed frame. Messages hold counts, line numbers and
column names, never a value.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from io import BytesIO

import pandas as pd

from pancreas_fl._warnings import ignoring
from pancreas_fl.errors import DataError
from pancreas_fl.wording import listed

__all__ = ["MAX_NAME_LENGTH", "read_table", "short_rows"]


MAX_NAME_LENGTH = 255
"""Longest column name accepted (characters). Names travel to the aggregator and into
messages; a longer one is not a variable name."""


_CHUNK = 1 << 20  # bytes of a file decoded at a time


_BLANK = re.compile(r"\s*")


_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe", " ": "space"}


# What pandas reads as missing (its default na_values) or boolean: a first row made of these
# and numbers is a patient's record, not a header.
_NA_SPELLINGS = frozenset(
    {
        *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
        *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
        *("True", "False", "TRUE", "FALSE", "true", "false"),
    }
)


_MAX_LISTED = 20  # object keys / column names listed in one message


def read_table(raw, dataset: str, *, no_rows_hint: str, check_width):
    """Check the text and the header, parse: ``(header, DataFrame)`` with at least one row.

    ``check_width(header, max_rows)`` runs before pandas parses anything; ``max_rows`` is an
    upper bound on the number of data rows (the file's lines after the header).

    The file stays bytes: where characters matter (the UTF-8 check, the header, blank lines,
    short rows) its text is decoded piece by piece, never held as one string beside the
    bytes and the parsed frame.
    """
    raw = bytes(raw)  # FLAME's bytes themselves (a copy only of a bytearray or memoryview)
    n_chars = _check_text(raw, dataset)
    header = _read_header(raw, dataset)
    # counted on the bytes: in UTF-8 a newline byte is always a newline character
    max_rows = raw.count(b"\n") + (not raw.endswith(b"\n")) - 1
    if not _has_line_after_header(raw):
        raise DataError(
            f"has a header ({len(header)} columns) but no data rows",
            file=dataset,
            hint=no_rows_hint,
        )
    check_width(header, max_rows)
    if len(header) * max_rows > n_chars:
        # Complete rows need at least one character per field: some rows are short. pandas
        # would pad every one of them to the header's width (a wide header over many short
        # lines can take all memory), so they are refused before parsing.
        short, first = short_rows(raw, len(header), dataset)
        if short:
            raise DataError(
                f"{short} row(s) have fewer fields than the header ({len(header)}), the first "
                f"on line {first}",
                file=dataset,
                hint="Every row must have as many comma-separated fields as the header; "
                "impute or drop incomplete rows before export",
            )
    df = _parse(raw, len(header), dataset)
    if len(df) == 0:
        raise DataError(
            f"has a header ({len(header)} columns) but no data rows",
            file=dataset,
            hint=no_rows_hint,
        )
    return header, df


def _has_line_after_header(raw: bytes) -> bool:
    """Whether a non-blank line follows the first non-blank one (linear, piece by piece)."""
    state = "before"  # blank text before the header, the header's line, blank text after it
    for piece in _text_pieces(raw):
        pos = 0
        while pos < len(piece):
            if state == "header":
                newline = piece.find("\n", pos)
                if newline < 0:
                    break
                state, pos = "after", newline + 1
            else:
                pos = _BLANK.match(piece, pos).end()
                if pos < len(piece):
                    if state == "after":
                        return True
                    state = "header"
    return False


def _check_text(raw: bytes, dataset: str) -> int:
    """Refuse what is not UTF-8 text; return the number of characters (a BOM not counted)."""
    hint = 'Re-save the file as "CSV UTF-8 (comma delimited)"'
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(
            "is UTF-16 text (byte-order mark at byte 0), not UTF-8", file=dataset, hint=hint
        )
    nul = raw.find(b"\x00")
    if nul >= 0:  # no CSV text holds a NUL; UTF-16 text without a byte-order mark is full of them
        utf16 = _utf16_without_bom(raw)
        if utf16:
            raise DataError(
                f"is {utf16} text without a byte-order mark, not UTF-8 (NUL bytes between "
                "the characters)",
                file=dataset,
                hint=hint,
            )
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"contains NUL bytes (the first at offset {nul}, line {line}): not a text file",
            file=dataset,
            hint=f"Export the data as CSV text; {hint[0].lower()}{hint[1:]}",
        )
    if raw.isascii():  # the usual export: one character per byte, nothing to decode
        return len(raw)
    # decoded piece by piece, only to check and count (a file offset names an invalid byte)
    pos = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    n_chars, view = 0, memoryview(raw)
    size = max(_CHUNK, 4)  # a piece holds at least one character (UTF-8: at most 4 bytes)
    while pos < len(raw):
        end = pos + size
        try:
            # a character cut by the piece's end is decoded with the next piece
            text, used = codecs.utf_8_decode(view[pos:end], "strict", end >= len(raw))
        except UnicodeDecodeError as exc:
            offset = pos + exc.start
            line = raw.count(b"\n", 0, offset) + 1
            raise DataError(
                f"is not UTF-8 text (invalid byte at offset {offset}, line {line})",
                file=dataset,
                hint=hint,
            ) from None
        n_chars += len(text)
        pos += used
    return n_chars


def _text_pieces(raw: bytes):
    """Yield the text of ``raw`` (UTF-8, checked) without a BOM, ``_CHUNK`` bytes at a time."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    view = memoryview(raw)
    for pos in range(0, len(raw), _CHUNK):
        yield decoder.decode(view[pos : pos + _CHUNK], final=pos + _CHUNK >= len(raw))


def _utf16_without_bom(raw: bytes) -> str | None:
    """``'UTF-16-LE'`` or ``'UTF-16-BE'`` when the start of ``raw`` looks like such text."""
    head = raw[:4096]
    even, odd = head[0::2], head[1::2]
    if len(odd) < 2:
        return None
    # Mostly-ASCII UTF-16: the high byte of nearly every character is 0.
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "UTF-16-LE"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "UTF-16-BE"
    return None


def _rows(raw: bytes, dataset: str):
    """``(line number, row)`` for the non-empty rows of the CSV file (UTF-8, checked).

    A field longer than the :mod:`csv` module's limit (131,072 characters: no CSV value is that
    long; it is nearly always a double quote that is never closed) is a :class:`DataError`.
    """
    # decoded as the rows are read: stopping early (the header) decodes little
    reader = csv.reader(io.TextIOWrapper(BytesIO(raw), encoding="utf-8-sig", newline=""))
    try:
        for row in reader:
            if row:
                yield reader.line_num, row
    except csv.Error as exc:
        line = reader.line_num
        if "field larger than field limit" in str(exc):
            where = "line 1 (the header)" if line <= 1 else f"line {line}"
            raise DataError(
                f"{where} has a field longer than {csv.field_size_limit():,} characters",
                file=dataset,
                hint="Check for a double quote that is never closed; no value or column name "
                "may be that long",
            ) from None
        raise DataError(
            f"could not be read as CSV at line {line}",
            file=dataset,
            hint="Check that it is a comma-separated text file with a header row",
        ) from None


def short_rows(raw: bytes, n_header: int, dataset: str) -> tuple[int, int]:
    """How many rows have fewer fields than the header, and the first one's line."""
    rows = _rows(raw, dataset)
    next(rows, None)
    count, first = 0, 0
    for line, row in rows:
        if len(row) < n_header:
            count += 1
            first = first or line
    return count, first


def _is_value(name: str) -> bool:
    """Whether a header field reads as a value (a number, a missing-value or boolean spelling)."""
    name = name.strip()
    if name in _NA_SPELLINGS:
        return True
    try:
        float(name)
    except ValueError:
        return False
    return True


def _is_decimal(name: str) -> bool:
    """Whether a header field reads as a number that is not a whole number's digits.

    For example ``'9.266'``, ``'1e5'``, ``'nan'``. Whole numbers stay valid names (Entrez gene
    ids).
    """
    name = name.strip()
    try:
        float(name)
    except ValueError:
        return False
    return re.fullmatch(r"[+-]?\d+", name) is None


def _holds_decimal(name: str) -> bool:
    """Whether a header field is, or joins with ';', tab or '|', a decimal number.

    A first row of values split at the wrong delimiter (``'6.523;7.327'``) is a patient's
    record, not a column name, and must never be shown as one.
    """
    return _is_decimal(name) or any(_is_decimal(piece) for piece in re.split(r"[;\t|]", name))


def _read_header(raw: bytes, dataset: str) -> list[str]:
    rows = _rows(raw, dataset)
    first = next(rows, None)
    if first is None:  # only blank lines; kept for safety, the emptiness check catches it
        raise DataError("the file has no header row", file=dataset, hint="Export it again")
    header = first[1]
    if len(header) == 1:
        for delimiter, name in _OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                raise DataError(
                    f"is not comma-separated: the header is one column containing "
                    f"{header[0].count(delimiter)} {name} ({delimiter!r}) delimiter(s)",
                    file=dataset,
                    hint="Give the separator and the decimal mark (sep=..., decimal=...), or "
                    "export as comma-separated CSV (a ';' export is read by itself when its "
                    "decimal mark is unambiguous)",
                )
    if all(_is_value(name) for name in header) and any(name.strip() for name in header):
        # a header-less export: pandas would take the first patient's values as column names
        # (shown in messages, sent to the aggregator) and drop that patient; never shown here
        raise DataError(
            f"the first row has no column names: all {len(header)} fields are numbers or "
            "missing-value spellings (is the header row missing?)",
            file=dataset,
            hint="Export the file with its header row of column names; the first row's "
            "values are not shown here",
        )
    decimal = [i + 1 for i, name in enumerate(header) if _holds_decimal(name)]
    if decimal:
        # a header-less export whose first row also holds text (e.g. a label 'PDAC'): column
        # names are not decimal numbers, patients' measurements are
        raise DataError(
            f"the first row holds {len(decimal)} field(s) that read as decimal numbers where "
            f"column names belong (position(s) {', '.join(map(str, decimal[:_MAX_LISTED]))}; "
            "is the header row missing?)",
            file=dataset,
            hint="Export the file with its header row of column names, none of them a "
            "number with a fraction or an exponent; the first row's values are not shown here",
        )
    long = [i + 1 for i, name in enumerate(header) if len(name) > MAX_NAME_LENGTH]
    if long:
        raise DataError(
            f"header has {len(long)} column name(s) longer than {MAX_NAME_LENGTH} characters "
            f"(position(s) {', '.join(map(str, long[:_MAX_LISTED]))})",
            file=dataset,
            hint="Shorten the column names (they are sent to the aggregator and shown in results)",
        )
    empty = [i + 1 for i, name in enumerate(header) if name.strip() == ""]
    if empty:
        raise DataError(
            f"header has {len(empty)} column(s) without a name (position(s) "
            f"{', '.join(map(str, empty[:_MAX_LISTED]))})",
            file=dataset,
            hint="Name every column; a leading unnamed column is usually a row index "
            "written by DataFrame.to_csv() without index=False",
        )
    duplicated = sorted(name for name, n in Counter(header).items() if n > 1)
    if duplicated:
        raise DataError(
            f"header has duplicate column name(s) {listed(duplicated)}",
            file=dataset,
            hint="Give every column a unique name",
        )
    second = next(rows, None)
    if second is not None and len(second[1]) > len(header):
        # pandas would silently take the extra leading field(s) as the row index
        raise _ragged_error(raw, len(header), dataset, "")
    return header


def _parse(raw: bytes, n_header: int, dataset: str):
    try:
        with ignoring(pd.errors.ParserWarning, pd.errors.DtypeWarning):
            df = pd.read_csv(BytesIO(raw))
    except pd.errors.ParserError as exc:
        raise _ragged_error(raw, n_header, dataset, str(exc)) from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"could not be parsed as CSV ({type(exc).__name__})",
            file=dataset,
            hint="Check that it is a comma-separated text file with a header row",
        ) from None
    return df


def _ragged_error(raw: bytes, n_header: int, dataset: str, pandas_message: str) -> DataError:
    hint = "Every row must have as many comma-separated fields as the header"
    unclosed = "EOF inside string" in pandas_message
    bad = []
    try:
        rows = _rows(raw, dataset)
        next(rows, None)  # the header
        bad = [(line, len(row)) for line, row in rows if len(row) > n_header]
    except DataError as err:  # a field over the csv module's limit
        if not unclosed:
            return err
    if bad:
        line, n = bad[0]
        more = f" ({len(bad)} such rows in all)" if len(bad) > 1 else ""
        return DataError(
            f"line {line} has {n} fields, header has {n_header}{more}",
            file=dataset,
            hint=f"{hint}; quote values that contain commas",
        )
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", pandas_message)
    if match:
        expected, line, saw = match.groups()
        return DataError(
            f"line {line} has {saw} fields, header has {expected}", file=dataset, hint=hint
        )
    if unclosed:
        return DataError(
            f"a quoted field starting on line {_unclosed_quote_line(raw)} is never closed",
            file=dataset,
            hint="Close every opening double quote",
        )
    return DataError("could not be parsed as comma-separated CSV", file=dataset, hint=hint)


def _unclosed_quote_line(raw: bytes) -> int:
    """Find the line on which the double quote that is never closed opens (1-based).

    Counted on the bytes: in UTF-8, quote and newline bytes are always those characters.
    """
    inside, opened = False, 0
    for match in re.finditer(b'"', raw):
        inside = not inside
        if inside:
            opened = match.start()
    return raw.count(b"\n", 0, opened) + 1
