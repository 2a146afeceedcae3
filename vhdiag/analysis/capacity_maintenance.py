"""The capacity report's maintenance debt, from frames (no database here): dead rows, heap and
btree-index bloat, duplicate, unused and invalid indexes, transaction ID wraparound and sequence
exhaustion (runbook 6 "Database Optimization").

Kinds (default severity): ``dead_tuples``, ``bloat``, ``unused_index``, ``duplicate_index``,
``invalid_index``, ``wraparound``, ``sequence_exhaustion`` (warning). Every suggestion is SQL to run
by hand; vhdiag executes none of it.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..display import human_bytes
from .capacity import as_float, at_minute
from .findings import finding

# How collect/bloat.py's estimate is made: the name every figure from it carries.
STATS_METHOD = "statistics (ioguix btree estimate)"

WRAPAROUND = 2**31 - 1
_SIMPLE = re.compile(r"[a-z_][a-z0-9_]*")
_RESERVED = {"all", "analyse", "analyze", "and", "any", "array", "as", "asc", "both", "case", "cast", "check",
             "collate", "column", "constraint", "create", "default", "desc", "distinct", "do", "else", "end",
             "except", "false", "for", "foreign", "from", "grant", "group", "having", "in", "index", "into",
             "is", "limit", "not", "null", "offset", "on", "only", "or", "order", "primary", "references",
             "select", "table", "then", "to", "true", "union", "unique", "user", "using", "when", "where", "with"}


def qident(*names: str) -> str:
    """``schema.name`` quoted as PostgreSQL's quote_ident does, for suggestions (text only)."""
    return ".".join(n if _SIMPLE.fullmatch(n) and n not in _RESERVED else '"' + n.replace('"', '""') + '"'
                    for n in map(str, names))


# -- 6. maintenance debt --------------------------------------------------------------------
def dead_tuple_tables(maint: pd.DataFrame, min_dead: int, min_pct: float, max_age_days: float,
                      now: pd.Timestamp) -> pd.DataFrame:
    """Tables whose dead rows (at least ``min_dead`` and ``min_pct`` of the rows) call for a VACUUM,
    with how long since the last (auto)vacuum."""
    if maint is None or maint.empty:
        return pd.DataFrame(columns=["schema", "table", "n_dead_tup", "dead_tup_pct", "last_vacuumed",
                                     "autovacuum_enabled", "suggestion"])
    m = maint.copy()
    m["last_vacuumed"] = m[["last_vacuum", "last_autovacuum"]].max(axis=1)
    age = (now - m["last_vacuumed"]).dt.total_seconds() / 86400
    dead = m["n_dead_tup"].fillna(0)
    pct = m["dead_tup_pct"].fillna(0)
    old = (dead >= min_dead) & (age.isna() | (age >= max_age_days))
    due = (dead >= min_dead) & ((pct >= min_pct) | old)
    m = m[due].copy()
    m["suggestion"] = [f"VACUUM (ANALYZE) {qident(s, t)};" for s, t in zip(m["schema"], m["table"])]
    return m[["schema", "table", "n_dead_tup", "dead_tup_pct", "last_vacuumed", "autovacuum_enabled",
              "suggestion"]].sort_values("n_dead_tup", ascending=False).reset_index(drop=True)


BLOAT_METHOD = ("heap: the dead-row share of the table's heap bytes (pg_stat_user_tables n_dead_tup over "
                "n_live_tup + n_dead_tup), an estimate")


def heap_bloat_estimate(tables: pd.DataFrame) -> pd.DataFrame:
    """``bloat_pct`` and ``bloat_bytes`` of every row of a tables frame by ``BLOAT_METHOD``
    (null where the sizes are), aligned with ``tables``: what ``Target.tables()`` shows and
    ``heap_bloat`` filters."""
    live, dead = tables["n_live_tup"].fillna(0).astype(float), tables["n_dead_tup"].fillna(0).astype(float)
    rows = live + dead
    pct = pd.Series(np.where(rows > 0, 100 * dead / rows.where(rows > 0, 1), 0.0), index=tables.index)
    size = pd.to_numeric(tables["table_bytes"], errors="coerce").astype(float)
    return pd.DataFrame({"bloat_pct": pct.where(size.notna()), "bloat_bytes": (size * pct / 100).round()},
                        index=tables.index)


def heap_bloat(tables: pd.DataFrame, min_pct: float, min_bytes: int) -> pd.DataFrame:
    """Estimated heap bloat per table by ``BLOAT_METHOD``, over both thresholds."""
    t = tables.dropna(subset=["table_bytes"]).copy()
    t[["bloat_pct", "bloat_bytes"]] = heap_bloat_estimate(t)
    t = t[(t["bloat_pct"] >= min_pct) & (t["bloat_bytes"] >= min_bytes)].copy()
    t["suggestion"] = [f"VACUUM (ANALYZE) {qident(s, n)};  -- frees the space for reuse; VACUUM FULL or "
                       "pg_repack returns it to the disk (VACUUM FULL locks the table)"
                       for s, n in zip(t["schema"], t["table"])]
    return t[["schema", "table", "table_bytes", "bloat_pct", "bloat_bytes", "suggestion"]].reset_index(drop=True)


INDEX_BLOAT_SUGGESTION = ("REINDEX INDEX CONCURRENTLY {};  -- rebuilds it beside the old one (needs its size "
                          "free on disk), then swaps; not inside a transaction block")


def with_exact_tables(bloat_all: pd.DataFrame, exact: pd.DataFrame | None) -> pd.DataFrame:
    """``heap_bloat`` rows (every table, before the thresholds) with pgstattuple_approx's figures
    where there are some; ``method`` says which one each row comes from."""
    t = bloat_all.copy()
    t["method"] = "dead-row share"
    if exact is None or exact.empty:
        return t
    ex = exact[exact["kind"] == "table"].set_index(["schema", "relation"])
    for i, rec in t.iterrows():
        key = (rec["schema"], rec["table"])
        if key in ex.index:
            e = ex.loc[key]
            t.loc[i, ["table_bytes", "bloat_bytes", "bloat_pct", "method"]] = [
                e["bytes"], e["bloat_bytes"], e["bloat_pct"], e["method"]]
    return t


def index_bloat(estimates: pd.DataFrame, exact: pd.DataFrame | None, min_pct: float, min_bytes: int) -> pd.DataFrame:
    """Btree-index bloat per index: the statistics estimate, replaced by pgstatindex's figure where
    there is one (``method`` says which), with ``over`` for those over both thresholds and the
    REINDEX to run by hand. An estimate flagged unreliable (``is_na``) is never over."""
    cols = ["schema", "table", "index", "bytes", "bloat_bytes", "bloat_pct", "method", "reliable", "over",
            "suggestion"]
    if estimates is None or estimates.empty:
        return pd.DataFrame(columns=cols)
    b = estimates.rename(columns={"real_bytes": "bytes"}).copy()
    b["method"] = STATS_METHOD
    b["reliable"] = ~b["is_na"].fillna(False).astype(bool)
    if exact is not None and not exact.empty:
        ex = exact[exact["kind"] == "index"].set_index(["schema", "relation"])
        for i, rec in b.iterrows():
            key = (rec["schema"], rec["index"])
            if key in ex.index:
                e = ex.loc[key]
                b.loc[i, ["bytes", "bloat_bytes", "bloat_pct", "method", "reliable"]] = [
                    e["bytes"], e["bloat_bytes"], e["bloat_pct"], e["method"], True]
    b["over"] = (b["reliable"].astype(bool) & (b["bloat_pct"].astype(float) >= min_pct)
                 & (b["bloat_bytes"].astype(float) >= min_bytes))
    b["suggestion"] = [INDEX_BLOAT_SUGGESTION.format(qident(s, i)) if o else ""
                       for s, i, o in zip(b["schema"], b["index"], b["over"])]
    return b[cols].sort_values("bloat_bytes", ascending=False).reset_index(drop=True)


def duplicate_groups(indexes: pd.DataFrame) -> pd.DataFrame:
    """One row per index to drop among identical indexes: the one kept is one that backs a
    constraint, else the most scanned (so a used index is never dropped for an unused one)."""
    cols = ["schema", "table", "index", "bytes", "scans", "keep", "keep_scans", "suggestion"]
    if indexes is None or indexes.empty:
        return pd.DataFrame(columns=cols)
    ix = indexes[indexes["valid"].fillna(False).astype(bool)].copy()
    ix["group"] = ix["duplicate_of"].fillna(ix["index"])
    rows = []
    for (schema, table, _), g in ix.groupby(["schema", "table", "group"]):
        if len(g) < 2:
            continue
        enforce = g["primary"].fillna(False) | g["constraint"].notna() | g["unique"].fillna(False)
        pool = g[enforce] if enforce.any() else g
        keep = pool.assign(s=pool["scans"].fillna(0)).sort_values(["s", "index"], ascending=[False, True]).iloc[0]
        for rec in g[g["index"] != keep["index"]].to_dict("records"):
            if rec["constraint"] is not None and not pd.isna(rec["constraint"]):
                sql = f"ALTER TABLE {qident(schema, table)} DROP CONSTRAINT {qident(rec['constraint'])};"
            else:
                sql = f"DROP INDEX CONCURRENTLY {qident(schema, rec['index'])};"
            rows.append({"schema": schema, "table": table, "index": rec["index"], "bytes": rec["bytes"],
                         "scans": rec["scans"], "keep": keep["index"], "keep_scans": keep["scans"], "suggestion": sql})
    return pd.DataFrame(rows, columns=cols)


def unused_indexes(indexes: pd.DataFrame, tables: pd.DataFrame, dropped: set) -> pd.DataFrame:
    """Unused indexes (not already dropped as a duplicate), with the writes that maintain them:
    rows inserted, deleted and updated other than HOT on their table since the statistics reset."""
    cols = ["schema", "table", "index", "bytes", "scans", "writes", "suggestion"]
    if indexes is None or indexes.empty:
        return pd.DataFrame(columns=cols)
    u = indexes[indexes["unused"].fillna(False).astype(bool)].copy()
    # A boolean array, not a list: an empty list would select no columns instead of no rows.
    u = u[np.array([(s, i) not in dropped for s, i in zip(u["schema"], u["index"])], dtype=bool)]
    w = tables.set_index(["schema", "table"])
    writes = (w["n_tup_ins"].fillna(0) + w["n_tup_del"].fillna(0) + w["n_tup_upd"].fillna(0)
              - w["n_tup_hot_upd"].fillna(0))
    u["writes"] = [int(writes.get((s, t), 0)) for s, t in zip(u["schema"], u["table"])]
    u["suggestion"] = [f"DROP INDEX CONCURRENTLY {qident(s, i)};" for s, i in zip(u["schema"], u["index"])]
    return u[cols].sort_values("bytes", ascending=False, na_position="last").reset_index(drop=True)


# -- findings -------------------------------------------------------------------------------
def _b(v) -> str:
    return human_bytes(v) if v is not None and not pd.isna(v) else "unknown"


def maintenance_findings(*, dead: pd.DataFrame, bloat: pd.DataFrame, unused: pd.DataFrame, dups: pd.DataFrame,
                         invalid: pd.DataFrame, wrap: pd.DataFrame, seqs: pd.DataFrame, wrap_pct: float,
                         seq_pct: float, index_bloat: pd.DataFrame | None = None) -> list[dict]:
    out = []
    for r in dead.to_dict("records"):
        since = f"last vacuumed {at_minute(r['last_vacuumed'])}" if pd.notna(r["last_vacuumed"]) else "never vacuumed"
        auto = "" if r["autovacuum_enabled"] is not False else " Autovacuum is off for this table (reloption)."
        out.append(finding("dead_tuples", "warning", f"{r['schema']}.{r['table']}",
                           f"Dead rows: {r['schema']}.{r['table']}: {int(r['n_dead_tup']):,} ({as_float(r['dead_tup_pct']):.0f} %)",
                           f"{int(r['n_dead_tup']):,} dead rows, {as_float(r['dead_tup_pct']):.1f} % of the table; {since}.{auto}",
                           f"-- runbook 6, Database Optimization: VACUUM ANALYZE\n{r['suggestion']}",
                           n_dead_tup=r["n_dead_tup"], dead_tup_pct=r["dead_tup_pct"]))
    for r in bloat.to_dict("records"):
        method = r.get("method") or "dead-row share"
        how = BLOAT_METHOD if method == "dead-row share" else \
            f"{method} (pgstattuple: dead rows plus free space, read from the table's pages)"
        out.append(finding("bloat", "warning", f"{r['schema']}.{r['table']}",
                           f"Bloat: {r['schema']}.{r['table']}: about {_b(r['bloat_bytes'])} ({r['bloat_pct']:.0f} %)",
                           f"Estimated {_b(r['bloat_bytes'])} of the {_b(r['table_bytes'])} heap holds no live row; "
                           f"method: {how}.", r["suggestion"], bloat_bytes=r["bloat_bytes"], bloat_pct=r["bloat_pct"],
                           method=method, relation="table"))
    for r in (index_bloat[index_bloat["over"]].to_dict("records") if index_bloat is not None else []):
        out.append(finding("bloat", "warning", f"{r['schema']}.{r['index']}",
                           f"Index bloat: {r['schema']}.{r['index']}: about {_b(r['bloat_bytes'])} ({r['bloat_pct']:.0f} %)",
                           f"Estimated {_b(r['bloat_bytes'])} of the {_b(r['bytes'])} btree index {r['schema']}."
                           f"{r['index']} (on {r['table']}) is beyond what a fresh build at its fillfactor would "
                           f"take; method: {r['method']}.", r["suggestion"], bloat_bytes=r["bloat_bytes"],
                           bloat_pct=r["bloat_pct"], bytes=r["bytes"], method=r["method"], relation="index"))
    for r in unused.to_dict("records"):
        out.append(finding("unused_index", "warning", f"{r['schema']}.{r['index']}",
                           f"Unused index: {r['schema']}.{r['index']} ({_b(r['bytes'])})",
                           f"{r['schema']}.{r['index']} on {r['table']} has had no scan since the statistics reset; "
                           f"dropping it frees {_b(r['bytes'])} and the upkeep of {int(r['writes']):,} row writes "
                           "(inserts, deletes, non-HOT updates) it cost. A standby counts its own scans: check "
                           "replicas first.", r["suggestion"], bytes=r["bytes"], writes=r["writes"]))
    for r in dups.to_dict("records"):
        out.append(finding("duplicate_index", "warning", f"{r['schema']}.{r['index']}",
                           f"Duplicate index: {r['schema']}.{r['index']} duplicates {r['keep']} ({_b(r['bytes'])})",
                           f"{r['schema']}.{r['index']} ({as_float(r['scans']):,.0f} scans, {_b(r['bytes'])}) is identical "
                           f"to {r['keep']} ({as_float(r['keep_scans']):,.0f} scans): keep {r['keep']}, drop "
                           f"{r['index']}.", r["suggestion"], bytes=r["bytes"], keep=r["keep"], scans=r["scans"]))
    for r in invalid.to_dict("records"):
        out.append(finding("invalid_index", "warning", f"{r['schema']}.{r['index']}",
                           f"Invalid index: {r['schema']}.{r['index']}",
                           f"{r['schema']}.{r['index']} on {r['table']} is invalid (a failed concurrent build): the "
                           "planner ignores it but every write still maintains it.", r["suggestion"], bytes=r["bytes"]))
    for r in (wrap.to_dict("records") if wrap is not None else []):
        if as_float(r["wraparound_pct"]) >= wrap_pct:
            out.append(finding("wraparound", "warning", r["database"],
                               f"Transaction ID age: {r['database']} at {r['wraparound_pct']:.0f} % of wraparound",
                               f"age(datfrozenxid) is {int(r['xid_age']):,}, {int(r['xids_left']):,} IDs left.",
                               f"-- in database {r['database']}, during a quiet hour:\nVACUUM (FREEZE, ANALYZE);",
                               xid_age=r["xid_age"], wraparound_pct=r["wraparound_pct"]))
    for r in (seqs.to_dict("records") if seqs is not None else []):
        if as_float(r["used_pct"]) > seq_pct:
            out.append(finding("sequence_exhaustion", "warning", f"{r['schema']}.{r['sequence']}",
                               f"Sequence {r['schema']}.{r['sequence']} at {r['used_pct']:.0f} % of its range",
                               f"last_value {int(r['last_value']):,} of {int(r['max_value']):,} ({r['data_type']}).",
                               f"ALTER SEQUENCE {qident(r['schema'], r['sequence'])} AS bigint;  -- and the column "
                               "it feeds: ALTER TABLE ... ALTER COLUMN ... TYPE bigint (rewrites the table)",
                               used_pct=r["used_pct"]))
    return out
