"""How a hospital's CSV file is written: its separator, decimal mark and encoding.

The tutorial reads comma-separated UTF-8 with decimal points. Hospitals' own spreadsheet
exports often differ: a German Excel export ("CSV (Trennzeichen-getrennt)") separates fields
with ``;``, writes decimal commas (``9,266``) and encodes text in Windows-1252 (cp1252) or
latin-1. :func:`detect` finds these from the bytes alone, where they are unambiguous, and
:func:`to_standard` rewrites such a file as the tutorial's format, so that every later check
and the parse itself run unchanged on it (the digits are the same, so the values are too, bit
for bit).

Detection, each part unless given (``sep``, ``decimal``, ``encoding`` parameters):

* **encoding**: UTF-8 when the bytes are UTF-8 (ASCII included; a byte-order mark is fine).
  Otherwise single-byte text, read as cp1252: it gives latin-1's character for every byte
  but 0x80-0x9F, where latin-1 has control characters that no export writes and cp1252 has
  ``€``, ``„``, ``‰`` and the like. A file that also holds valid multi-byte UTF-8 sequences
  (mixed encodings), a byte cp1252 leaves undefined, a NUL byte or a UTF-16 byte-order mark
  is ambiguous: left to the reader's UTF-8 checks and their message.
* **separator**: the header and the first rows are split at ``,`` and at ``;`` (quotes
  respected). ``;`` when the header has at least two fields at ``;`` and one at ``,``; when
  both give two or more, the one that splits every sampled row into the header's width, the
  wider if both do, and at the same width the one whose fields read as numbers (an export
  without its header); ``,`` otherwise (today's reading and its messages).
* **decimal mark** (``;``-separated files only; a comma-separated file has decimal points):
  a decimal comma when fields such as ``9,266`` occur and none such as ``9.266``; a decimal
  point when the reverse holds or no field has a fraction. Both kinds in one file is
  ambiguous: the file is left as it is, and the reader says it is not comma-separated.

Only the separator, the decimal mark and the encoding change: quoting, blank lines, line
numbers and every other character stay as they were, so a message about the rewritten file
names the lines of the hospital's own. A file in the tutorial's format is returned as the very
same bytes; a rewritten file is held once more (in UTF-8) while it is read.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass

from pancreas_fl.errors import DataError
from pancreas_fl.wording import listed

__all__ = ["DECIMALS", "ENCODINGS", "SEPARATORS", "Dialect", "detect", "to_standard"]

SEPARATORS = (",", ";", "\t", "|")
DECIMALS = (".", ",")
ENCODINGS = ("utf-8", "cp1252", "latin-1")

_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SAMPLE_BYTES = 1 << 16  # the start of the file the separator is judged on
_SAMPLE_ROWS = 50
_CHUNK = 1 << 20
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
# a well-formed multi-byte UTF-8 sequence (in a file that is not UTF-8 as a whole)
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_NUMBER = r"[ \t]*[+-]?(?:\d+{0}\d*|{0}\d+)(?:[eE][+-]?\d+)?[ \t]*"
_COMMA_NUMBER = re.compile(_NUMBER.format(","))
_POINT_NUMBER = re.compile(_NUMBER.format(r"\."))
_INTEGER = re.compile(r"[ \t]*[+-]?\d+[ \t]*")
_UTF8_LEAD = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")  # where a multi-byte sequence may start
# a fraction as a whole field of the raw bytes (digits, signs and marks are ASCII in all three
# encodings); {sep} and {mark} are filled in
_FIELD = (
    r"(?:^|(?<=[{sep}\n\r]))[ \t]*[+-]?(?:\d+{mark}\d*|{mark}\d+)(?:[eE][+-]?\d+)?[ \t]*"
    r"(?=[{sep}\r\n]|$)"
)


def _fraction_field(sep: str, mark: str) -> re.Pattern:
    pattern = _FIELD.format(sep=re.escape(sep), mark=re.escape(mark))
    return re.compile(pattern.encode(), re.MULTILINE)


@dataclass(frozen=True)
class Dialect:
    """How a file is written, and which parts were given rather than detected.

    Attributes
    ----------
    sep : str
        The field separator, one of :data:`SEPARATORS`.
    decimal : str
        The decimal mark, one of :data:`DECIMALS`.
    encoding : str
        One of :data:`ENCODINGS`.
    given : tuple of str
        The parts given as parameters (``"sep"``, ``"decimal"``, ``"encoding"``).
    ambiguous : str or None
        Why a part could not be detected (the file is then read as the tutorial reads it).
    """

    sep: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    given: tuple[str, ...] = ()
    ambiguous: str | None = None

    @property
    def standard(self) -> bool:
        """Whether this is the tutorial's format: comma-separated UTF-8, decimal points."""
        return (self.sep, self.decimal, self.encoding) == (",", ".", "utf-8")

    def describe(self) -> str:
        """Say how the file is read, in words, e.g. ``"';'-separated, decimal commas, cp1252"``.

        No value of the file: the separator, the decimal mark, the encoding, and what was
        detected.
        """
        sep = f"{_NAMES[self.sep]}-separated"
        if self.sep != ",":
            sep += f" ({self.sep!r})"
        decimal = "decimal points" if self.decimal == "." else "decimal commas"
        encoding = {"utf-8": "UTF-8", "cp1252": "cp1252 (Windows-1252)", "latin-1": "latin-1"}
        text = f"{sep}, {decimal}, {encoding[self.encoding]}"
        if self.ambiguous:
            return f"{text} (the tutorial's format: {self.ambiguous})"
        detected = [part for part in ("sep", "decimal", "encoding") if part not in self.given]
        if not self.given:
            how = "detected"
        elif not detected:
            how = "as given"
        else:
            how = f"{', '.join(detected)} detected, {', '.join(self.given)} as given"
        return f"{text} ({how})"


def detect(raw: bytes, *, sep=None, decimal=None, encoding=None) -> Dialect:
    """Find how ``raw`` is written; parts given (not ``None``) are taken as they are.

    Parameters
    ----------
    raw : bytes
        The file's content.
    sep, decimal, encoding : str, optional
        One of :data:`SEPARATORS`, :data:`DECIMALS`, :data:`ENCODINGS`; ``None``: detect.

    Returns
    -------
    Dialect
        The tutorial's format where a part is ambiguous (see the module docstring).
    """
    given = tuple(
        name
        for name, value in (("sep", sep), ("decimal", decimal), ("encoding", encoding))
        if value is not None
    )
    ambiguous = None
    if encoding is None:
        encoding, ambiguous = _detect_encoding(raw)
    if sep is None:
        sep = _detect_separator(raw, encoding)
        if sep == decimal == ",":  # commas cannot separate the fields of decimal commas
            sep = ";"
    if decimal is None:
        decimal = "." if sep == "," else _detect_decimal(raw, sep)
    if decimal is None:  # read as today, and refused as today
        ambiguous = f"{_NAMES[sep]}-separated with both decimal commas and decimal points"
        sep, decimal = ",", "."
    return Dialect(sep, decimal, encoding, given, ambiguous)


def _is_utf8(raw: bytes) -> bool:
    if raw.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    try:
        for pos in range(0, len(raw), _CHUNK):
            decoder.decode(view[pos : pos + _CHUNK], final=pos + _CHUNK >= len(raw))
    except UnicodeDecodeError:
        return False
    return True


def _detect_encoding(raw: bytes) -> tuple[str, str | None]:
    """Return the encoding, and why it is ambiguous (then UTF-8, checked by the reader)."""
    if _is_utf8(raw) or b"\x00" in raw or raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-8", None  # UTF-8, or left to the reader's checks (NUL bytes, UTF-16)
    lead = _UTF8_LEAD.search(raw)  # a cheaper scan first
    if lead and _UTF8_SEQUENCE.search(raw, lead.start()):
        return "utf-8", "UTF-8 and single-byte text mixed"
    if _CP1252_UNDEFINED.search(raw):
        return "utf-8", "neither UTF-8 nor cp1252 text"
    return "cp1252", None


def _sample_rows(raw: bytes, encoding: str, sep: str) -> list[list[str]]:
    """Return the first non-empty rows of the file's start, split at ``sep``."""
    head = raw[:_SAMPLE_BYTES]
    if len(raw) > _SAMPLE_BYTES:  # whole lines only
        head = head[: head.rfind(b"\n") + 1] or head
    text = head.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="replace")
    rows = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep):
            if row:
                rows.append(row)
            if len(rows) > _SAMPLE_ROWS:
                break
    except csv.Error:  # an unclosed quote or an over-long field: the reader's to report
        pass
    return rows


def _detect_separator(raw: bytes, encoding: str) -> str:
    comma, semicolon = _sample_rows(raw, encoding, ","), _sample_rows(raw, encoding, ";")
    if not comma or not semicolon:
        return ","
    width_c, width_s = len(comma[0]), len(semicolon[0])
    if width_s >= 2 and width_c < 2:
        return ";"
    if width_s >= 2 and width_c >= 2:
        fits_c = all(len(row) == width_c for row in comma[1:])
        fits_s = all(len(row) == width_s for row in semicolon[1:])
        if fits_s and (not fits_c or width_s > width_c):
            return ";"
        if fits_s and width_s == width_c and _numbers(semicolon, ";") > _numbers(comma, ","):
            # e.g. an export without its header: '9,266;9,197' is 2 fields either way, but
            # only ';' makes them numbers (',' would name columns after pieces of values)
            return ";"
    return ","


def _numbers(rows: list[list[str]], sep: str) -> int:
    """Count the fields that read as numbers (with decimal commas too, in a ';' file)."""
    marks = (_POINT_NUMBER, _INTEGER, _COMMA_NUMBER) if sep == ";" else (_POINT_NUMBER, _INTEGER)
    return sum(any(m.fullmatch(field) for m in marks) for row in rows for field in row)


def _detect_decimal(raw: bytes, sep: str) -> str | None:
    """Return ``","``, ``"."``, or ``None`` when both kinds of fraction occur (ambiguous)."""
    # the mark itself first: a file without it needs no scan field by field
    commas = b"," in raw and _fraction_field(sep, ",").search(raw) is not None
    points = b"." in raw and _fraction_field(sep, ".").search(raw) is not None
    if commas and points:
        return None
    return "," if commas else "."


def to_standard(raw: bytes, dialect: Dialect, dataset: str) -> bytes:
    """Rewrite ``raw`` as comma-separated UTF-8 with decimal points (the tutorial's format).

    Parameters
    ----------
    raw : bytes
        The file as the hospital wrote it.
    dialect : Dialect
        How it is written (:func:`detect`).
    dataset : str
        The file's name, for messages.

    Returns
    -------
    bytes
        ``raw`` itself when it is in the tutorial's format already, or when it is not UTF-8
        text although ``dialect`` says so (the reader's checks then name the problem);
        otherwise the rewritten file, line for line.

    Raises
    ------
    DataError
        A byte cp1252 leaves undefined (``encoding='cp1252'`` given); the same mark as
        separator and decimal mark; a row the :mod:`csv` module cannot read (an over-long
        field); or, with decimal commas, a field written with a decimal point (it would be
        read as another number).
    """
    if dialect.standard:
        return raw
    if dialect.sep == dialect.decimal:
        raise DataError(
            f"cannot be read with {_NAMES[dialect.sep]}s as both the separator and the "
            "decimal mark",
            file=dataset,
            hint="Give another sep or decimal",
        )
    if dialect.encoding == "utf-8" and (b"\x00" in raw or not _is_utf8(raw)):
        return raw  # the reader's checks name the problem
    if dialect.encoding == "cp1252":
        undefined = _CP1252_UNDEFINED.search(raw)
        if undefined:
            offset = undefined.start()
            line = raw.count(b"\n", 0, offset) + 1
            raise DataError(
                f"is not cp1252 text (byte 0x{raw[offset]:02X} at offset {offset}, line "
                f"{line}, has no meaning in cp1252)",
                file=dataset,
                hint="Give the file's encoding (encoding='utf-8', 'cp1252' or 'latin-1'), or "
                'leave it out to detect it; re-saving as "CSV UTF-8" always works',
            )
    return _rewrite_fields(raw, dialect, dataset)


def _rewrite_fields(raw: bytes, dialect: Dialect, dataset: str) -> bytes:
    """Rewrite a file field by field with the :mod:`csv` module (quotes respected)."""
    text = io.TextIOWrapper(
        io.BytesIO(raw),
        encoding="utf-8-sig" if dialect.encoding == "utf-8" else dialect.encoding,
        newline="",
    )
    out = io.BytesIO()
    sink = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(sink, lineterminator="\n")
    reader = csv.reader(text, delimiter=dialect.sep)
    header, points = None, {}
    try:
        for row in reader:
            if header is None and row:
                header = row
                if dialect.decimal == ",":
                    # a first row of patients' values (no header) must read as numbers, so
                    # that the reader refuses it without showing them as column names
                    row = [_point_for_comma(field, j, {}) for j, field in enumerate(row)]
            elif dialect.decimal == ",":
                row = [_point_for_comma(field, j, points) for j, field in enumerate(row)]
            writer.writerow(row)
    except csv.Error as exc:
        raise _csv_error(exc, reader.line_num, dialect, dataset) from None
    if points:
        names = [header[j] if j < len(header) else f"field {j + 1}" for j in sorted(points)]
        raise DataError(
            f"uses decimal commas, but {sum(points.values())} value(s) in column(s) "
            f"{listed(names)} are written with a decimal point",
            file=dataset,
            hint="Write every fraction with a decimal comma, or give decimal='.' if the "
            "file uses decimal points",
        )
    sink.flush()
    return out.getvalue()


def _csv_error(exc: csv.Error, line: int, dialect: Dialect, dataset: str) -> DataError:
    """Word a failure of the csv module as the reader words it (line number, no value)."""
    if "field larger than field limit" in str(exc):
        return DataError(
            f"line {line} has a field longer than {csv.field_size_limit():,} characters",
            file=dataset,
            hint="Check for a double quote that is never closed; no value or column name "
            "may be that long",
        )
    return DataError(
        f"could not be read as {_NAMES[dialect.sep]}-separated CSV at line {line}",
        file=dataset,
        hint="Check that it is a text file with a header row",
    )


def _point_for_comma(field: str, j: int, points: dict) -> str:
    """Turn ``9,266`` into ``9.266``; count a ``9.266`` in column ``j`` (not a number here)."""
    if _COMMA_NUMBER.fullmatch(field):
        return field.replace(",", ".")
    if _POINT_NUMBER.fullmatch(field):
        points[j] = points.get(j, 0) + 1
    return field
