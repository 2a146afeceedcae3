"""The history store: snapshots of what the collectors see, as deltas over time.

``History(url)`` opens (and creates or migrates) a store: a file path or ``sqlite:///PATH``
(default: an SQLite file in the user data directory, or ``$VHDIAG_HISTORY``), or a
``postgresql://`` URL for a team. ``History.snapshot(target)`` records one snapshot; the readers
take ``since``/``until`` as datetimes, ISO 8601 strings or durations back from now (``7d``).
"""
from .store import History, default_url, normalize_url

__all__ = ["History", "default_url", "normalize_url"]
