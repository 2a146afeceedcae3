"""`vhdiag check --notify URL`: the failures and warnings, posted to a webhook as Slack-compatible JSON.

The runbook's escalation starts with "Alert on-call engineer via PagerDuty/Slack" (section 4,
Level 1); its checklist script has no alerting at all. A webhook (Slack's incoming webhooks,
Mattermost, Teams' Slack-compatible connectors, any HTTP endpoint) gets a team the alert without
Grafana. The post is the last step of a run, after the results are in the history store, and a
webhook that fails (refused, 4xx/5xx, no answer within ``[checks] notify_timeout_s``) is one
``Warning:`` line: it never changes the exit code and never loses the result.

A webhook URL is a secret (Slack's carries the token in its path): ``env:NAME`` reads it from the
environment, and vhdiag shows only ``scheme://host[:port]`` of it, in warnings and in ``--json``.
Evidence carries names and query text from the server, hostile input: Slack's mrkdwn control
characters (``&``, ``<``, ``>``) are escaped, so a statement cannot ping ``<!channel>`` or forge a link.
"""
from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

from ..errors import ConfigError

ICONS = {"fail": ":red_circle:", "warn": ":large_yellow_circle:", "pass": ":large_green_circle:"}
MAX_LINES = 40            # Slack allows 50 blocks per message: the header ones, then one per check
MAX_TEXT = 2900           # ... and 3000 characters per section text


def resolve_url(url: str) -> str:
    """The webhook URL itself: ``env:NAME`` reads environment variable NAME."""
    url = (url or "").strip()
    if url.startswith("env:"):
        name = url[4:]
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConfigError(f"the notify URL is env:{name}, but environment variable {name} is not set: "
                              "export it, or give --notify the URL")
        url = value
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the notify URL must be an http:// or https:// URL (or env:NAME), not "
                          f"{parts.scheme + '://...' if parts.scheme else 'that'}")
    return url


def shown(url: str) -> str:
    """``scheme://host[:port]``: what vhdiag ever shows of a webhook URL (never its path, query or user)."""
    if (url or "").startswith("env:"):
        return url
    parts = urlsplit(url or "")
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def mrkdwn(text: str) -> str:
    """Slack's escaping: ``&``, ``<`` and ``>`` are its only control characters in mrkdwn text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(run) -> dict:
    """The message for a ``CheckRun``: ``text`` (the one-line summary Slack shows in notifications)
    and ``blocks``: the target, the run and the counts, then one line per failing or warning check."""
    counts = run.counts()
    head = (f"vhdiag check {run.kind} of {run.target}: {run.status.upper()} "
            f"({counts['fail']} fail, {counts['warn']} warn, {counts['pass']} pass)")
    bad = sorted((r for r in run.results if r.status != "pass"), key=lambda r: r.status != "fail")
    lines = []
    for r in bad[:MAX_LINES]:
        line = f"{ICONS[r.status]} *{r.status.upper()}* `{mrkdwn(r.check)}`: {mrkdwn(r.evidence)}"
        if r.fix:
            line += f"\n_fix:_ {mrkdwn(r.fix)}"
        lines.append(line if len(line) <= MAX_TEXT else line[:MAX_TEXT - 1] + "…")
    if len(bad) > MAX_LINES:
        lines.append(f"and {len(bad) - MAX_LINES} more: run vhdiag check {run.kind} for all of them")
    context = (f"*Target* {mrkdwn(run.target)}   *Run* {run.kind} at {run.ts:%Y-%m-%d %H:%M} UTC"
               + f"\n*Counts* {counts['fail']} fail, {counts['warn']} warn, {counts['pass']} pass")
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
              {"type": "section", "text": {"type": "mrkdwn", "text": context}}]
    if not bad:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{ICONS['pass']} every check passed"}})
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": line}} for line in lines]
    return {"text": mrkdwn(head), "blocks": blocks}


def post(url: str, body: dict, timeout_s: float) -> str | None:
    """POST ``body`` as JSON; None when the webhook took it (2xx), else one line saying why not,
    with only ``scheme://host`` of the URL in it."""
    import http.client
    import socket
    import urllib.error
    import urllib.request
    data = json.dumps(body, ensure_ascii=True).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "vhdiag"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            answer.read(65536)
        return None
    except urllib.error.HTTPError as exc:
        why = f"HTTP {exc.code}"
    except (TimeoutError, socket.timeout):
        why = f"no answer within {timeout_s:g} s"
    except urllib.error.URLError as exc:
        reason = exc.reason
        why = (f"no answer within {timeout_s:g} s" if isinstance(reason, (TimeoutError, socket.timeout))
               else str(getattr(reason, "strerror", None) or reason))
    except (OSError, http.client.HTTPException) as exc:
        why = str(exc) or type(exc).__name__
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query, parts.username, parts.password):
        if secret and len(secret) > 1:
            why = why.replace(secret, "***")
    return f"{why.splitlines()[0] if why else 'failed'}"


def notify(run, url: str, timeout_s: float, always: bool = False) -> dict | None:
    """Post ``run`` to ``url`` when it has warnings or failures (or ``always``).
    Returns ``{"to", "sent", "error"}`` (``to`` is scheme://host only), None when nothing was due."""
    if run.status == "pass" and not always:
        return None
    try:
        real = resolve_url(url)
    except ConfigError as exc:
        return {"to": shown(url), "sent": False, "error": str(exc)}
    error = post(real, payload(run), timeout_s)
    return {"to": shown(real), "sent": error is None, "error": error}
