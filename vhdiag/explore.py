"""What explore.ipynb (``vhdiag lab``) needs besides the public calls, so the notebook stays thin.

The notebook's parameters are references, never secrets (design card: "connection strings are
referenced, never embedded in an executed notebook"): ``env:VHDIAG_DSN`` for the database, which
``vhdiag.connect`` reads itself, and ``env:NAME`` for the store and the target's name in it.
"""
from __future__ import annotations

import os

import pandas as pd

from .analysis.query_text import is_own


def resolve(reference: str | None) -> str | None:
    """``env:NAME`` -> the variable's value, None when it is unset or empty (the default then
    applies: ``History()``'s store, ``vhdiag snapshot``'s name); anything else as it is."""
    if reference and reference.startswith("env:"):
        return os.environ.get(reference[4:]) or None
    return reference or None


def target_name(db, reference: str | None) -> str:
    """The target's name in the store: the one given, else ``host:port/dbname`` as ``vhdiag
    snapshot`` names it (never "the store's only target": that could be another database)."""
    from .history.store import default_target_name
    return resolve(reference) or default_target_name(db)


def without_own(statements: pd.DataFrame) -> pd.DataFrame:
    """The statements minus vhdiag's own (``/* vhdiag */``): they are not the application's load."""
    return statements[[not is_own(q) for q in statements["query"]]]


def heaviest(statements: pd.DataFrame, by: str = "total_exec_ms") -> int | None:
    """The queryid of the statement with the largest ``by`` (None when there is none)."""
    ranked = statements.dropna(subset=[by]).sort_values(by, ascending=False)
    return int(ranked["queryid"].iloc[0]) if len(ranked) else None
