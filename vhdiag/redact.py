"""Passwords out of statement text, found by PostgreSQL's own parser rather than by patterns.

pg_stat_statements replaces the constants of plannable statements by ``$1``, but keeps utility
statements (CREATE/ALTER ROLE, user mappings, subscriptions) as they were typed, and
pg_stat_activity shows any statement as sent, while it runs and after; so ``ALTER ROLE app
PASSWORD 'x'`` reaches vhdiag with its password. SQL has five ways to write that literal
(``'x'``, ``E'x'``, ``U&'x'`` with an optional ``UESCAPE``, ``$$x$$``, ``$tag$x$tag$``) and allows
comments anywhere between the keyword and the literal, which is why patterns kept missing some.
Here pglast (libpg_query: the server's own grammar) says which literals are secrets, and its
scanner gives each literal's exact range, so only that range changes and the rest of the
statement stays as it was typed.

What is a secret:

- the argument of every option whose name holds ``password`` (role options ``PASSWORD`` and
  ``ENCRYPTED PASSWORD`` of CREATE/ALTER ROLE/USER/GROUP; ``OPTIONS (password ..)`` and
  ``sslpassword`` of user mappings, servers and wrappers): becomes ``'***'``. Not
  ``password_required``, a postgres_fdw switch whose value is true or false;
- the value of a setting whose name holds ``password`` (``SET myext.password = ..``), except
  ``password_encryption`` (an algorithm name);
- inside any string literal, in any of its forms: libpq's ``password=`` and ``sslpassword=``
  (dblink, dblink_connect, CREATE SUBSCRIPTION ... CONNECTION) and the password of a URI
  (``postgresql://user:secret@host``): the literal is rewritten as a plain ``'...'`` literal with
  only the secret replaced by ``***``.

A statement that does not parse (newer syntax than pglast's, text cut short by
track_activity_query_size) and might hold a secret is hidden whole (``HIDDEN``). Text without a
sign of a secret is returned untouched without parsing, so the common case stays cheap.

pglast scans as a server with ``standard_conforming_strings = on`` (the default since 9.1); on a
server with it off, a backslash in a plain ``'...'`` literal may end up hiding the statement.
"""
from __future__ import annotations

import bisect

REDACTED = "'***'"
HIDDEN = "/* vhdiag: statement hidden: it mentions a password and could not be parsed */"
MESSAGE_HIDDEN = "(rest hidden: it mentions a password)"

_LITERALS = {"SCONST", "USCONST"}
_COMMENTS = {"C_COMMENT", "SQL_COMMENT"}
_NOT_SECRET = {"password_required", "password_encryption"}


def redact_secrets(text):
    """``text`` with every password literal replaced (module docstring); None and NA pass
    through, and the text of a statement that cannot be parsed but may hold one is ``HIDDEN``.
    Never raises."""
    if not isinstance(text, str) or not _may_hold_secret(text):
        return text
    try:
        import pglast
        stmts = pglast.parse_sql(text)
        tokens = pglast.parser.scan(text)
    except Exception:  # pglast.parser.ParseError: cut short, or syntax pglast does not know
        return HIDDEN if _mentions_secret(text) else text
    try:
        return _rewrite(text, tokens, *_secrets(text, stmts))
    except Exception:  # text pglast accepted but could not be mapped back: never show it
        return HIDDEN


def redact_message(text):
    """An error line or other free text with the secrets it may quote replaced: as a statement
    where it tokenizes as SQL (a word naming a password followed by a literal, conninfo and URI
    passwords inside literals and outside), else cut after its first mention of a password."""
    if not isinstance(text, str) or not _may_hold_secret(text):
        return text
    try:
        from pglast import parser
        tokens = parser.scan(text)
        after = set()
        for tok in tokens:
            if tok.kind != "NO_KEYWORD" or tok.name == "IDENT":
                word = text[tok.start:tok.end + 1].strip('"').lower()
                if "password" in word and word not in _NOT_SECRET:
                    after.add(tok.end + 1)
        return _scrub_conninfo(_rewrite(text, tokens, {}, after, []))
    except Exception:
        text = _scrub_conninfo(text)
        at = text.lower().find("password")
        return text if at < 0 else f"{text[:at + len('password')]} {MESSAGE_HIDDEN}"


def _may_hold_secret(text: str) -> bool:
    """The cheap test before any parsing: the word, a URI, or escapes that could spell either
    (``U&'pass\\0077ord=x'``)."""
    low = text.lower()
    return "password" in low or "://" in text or _escapes(text, low)


def _mentions_secret(text: str) -> bool:
    """For text that does not parse: the word, a URI with a password, or escapes (a URL without
    credentials, common in DML cut short, is no reason to hide the statement)."""
    low = text.lower()
    return "password" in low or _escapes(text, low) or _scrub_conninfo(text) != text


def _escapes(text: str, low: str) -> bool:
    return ("\\" in text and ("e'" in low or "u&" in low)) or "uescape" in low


def _secrets(text: str, stmts):
    """Where the secrets of parsed statements are, as character offsets (pglast's, as its
    scanner's): ``exact`` maps an option's ``arg_location`` (pglast 8) to where its name starts;
    ``after`` holds names whose literal is the first among the next few tokens (older pglast, or
    an ``arg_location`` that is not a literal's start); ``ranges`` are statements whose every
    literal is secret (a ``SET`` of a password setting)."""
    from pglast import ast
    exact, after, ranges = {}, set(), []
    for raw in stmts:
        for node in _walk(raw.stmt):
            if isinstance(node, ast.DefElem):
                name = (node.defname or "").lower()
                if "password" in name and name not in _NOT_SECRET:
                    loc = getattr(node, "arg_location", None)
                    name_at = node.location if isinstance(node.location, int) and node.location >= 0 else None
                    if isinstance(loc, int) and loc >= 0:
                        exact[loc] = name_at
                    elif name_at is not None:
                        after.add(name_at)
            elif isinstance(node, ast.VariableSetStmt):
                name = (node.name or "").lower()
                if "password" in name and name not in _NOT_SECRET:
                    start = max(raw.stmt_location or 0, 0)
                    ranges.append((start, start + raw.stmt_len if raw.stmt_len else len(text)))
    return exact, after, ranges


def _walk(node):
    """Every pglast node under ``node``."""
    from pglast import ast
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, (list, tuple)):
            stack.extend(cur)
        elif isinstance(cur, ast.Node):
            yield cur
            stack.extend(getattr(cur, slot, None) for slot in cur.__slots__)


_ENDS_OPTION = {"ASCII_44", "ASCII_41", "ASCII_59"}   # , ) ;


def _rewrite(text: str, tokens, exact, after, ranges) -> str:
    """Replace literal tokens: the secrets wholesale (``'***'``), the others only where their
    value holds a conninfo or URI password."""
    spans = _literal_spans(tokens)   # (start, end_exclusive), in order
    by_start = {s: (s, e) for s, e in spans}
    significant = [t for t in tokens if t.name not in _COMMENTS]
    sig_starts = [t.start for t in significant]
    replace: dict[tuple[int, int], str] = {}
    after = set(after)
    for start, name_at in exact.items():
        if start in by_start:
            replace[by_start[start]] = REDACTED
        elif name_at is not None:
            after.add(name_at)
    for start in after:
        i = bisect.bisect_left(sig_starts, start)
        for tok in significant[i:i + 4]:
            if tok.name in _ENDS_OPTION:
                break
            if tok.start in by_start:
                replace[by_start[tok.start]] = REDACTED
                break
    for lo, hi in ranges:
        for span in spans:
            if lo <= span[0] < hi:
                replace[span] = REDACTED
    dangling = False   # the literal before ended in "password=": 'host=db password=' || 'x'
    for span in spans:
        if dangling or span in replace:
            replace.setdefault(span, REDACTED)
            dangling = False
            continue
        literal = text[span[0]:span[1]]
        value = _literal_value(literal)
        if value is None:
            if _may_hold_secret(literal):
                replace[span] = REDACTED
            continue
        scrubbed = _scrub_conninfo(value)
        if scrubbed != value:
            replace[span] = "'" + scrubbed.replace("'", "''") + "'"
        dangling = _ends_in_password_key(value)
    if not replace:
        return text
    out, pos = [], 0
    for (s, e), new in sorted(replace.items()):
        out.append(text[pos:s])
        out.append(new)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _literal_spans(tokens) -> list[tuple[int, int]]:
    """Spans of the string literals, a ``U&'..'`` with its ``UESCAPE '.'`` as one."""
    spans = []
    sig = [t for t in tokens if t.name not in _COMMENTS]
    for i, tok in enumerate(sig):
        if tok.name not in _LITERALS:
            continue
        if i > 0 and sig[i - 1].name == "UESCAPE":
            continue  # the escape character of the U& literal before it
        end = tok.end + 1
        if tok.name == "USCONST" and i + 2 < len(sig) and sig[i + 1].name == "UESCAPE" \
                and sig[i + 2].name == "SCONST":
            end = sig[i + 2].end + 1
        spans.append((tok.start, end))
    return spans


def _literal_value(literal: str) -> str | None:
    """The string a literal stands for, as the server reads it; None when it does not decode."""
    if literal.startswith("'") and "\n" not in literal and "'" not in literal[1:-1].replace("''", ""):
        return literal[1:-1].replace("''", "'")
    if literal.startswith("$"):
        tag_end = literal.index("$", 1) + 1
        return literal[tag_end:len(literal) - tag_end]
    try:  # E'..', U&'..' UESCAPE '.', and literals continued on the next line: as the server does
        import pglast
        from pglast import ast
        (stmt,) = pglast.parse_sql("SELECT " + literal)
        node = stmt.stmt.targetList[0].val
        return node.val.sval if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String) else None
    except Exception:
        return None


# -- conninfo: libpq's key = value words and URIs (libpq's conninfo_parse, conninfo_uri_parse) ----

def _scrub_conninfo(value: str) -> str:
    """``value`` with the value of every ``*password=`` word and every URI password as ``***``."""
    out, pos, low = [], 0, value.lower()
    i = 0
    while True:
        p, u = low.find("password", i), value.find("://", i)
        if p < 0 and u < 0:
            break
        if p >= 0 and (u < 0 or p < u):
            span = _keyword_value(value, low, p)
            i = p + len("password")
        else:
            span = _uri_password(value, u)
            i = u + 3
        if span and span[0] >= pos:
            out.append(value[pos:span[0]])
            out.append("***")
            pos = i = span[1]
    out.append(value[pos:])
    return "".join(out)


def _ends_in_password_key(value: str) -> bool:
    """``...password=`` with its value left to whatever is concatenated next."""
    rest = value.rstrip()
    if not rest.endswith("="):
        return False
    rest = rest[:-1].rstrip()
    start = len(rest)
    while start > 0 and _is_word(rest[start - 1]):
        start -= 1
    key = rest[start:].lower()
    return "password" in key and key not in _NOT_SECRET


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _keyword_value(value: str, low: str, p: int) -> tuple[int, int] | None:
    """The span of the value of the ``key = value`` word whose key holds ``password`` at p."""
    ks, ke = p, p + len("password")
    while ks > 0 and _is_word(value[ks - 1]):
        ks -= 1
    while ke < len(value) and _is_word(value[ke]):
        ke += 1
    if low[ks:ke] in _NOT_SECRET:
        return None
    j = ke
    while j < len(value) and value[j].isspace():
        j += 1
    if j >= len(value) or value[j] != "=":
        return None
    j += 1
    while j < len(value) and value[j].isspace():
        j += 1
    start = j
    in_query = ks > 0 and value[ks - 1] in "?&"      # ...?user=a&password=x&sslmode=... in a URI
    if j < len(value) and value[j] == "'":            # quoted: backslash escapes, to the closing quote
        j += 1
        while j < len(value) and value[j] != "'":
            j += 2 if value[j] == "\\" else 1
        return start, min(j + 1, len(value))
    while j < len(value) and not value[j].isspace() and not (in_query and value[j] in "&#"):
        j += 2 if value[j] == "\\" else 1
    return (start, min(j, len(value))) if j > start else None


def _uri_password(value: str, u: int) -> tuple[int, int] | None:
    """The span of the password in ``scheme://user:password@host``. libpq ends the user info at
    the first '@' (before any '/'); here it runs to the last '@' of the word, so that a raw '@'
    or '/' in a password is covered too (a path holding '@' is hidden with it)."""
    j = u + 3
    end = j
    while end < len(value) and not value[end].isspace():
        end += 1
    at = value.rfind("@", j, end)
    if at < 0:
        return None
    colon = value.find(":", j, at)
    return (colon + 1, at) if colon >= 0 else None
