"""Which datasets the app and CLI can use: the synthetic demo, imported ones in
``data/``, and any folder a user names.

The demo dataset is the embedded default: :func:`default_dataset_root` generates it on
first use, so the app works with no dataset downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skinlab.core.confine import within
from skinlab.core.errors import DatasetLayoutError
from skinlab.core.paths import data_dir
from skinlab.data import demo
from skinlab.data.discovery import resolve_root


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset the user can pick.

    Attributes:
        name: short name (the folder name under ``data/``).
        root: the folder to pass to :func:`skinlab.data.discovery.discover`.
        label: what the UI shows; the demo always says it is synthetic.
        is_demo: True for the generated synthetic demo dataset.
    """

    name: str
    root: Path
    label: str
    is_demo: bool = False


def demo_entry() -> DatasetEntry:
    """The synthetic demo dataset (maybe not generated yet; see :func:`default_dataset_root`)."""
    return DatasetEntry(
        name=demo.DEMO_DIRNAME,
        root=demo.demo_root(),
        label=f"Demo ({demo.DEMO_LABEL})",
        is_demo=True,
    )


def available_datasets() -> list[DatasetEntry]:
    """The demo first, then every folder of ``data/`` that holds a dataset layout; a link
    leading outside the app's folders is left out, as typing its path would be refused."""
    entries = [demo_entry()]
    folder = data_dir()
    if not folder.is_dir():
        return entries
    for child in sorted(folder.iterdir()):
        if child.name.startswith(".") or not child.is_dir() or child.name == demo.DEMO_DIRNAME:
            continue
        if within(child) is None:
            continue
        try:
            root = resolve_root(child)
        except DatasetLayoutError:
            continue
        entries.append(DatasetEntry(name=child.name, root=root, label=child.name))
    return entries


def default_dataset_root() -> Path:
    """The demo dataset's root, generating it first if needed (a few seconds, once)."""
    return demo.ensure_demo_dataset()


def describe(root: str | Path) -> str:
    """How the UI names a dataset root: the demo says it is synthetic demo data."""
    path = Path(root)
    if demo.is_demo_dataset(path):
        return f"{demo.DEMO_LABEL} ({path})"
    return str(path)
