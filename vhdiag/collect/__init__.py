"""Collectors: one module per DBA question, each returning one typed pandas DataFrame.

Every collector documents its columns in a ``COLUMNS`` mapping (name -> dtype) and returns
exactly those columns, in that order, on every supported server version (PostgreSQL 13 to
18). A feature the server or role lacks gives an empty frame with the same columns and one
notice on the Target that names the fix.

A collector registers itself with ``@collector(name=..., description=...)`` (registry.py), and
its SQL lives in ``sql/*.sql`` with ``/* vhdiag */`` after the first keyword (vhdiag/marker.py):
a new question is one module and one SQL file; Target, ``vhdiag show``, doctor and snapshot
find it in the registry. SQL that several files share is written once, in a fragment
``sql/_<name>.sql`` that each includes with a line ``-- include: _<name>.sql`` (_base.load_sql).
"""
