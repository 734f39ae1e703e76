"""`--dist loadgroup` (make test) sends a module marked `xdist_group` to one worker, so its module
fixture runs once. xdist 3.8 marks the group by writing the item's `_nodeid`, which pytest 9 no
longer reads (it keeps the id in `_id`): without this hook the marks were silently ignored.
tests/unit/test_xdist_groups.py runs xdist on a grouped module to show they hold."""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Carry xdist's group id (written to `_nodeid`) into the id pytest 9 reads."""
    from _pytest.nodeid import coerce_node_id

    for item in items:
        grouped = item.__dict__.get("_nodeid")
        if grouped and grouped != item.nodeid:
            item._id = coerce_node_id(grouped)  # type: ignore[attr-defined]
