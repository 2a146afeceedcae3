"""The evening run's "Check for security alerts" (runbook 1, Evening Checklist; section 12, Access
Control: "Database credentials in secrets", "Regular credential rotation"), from what the
monitoring role can see: pg_roles, never pg_authid.

- ``security.roles``: new superusers, roles that gained login, and roles newly holding
  ``pg_read_server_files``, ``pg_write_server_files`` or ``pg_execute_server_program`` (each reads,
  writes or runs anything the server's OS account can: a superuser's powers in all but name) since
  the previous evening check. The subjects (``superuser NAME``, ``login NAME``, ``GRANT NAME``) are
  stored with the run, so the next one names only what is new; the first run sees them all as new.
- ``security.ssl``: ``ssl`` off sends passwords and data in clear over the network.
- ``security.password_encryption``: ``md5`` (deprecated in PostgreSQL 18; scram-sha-256 is the default).
- ``security.password_expiry``: with ``[checks] require_password_expiry``, login roles without
  ``VALID UNTIL`` (pg_roles cannot show which have a password at all: every login role counts).
"""
from __future__ import annotations

import pandas as pd

from ..collect._base import load_sql
from ..display import terminal_safe
from .changes import diff
from .registry import Result, check

SERVER_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")


def role_items(roles: pd.DataFrame) -> list[str]:
    """The subjects ``security.roles`` compares between runs, from checks_roles.sql's rows."""
    items = []
    for r in roles.itertuples():
        if r.superuser:
            items.append(f"superuser {r.role}")
        if r.login:
            items.append(f"login {r.role}")
        if not r.superuser:                      # a superuser is a member of every role
            items += [f"{grant} {r.role}" for grant in SERVER_ROLES if getattr(r, grant)]
    return items


def evaluate_settings(ssl: str, password_encryption: str) -> list[Result]:
    out = []
    if str(ssl).lower() in ("on", "true"):
        out.append(Result("security.ssl", "pass", "ssl = on"))
    else:
        out.append(Result("security.ssl", "warn", f"ssl = {ssl}: passwords and data cross the network in clear",
                          "set ssl = on with a certificate (ssl_cert_file, ssl_key_file), then hostssl lines in "
                          "pg_hba.conf"))
    if str(password_encryption).lower() == "md5":
        out.append(Result("security.password_encryption", "warn",
                          "password_encryption = md5: new passwords are stored as MD5 hashes (deprecated)",
                          "ALTER SYSTEM SET password_encryption = 'scram-sha-256'; then each role sets its "
                          "password again (runbook 12: \"Regular credential rotation\")"))
    else:
        out.append(Result("security.password_encryption", "pass", f"password_encryption = {password_encryption}"))
    return out


def evaluate_expiry(roles: pd.DataFrame, required: bool) -> Result:
    if not required:
        return Result("security.password_expiry", "pass",
                      "not required ([checks] require_password_expiry = false)")
    open_ended = [r.role for r in roles.itertuples() if r.login and pd.isna(r.valid_until)]
    if not open_ended:
        return Result("security.password_expiry", "pass", "every login role has VALID UNTIL")
    shown = ", ".join(open_ended[:5]) + (f" and {len(open_ended) - 5} more" if len(open_ended) > 5 else "")
    return Result("security.password_expiry", "warn",
                  terminal_safe(f"{len(open_ended)} login roles without VALID UNTIL: {shown}"),
                  "ALTER ROLE name VALID UNTIL '...' with the next rotation date (runbook 12: \"Regular credential "
                  "rotation\")", items=open_ended)


@check("security.changes", "Evening: new superusers and server-file grants, ssl, md5, password expiry",
       runs=("evening",))
def security(ctx) -> list[Result]:
    roles = ctx.target.query(load_sql("checks_roles"))
    items = role_items(roles)
    changed = diff("security.roles", items, ctx.previous, what="superusers, logins or server-file grants",
                   labels={}, fix="confirm each was intended (who ran CREATE ROLE, ALTER ROLE or GRANT); revoke "
                                  "what was not, and rotate the credentials (runbook 12, Security Incidents)")
    settings = ctx.target.query(load_sql("checks_security_settings")).iloc[0]
    return [changed, *evaluate_settings(settings["ssl"], settings["password_encryption"]),
            evaluate_expiry(roles, bool(ctx.config["checks"]["require_password_expiry"]))]
