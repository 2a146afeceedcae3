"""Where a connection string comes from, and how it is shown without its password.

A target is given as a DSN (URI ``postgresql://...`` or libpq ``key=value`` words), as
``env:NAME`` (read the DSN from that environment variable), or not at all: then
``VHDIAG_DSN``, then ``DATABASE_URL`` (as the runbook's ``psql $DATABASE_URL``).
Reports and notebooks are handed the *reference* (``env:NAME``), never the DSN itself.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from psycopg.conninfo import conninfo_to_dict

from .errors import ConfigError

DEFAULT_ENV_VARS = ("VHDIAG_DSN", "DATABASE_URL")
_URI_SCHEMES = ("postgresql://", "postgres://")
_SQLALCHEMY_SCHEME = re.compile(r"^postgres(?:ql)?\+\w+://")


@dataclass(frozen=True)
class ResolvedDSN:
    conninfo: str = field(repr=False)  # what libpq gets; may hold a password
    reference: str                     # how the user named it: "env:DATABASE_URL" or a safe form
    params: dict = field(repr=False, default_factory=dict)

    @property
    def password(self) -> str | None:
        return self.params.get("password")

    # Before connecting, what libpq will use: the DSN's own value, else its PG* environment
    # variable (https://www.postgresql.org/docs/current/libpq-envars.html), else its default.
    # Once connected, Target.display says what the connection actually reached.
    @property
    def host(self) -> str:
        return self.params.get("host") or os.environ.get("PGHOST") or "localhost"

    @property
    def port(self) -> str:
        return str(self.params.get("port") or os.environ.get("PGPORT") or "5432")

    @property
    def user(self) -> str | None:
        return self.params.get("user") or os.environ.get("PGUSER") or None

    @property
    def dbname(self) -> str | None:
        return self.params.get("dbname") or os.environ.get("PGDATABASE") or None

    @property
    def display(self) -> str:
        """user@host:port/dbname: enough to know which server, nothing secret."""
        return format_display(self.user, self.host, self.port, self.dbname)

    @property
    def name(self) -> str:
        """host:port/dbname, the default target name (``target_name``), before connecting."""
        return target_name(self.host, self.port, self.dbname, self.user)

    def scrub(self, text: str) -> str:
        """Replace the password wherever a library message might have echoed it."""
        pw = self.password
        return text.replace(pw, "***") if pw else text


def format_display(user: str | None, host: str | None, port, dbname: str | None) -> str:
    """``user@host:port/dbname``; a Unix-domain socket (a directory) shows as ``[socket /dir]``."""
    host = host or "localhost"
    if host.startswith("/"):
        host = f"[socket {host}]"
    user = user or "(default user)"
    return f"{user}@{host}:{port or 5432}/{dbname or user}"


def target_name(host: str | None, port, dbname: str | None, user: str | None = None) -> str:
    """``host:port/dbname``: a target's default name in the history store, in report folders and
    check records (``--target-name`` overrides it). A Unix-domain socket (a directory) is
    ``local``, so the name stays short and typeable: ``local:5432/vendhub``. No user: the same
    database seen by two roles is one target."""
    host = host or "localhost"
    if host.startswith("/"):
        host = "local"
    return f"{host}:{port or 5432}/{dbname or user}"


# What earlier vhdiag stored as the default name of a socket target (issue 14): "[socket /var/run/postgresql]:5432/vendhub".
_OLD_SOCKET_NAME = re.compile(r"\[socket /[^\]]*\](:\d+/.*)", re.S)


def short_target_name(name: str) -> str:
    """A target name as ``target_name`` writes it today: an older socket name
    (``[socket /dir]:5432/db``) becomes ``local:5432/db``; any other name is left as it is."""
    m = _OLD_SOCKET_NAME.fullmatch(name)
    return f"local{m.group(1)}" if m else name


def resolve(target: str | None = None) -> ResolvedDSN:
    """Turn a target (DSN, ``env:NAME`` or None) into a checked connection string."""
    if target is None or target == "":
        for var in DEFAULT_ENV_VARS:
            if os.environ.get(var):
                return _parse(os.environ[var], f"env:{var}")
        raise ConfigError("no database given: pass --dsn postgresql://user@host/db, or set VHDIAG_DSN or DATABASE_URL")
    if target.startswith("env:"):
        var = target[4:]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            # Not shown: "env: password=..." would echo what was typed, password and all.
            raise ConfigError("env: needs a variable name (letters, digits and _), for example env:DATABASE_URL")
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"environment variable {var} is not set or empty: export {var}=postgresql://user@host/db")
        return _parse(value, target)
    return _parse(target, None)


def _parse(dsn: str, reference: str | None) -> ResolvedDSN:
    conninfo = _SQLALCHEMY_SCHEME.sub("postgresql://", dsn.strip())
    looks_like_uri = conninfo.startswith(_URI_SCHEMES)
    looks_like_words = "=" in conninfo and "://" not in conninfo
    hint = "expected postgresql://user:password@host:5432/dbname or 'host=... dbname=...'"
    if not (looks_like_uri or looks_like_words):
        raise ConfigError(f"malformed DSN: {hint}")
    if looks_like_uri:
        # libpq splits user:password from the host at the first '@', so a raw '@' in the
        # password would leave its tail in the host name (and so in messages and target names).
        authority = re.split(r"[/?]", conninfo.split("://", 1)[1], maxsplit=1)[0]
        if authority.count("@") > 1:
            raise ConfigError("malformed DSN (the password contains '@'): percent-encode it as %40, "
                              "e.g. postgresql://user:p%40ss@host/db")
        # "postgresql:///u:pw@": user:password after the slash is a database name to libpq, and
        # would be shown (and stored) as one. Refused without echoing it.
        path = conninfo.split("://", 1)[1][len(authority):].split("?", 1)[0]
        if "@" in path:
            raise ConfigError(f"malformed DSN (an '@' after the host: user:password go before it): {hint}")
    if looks_like_uri and "://" in conninfo.split("://", 1)[1]:
        raise ConfigError(f"malformed DSN (a second scheme inside the URI): {hint}")
    if looks_like_uri and re.search(r"\s", conninfo):
        # "postgresql:// password=pw" parses with the words as the host name, shown in every message.
        raise ConfigError("malformed DSN (a space in a URI): percent-encode it as %20, or write the whole DSN "
                          "as words 'host=... dbname=...'")
    try:
        params = conninfo_to_dict(conninfo)
    except Exception as exc:  # psycopg.ProgrammingError: libpq's own parse message
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "unparseable"
        detail = _scrub_guess(detail, dsn)
        # libpq quotes the fragment it choked on; one holding '@' may be user:password@ misplaced.
        detail = re.sub(r'"[^"]*@[^"]*"', lambda m: m.group(0) if "***" in m.group(0) else '"***"', detail)
        raise ConfigError(f"malformed DSN ({detail}): {hint}") from None
    if any("=" in str(params.get(k) or "") for k in ("host", "hostaddr", "user", "dbname")):
        # libpq reads "host= password=pw" as host "password=pw", which every message would show.
        raise ConfigError(f"malformed DSN (a value holding '=': a keyword given no value?): {hint}")
    if "port" in params and not str(params["port"]).isdigit():
        raise ConfigError(f"malformed DSN (port must be a number): {hint}")
    resolved = ResolvedDSN(conninfo=conninfo, reference="", params=params)
    return ResolvedDSN(conninfo=conninfo, reference=reference or resolved.display, params=params)


def _scrub_guess(text: str, dsn: str) -> str:
    """Best effort for a DSN libpq could not parse: hide whatever sits where a password would."""
    # user:password@host: the password runs to the LAST '@' before the path, since it may hold '@'.
    secrets = set()
    for m in re.finditer(r"(?::/{2,}|^|\s)[^:/@\s=']*:([^/\s]+)@|password\s*=\s*'?([^'\s]+)", dsn):
        secret = m.group(1) or m.group(2)
        if secret:
            parts = secret.split("@")     # and each shorter reading: up to every '@' in it
            secrets.update("@".join(parts[:i]) for i in range(1, len(parts) + 1))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
