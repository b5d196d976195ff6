"""Streamlit glue that needs no page: keeping the post-run garbage collection cheap."""

from __future__ import annotations

import gc
import sys
import types

import pytest

from skinlab.app import ui


@pytest.fixture
def heap_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # Record instead of freezing: a real gc.freeze() would pin this test process's objects.
    calls: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append("collect"))
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(ui, "_modules_frozen", 0)
    return calls


def test_heap_is_frozen_once_after_new_imports_and_not_again_until_more(
    heap_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ui.settle_heap()
    ui.settle_heap()
    assert heap_calls == ["collect", "freeze"]  # collected first, so no garbage is pinned

    monkeypatch.setitem(sys.modules, "freshly_imported", types.ModuleType("freshly_imported"))
    ui.settle_heap()
    assert heap_calls == ["collect", "freeze"] * 2
