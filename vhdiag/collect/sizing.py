"""Which tables a snapshot sizes: those whose statistics moved since the last snapshot, and every
table once a day.

Sizing is most of a snapshot's time on the monitored server: ``pg_relation_size`` and its kin
open every fork of every table, index and TOAST relation, and a new backend first loads each
one's catalog entries (benchmarks/RESULTS.md: 1.3-1.9 s of 2 s at 10,000 tables). A table whose
files and row counters did not move cannot have changed size, so a snapshot sizes only the
tables whose *signature* (sql/space_signatures.sql: relfilenodes of the table and its indexes,
rows inserted, updated, deleted, live and dead, (auto)vacuum counts of the table and its TOAST)
differs from the one the store holds, and the store carries the others' last sizes forward.
pg_profile makes the same trade-off (``relsize_collect_mode``).

Once a day (the first snapshot of each UTC day, so also whenever the last full sizing is over
24 h old) every table is sized, so table growth is exact at the daily points whatever the
counters missed (a write whose statistics were not yet flushed). A server in recovery sizes
every table every time: a standby replays writes without counting them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import _base


@dataclass
class SizePlan:
    """What one snapshot sizes: everything (``full``) or the tables whose signature moved."""

    full: bool = True
    known: dict = field(default_factory=dict)   # (schema, table) -> signature at the last snapshot
    _chosen: tuple | None = field(default=None, repr=False)

    @property
    def sizing(self) -> str:
        """The snapshot's marker: ``full`` (every table sized) or ``changed``."""
        return "full" if self.full else "changed"

    def choose(self, target) -> tuple[list[int], dict]:
        """(oids of the tables to size, {(schema, table): signature now}); read once per snapshot."""
        if self._chosen is None:
            if self.full is False and target.capabilities.in_recovery:
                self.full = True
            sigs = target.query(_base.load_sql("space_signatures"))
            keys = list(zip(sigs["schema"], sigs["table"]))
            now = dict(zip(keys, sigs["sig"]))
            moved = [int(o) for o, k, g in zip(sigs["oid"], keys, sigs["sig"]) if self.known.get(k) != g]
            self._chosen = (moved, now)
        return self._chosen

    def params(self, target) -> dict:
        """The bind parameters of the snapshot's size queries: ``all_sizes`` and ``oids``."""
        oids, _ = self.choose(target)
        return {"all_sizes": bool(self.full), "oids": [] if self.full else oids}
