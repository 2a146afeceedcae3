"""The history store: snapshots of what the collectors see, as deltas over time.

``History(url)`` opens a store: a file path or ``sqlite:///PATH`` (default: an SQLite file in the
user data directory, or ``$VHDIAG_HISTORY``), or a ``postgresql://`` URL for a team.
``History.snapshot(target)`` records one snapshot, creating the store (0600) on first use; the
readers take ``since``/``until`` as datetimes, ISO 8601 strings or durations back from now (``7d``)
and raise ``NoStoreError`` where nothing was recorded yet (``guard.py``).
"""
from .guard import NoStoreError
from .store import History, default_url, normalize_url


def load_metrics(url, since=None, until=None, step=None, queries=None, target=None):
    """Metric frame from the store (see vhdiag.history.metrics); what vhdiag.load_metrics calls."""
    from .metrics import load_metrics as _load
    return _load(url, since=since, until=until, step=step, queries=queries, target=target)


__all__ = ["History", "NoStoreError", "default_url", "normalize_url", "load_metrics"]
