"""People from a CSV file with a header row, read as a stream (any number of rows)."""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from bot.cli import CommandError
from bot.services.campaign_file import is_zone
from bot.services.people import PersonInput

# The campaign's declared fields are columns too.
COLUMNS = ("email", "first_name", "last_name", "company", "title", "time_zone")
UTF8_BOM = b"\xef\xbb\xbf"  # what spreadsheets put in front of a "CSV UTF-8" file


def read_people(path: str, fields: Sequence[str]) -> Iterator[PersonInput]:
    """Each row's person, in order; a file or row that is not right raises CommandError
    naming the row and the column. Addresses are left for the add to check, as typed ones are."""
    try:
        with Path(path).open("rb") as file:
            yield from _people(path, file, fields)
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read it ({exc.strerror})") from None


def _people(path: str, file: BinaryIO, fields: Sequence[str]) -> Iterator[PersonInput]:
    rows = csv.reader(_text_lines(path, file), strict=True)

    def next_row() -> list[str] | None:
        try:
            return next(rows, None)
        except csv.Error as exc:  # e.g. a quote that is never closed
            raise CommandError(f"{path}, row {rows.line_num}: not valid CSV: {exc}") from None

    header = next_row()
    if header is None:
        raise CommandError(f"{path}: the file is empty: its first row names the columns (email, first_name, ...)")
    columns = _columns(path, [cell.strip() for cell in header], fields)
    zones: dict[str, bool] = {}
    while (cells := next_row()) is not None:
        where = f"{path}, row {rows.line_num}"
        if len(cells) > len(columns):
            raise CommandError(f"{where}: {len(cells)} cells, but the first row names {len(columns)} columns")
        values = {column: cell.strip() for column, cell in zip(columns, cells)}
        if not any(values.values()):
            continue  # spreadsheets leave rows of empty cells behind
        if not values.get("email"):
            raise CommandError(f"{where}, column email: empty: every person needs an address")
        zone = values.get("time_zone") or None
        if zone is not None and zone not in zones:
            zones[zone] = is_zone(zone)
        if zone is not None and not zones[zone]:
            raise CommandError(
                f'{where}, column time_zone: "{zone}" is not a known time zone: use an IANA name like Europe/Stockholm'
            )
        yield PersonInput(
            email=values["email"],
            first_name=values.get("first_name", ""),
            last_name=values.get("last_name", ""),
            company=values.get("company", ""),
            title=values.get("title", ""),
            timezone=zone,
            fields={column: value for column, value in values.items() if column not in COLUMNS and value},
        )


def _text_lines(path: str, file: BinaryIO) -> Iterator[str]:
    """The file's lines as text, each decoded on its own so a bad byte is named by its row."""
    for number, line in enumerate(file, start=1):
        if number == 1:
            line = line.removeprefix(UTF8_BOM)
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"{path}, row {number}: not UTF-8 text: save the file as CSV in UTF-8") from None


def _columns(path: str, header: list[str], fields: Sequence[str]) -> list[str]:
    known = [*COLUMNS, *fields]
    for number, column in enumerate(header, start=1):
        where = f"{path}, row 1, column {number}"
        if not column:
            raise CommandError(f"{where}: no column name")
        if column not in known:
            close = difflib.get_close_matches(column, known, n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            raise CommandError(f'{where}: unknown column "{column}": {hint}the columns are {", ".join(known)}')
        if header.index(column) < number - 1:
            raise CommandError(f'{where}: column "{column}" is there twice')
    if "email" not in header:
        raise CommandError(f"{path}, row 1: no email column: the first row names the columns, one of them email")
    return header
