"""Tables written as CSV for people to open in a spreadsheet, every cell shown as text.

A file name, class name or run name starting with ``=``, ``+``, ``-`` or ``@`` (an upload, a
folder or an archive member can be named so) would run as a formula when the CSV is opened
(``=HYPERLINK(...)``, OWASP's "CSV injection"); the app's downloads and the CLI's
``predict --csv`` both write through :func:`csv_text`.

Example::

    atomic.write_text(Path("out.csv"), csv_text(results_frame(results, class_names)))
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: What makes a spreadsheet read a cell as a formula (``=HYPERLINK(...)``, ``@SUM(...)``),
#: at the start of a cell or after a tab or carriage return.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: Any) -> Any:
    """``value`` as a CSV cell a spreadsheet shows as text: a string starting like a formula
    gets a leading ``'``, which spreadsheets hide and read as "text follows"; numbers stay
    numbers (a negative probability cannot occur, but a negative number is no formula)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV (no index), every text cell and column name :func:`spreadsheet_text`."""
    safe = frame.map(spreadsheet_text)
    safe.columns = [spreadsheet_text(str(c)) for c in frame.columns]
    return safe.to_csv(index=False)
