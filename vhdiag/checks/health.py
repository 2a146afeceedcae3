"""Application health: the runbook's Morning Checklist step 1, "Checking application status...",
``curl -s https://vendhub.yourdomain.com/api/health/check | jq .`` (and ``/api/health/ready``).

Each URL of ``[checks] health_urls`` (relative to ``[checks] app_base_url``, or absolute) is
fetched once with a timeout (``health_timeout_s``). It passes when the answer is a 2xx, came within
the runbook's response-time thresholds (``[thresholds.response_time_p95_ms]``: warning > 1 s,
critical > 5 s; one request is no p95, but it is what the runbook's curl sees), and the JSON
body's ``status`` field, when there is one, says healthy. A URL that does not answer, answers an
error status or says it is unhealthy fails: the application is what the users see. With no
``app_base_url`` the check says it is not configured (a warning, like every check that cannot run).
"""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from ..display import terminal_safe
from .registry import Result, check

HEALTHY = {"ok", "healthy", "pass", "passing", "up", "ready", "green", "success"}
DEGRADED = {"warn", "warning", "degraded", "yellow"}
MAX_BODY = 64 * 1024
FIX_DOWN = "the application is down or unreachable: check its process, logs and load balancer (runbook 3)"


def health_url(base: str, path: str) -> str:
    """``path`` joined to ``base`` (an absolute ``path`` stands alone); http and https only."""
    url = urllib.parse.urljoin(base.rstrip("/") + "/", path.lstrip("/")) if base and "://" not in path else path
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        from ..errors import ConfigError
        raise ConfigError(f"[checks] health URL {url!r} is not an http(s) URL: set app_base_url, "
                          f"e.g. app_base_url = \"https://app.example.com\"")
    return url


def shown(url: str) -> str:
    """The URL without user, password, query or fragment: a token never reaches the output."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return terminal_safe(urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", "", "")))


def fetch(url: str, timeout_s: float) -> tuple[int | None, float, bytes, str | None]:
    """(HTTP status, milliseconds, body, error): one GET; error is why there is no answer."""
    headers = {"User-Agent": "vhdiag-check", "Accept": "application/json"}
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None:     # user:password@ in the URL: HTTP basic auth, as curl does
        import base64
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    request = urllib.request.Request(url, headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (http(s) only, checked)
            status, body = response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(MAX_BODY)
        except (OSError, socket.timeout):
            body = b""
        return exc.code, (time.perf_counter() - started) * 1000, body, None
    except (TimeoutError, socket.timeout):
        return None, (time.perf_counter() - started) * 1000, b"", f"no answer within {timeout_s:g} s"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return None, (time.perf_counter() - started) * 1000, b"", f"no answer within {timeout_s:g} s"
        return None, (time.perf_counter() - started) * 1000, b"", str(getattr(reason, "strerror", None) or reason)
    except (OSError, ValueError) as exc:
        return None, (time.perf_counter() - started) * 1000, b"", str(exc)
    return status, (time.perf_counter() - started) * 1000, body, None


def body_status(body: bytes) -> str | None:
    """The JSON body's ``status`` field as text, or None (no JSON, no such field)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("status"), (str, int, float, bool)):
        return str(doc["status"])
    return None


def evaluate(name: str, url: str, status: int | None, ms: float, body: bytes, error: str | None,
             levels: dict) -> Result:
    where = shown(url)
    if error is not None:
        return Result(name, "fail", f"GET {where}: {terminal_safe(error)}", FIX_DOWN)
    said = body_status(body)
    tail = f", status \"{terminal_safe(said)}\"" if said is not None else ""
    evidence = (f"GET {where}: HTTP {status} in {ms:.0f} ms{tail} "
                f"(thresholds {levels['warning']:g}/{levels['critical']:g} ms)")
    if not 200 <= status < 300:
        return Result(name, "fail", evidence, FIX_DOWN)
    if said is not None and said.lower() in DEGRADED:
        return Result(name, "warn", evidence, "the application reports itself degraded: read its health body")
    if said is not None and said.lower() not in HEALTHY:
        return Result(name, "fail", evidence, "the application reports itself unhealthy: read its health body "
                                              "and logs (runbook 2 \"Database Connection Issues\" if the DB)")
    slow_fix = "slow answers: vhdiag triage shows what burns now (runbook 2 \"High CPU Usage\", \"Slow Queries\")"
    if ms > levels["critical"]:
        return Result(name, "fail", evidence, slow_fix)
    if ms > levels["warning"]:
        return Result(name, "warn", evidence, slow_fix)
    return Result(name, "pass", evidence)


@check("app.health", "Application health: the configured health URLs", needs=())
def health(ctx) -> list[Result]:
    c = ctx.config["checks"]
    if not c["app_base_url"] and not any("://" in u for u in c["health_urls"]):
        return [Result("app.health", "warn", "not configured: no [checks] app_base_url",
                       'set app_base_url = "https://your.app" in vhdiag.toml '
                       '([checks] health_urls are relative to it)')]
    levels = ctx.config["thresholds"]["response_time_p95_ms"]
    out = []
    for path in c["health_urls"]:
        url = health_url(c["app_base_url"], path)
        name = f"app.health {urllib.parse.urlsplit(url).path or '/'}"
        out.append(evaluate(name, url, *fetch(url, float(c["health_timeout_s"])), levels))
    return out
