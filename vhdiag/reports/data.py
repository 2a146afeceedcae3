"""What every report opens: the target, the history store, and the target's name in it."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import VhdiagError
from . import refs


def resolve_target_name(db, given: str | None = None) -> str:
    """The target's name in the store, by ``vhdiag snapshot``'s rule: the name given
    (``--target-name``), else ``host:port/dbname`` of the live connection (a socket as
    ``local``). Never "the store's only target": that would file one database's report under
    another's history."""
    from ..history.store import default_target_name
    return given or default_target_name(db)


@dataclass
class Inputs:
    """An open target and store for one report run."""

    db: object
    store: object | None
    target_name: str
    snapshots: pd.DataFrame

    @property
    def has_history(self) -> bool:
        return len(self.snapshots) > 0

    def close(self) -> None:
        self.db.close()
        if self.store is not None:
            self.store.close()


def open_inputs(target, history, target_name=None, statement_timeout_ms=None) -> Inputs:
    """Connect to the target (a DSN, ``env:NAME`` or an open Target) and open its history."""
    import vhdiag
    from ..history import History, NoStoreError
    from ..history.names import stored_name
    options = {"statement_timeout_ms": int(statement_timeout_ms)} if statement_timeout_ms else {}
    db = vhdiag.connect(target, **options)
    url = refs.history_url(history) if isinstance(history, str) and history.startswith("env:") else history
    name = resolve_target_name(db, target_name)
    store = History(url)
    try:
        names = list(store.targets()["name"])
    except NoStoreError:  # nothing recorded yet: cumulative figures, and no store is created
        names = []
    if not names:
        store.close()
        store = None
    stored = stored_name(names, name)   # an older store's socket name too (history/names.py)
    if target_name and names and stored is None:  # a typo would read no history, quietly
        db.close()
        store.close()
        raise VhdiagError(f"no target named {target_name!r} in the history store: known: {', '.join(names)}")
    snaps = store.snapshots(stored) if store is not None and stored is not None else pd.DataFrame()
    return Inputs(db, store, name, snaps)
