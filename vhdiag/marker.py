"""The comment that marks every statement vhdiag sends to a monitored database.

pg_stat_statements has no application_name, so a report could not tell vhdiag's own
collectors from the application's statements by anything but their text. Every statement
vhdiag writes therefore carries ``/* vhdiag */`` right after its first keyword
(``SELECT /* vhdiag */ ...``, ``WITH /* vhdiag */ ...``, ``EXPLAIN /* vhdiag */ ...``), and
``vhdiag.analysis.query_text.is_own`` reads that, nothing else. After the first keyword, not
before it: PostgreSQL 18 drops a statement's *leading* comment from the text it stores, and
keeps the others (15 keeps both). The comment does not change the queryid.

Statements the drivers send by themselves (``BEGIN READ ONLY``, ``ROLLBACK``) carry no marker:
see ``is_own`` for how they are recognised.
"""
from __future__ import annotations

MARKER = "/* vhdiag */"
