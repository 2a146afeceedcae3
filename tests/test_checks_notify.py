"""vhdiag check --notify (issue 11): the failures and warnings posted to a webhook as Slack-compatible
JSON; a webhook that fails, answers 500 or never answers is one warning and changes nothing else."""
import json
import socket
import time

import pandas as pd
import pytest

from helpers import LoopbackHTTP
from vhdiag import cli
from vhdiag.checks import CheckRun, Result
from vhdiag.checks import notify as N


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    monkeypatch.delenv("VHDIAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


class _Hook(LoopbackHTTP):
    """A stdlib HTTP server on 127.0.0.1 recording each POST (path, headers, JSON body) and answering
    ``status`` after ``delay_s``."""

    def __init__(self, status=200, delay_s=0.0):
        import http.server
        hook = self
        self.status, self.delay_s, self.received = status, delay_s, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append({"path": self.path, "type": self.headers["Content-Type"],
                                      "json": json.loads(body)})
                time.sleep(hook.delay_s)
                try:
                    self.send_response(hook.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass                         # the client gave up (the timeout case)

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/services/T000/B000/s3cretToken"


@pytest.fixture
def hook():
    made = []

    def make(status=200, delay_s=0.0):
        made.append(_Hook(status, delay_s))
        return made[-1]
    yield make
    for h in made:
        h.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _run(results):
    return CheckRun("evening", "db1:5432/shop", pd.Timestamp("2026-11-30T18:00:00Z"), None, results)


# -- the message ---------------------------------------------------------------------------------
def test_payload_lists_each_failure_and_warning_and_escapes_server_text():
    run = _run([Result("database.connect", "pass", "connected in 3 ms"),
                Result("changes.slow_queries", "warn", "1 new slow queries: SELECT '<!channel>' & <http://x|y>",
                       "EXPLAIN it"),
                Result("backup.dumps", "fail", "newest dump 3.0 d old", "check the backup job")])
    body = N.payload(run)
    assert body["text"] == "vhdiag check evening of db1:5432/shop: FAIL (1 fail, 1 warn, 1 pass)"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "section"]
    assert body["blocks"][1]["text"]["text"] == ("*Target* db1:5432/shop   *Run* evening at 2026-11-30 18:00 UTC\n"
                                                 "*Counts* 1 fail, 1 warn, 1 pass")
    fail, warn = (b["text"]["text"] for b in body["blocks"][2:])      # failures first
    assert fail == ":red_circle: *FAIL* `backup.dumps`: newest dump 3.0 d old\n_fix:_ check the backup job"
    assert warn == (":large_yellow_circle: *WARN* `changes.slow_queries`: 1 new slow queries: "
                    "SELECT '&lt;!channel&gt;' &amp; &lt;http://x|y&gt;\n_fix:_ EXPLAIN it")
    assert "<" not in json.dumps(body)                                # no mention, no link can be forged
    many = N.payload(_run([Result(f"c{i}", "warn", "w") for i in range(60)]))
    assert len(many["blocks"]) == 2 + N.MAX_LINES + 1 <= 50
    assert many["blocks"][-1]["text"]["text"] == "and 20 more: run vhdiag check evening for all of them"


def test_url_from_the_environment_and_only_scheme_and_host_shown(monkeypatch):
    monkeypatch.setenv("VH_HOOK", "https://hooks.slack.com/services/T1/B2/secret")
    assert N.resolve_url("env:VH_HOOK") == "https://hooks.slack.com/services/T1/B2/secret"
    assert N.shown("https://hooks.slack.com/services/T1/B2/secret") == "https://hooks.slack.com"
    assert N.shown("http://user:pw@127.0.0.1:8080/x?token=t") == "http://127.0.0.1:8080"
    monkeypatch.delenv("VH_HOOK")
    run = _run([Result("backup.dumps", "fail", "old")])
    assert N.notify(run, "env:VH_HOOK", 1.0) == {
        "to": "env:VH_HOOK", "sent": False,
        "error": "the notify URL is env:VH_HOOK, but environment variable VH_HOOK is not set: export it, "
                 "or give --notify the URL"}
    assert N.notify(run, "ftp://h/x", 1.0)["error"].startswith("the notify URL must be an http:// or https://")


def test_nothing_is_posted_when_every_check_passes_unless_always(hook):
    h = hook()
    run = _run([Result("database.connect", "pass", "connected")])
    assert N.notify(run, h.url, 5.0) is None and h.received == []
    assert N.notify(run, h.url, 5.0, always=True) == {"to": f"http://127.0.0.1:{h.port}", "sent": True, "error": None}
    (got,) = h.received
    assert got["json"]["text"] == "vhdiag check evening of db1:5432/shop: PASS (0 fail, 0 warn, 1 pass)"
    assert got["json"]["blocks"][2]["text"]["text"] == ":large_green_circle: every check passed"


# -- a real run, a real webhook --------------------------------------------------------------------
def _cli(pg, tmp_path, capsys, *extra):
    """`vhdiag check morning --json` on the planted database with no dumps folder (backup.dumps fails)."""
    conf = tmp_path / "vhdiag.toml"
    conf.write_text(f'[checks]\ndumps_dir = "{tmp_path / "none"}"\nnotify_timeout_s = 1.0\n')
    code = cli.main(["check", "morning", "--dsn", pg.dsn(), "--history", str(tmp_path / "h.sqlite"),
                     "--target-name", "planted", "--json", "--config", str(conf), *extra])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def _recorded(tmp_path):
    from vhdiag.history import History
    return History(f"sqlite:///{tmp_path / 'h.sqlite'}").previous_checks("planted")[0]


def test_notify_posts_the_failures_and_warnings_of_a_real_run(pg, tmp_path, capsys, hook, monkeypatch):
    h = hook()
    monkeypatch.setenv("VH_TEST_HOOK", h.url)
    code, doc, err = _cli(pg, tmp_path, capsys, "--notify", "env:VH_TEST_HOOK")
    assert code == 2 and doc["exit_code"] == 2 and err == ""
    assert doc["notify"] == {"to": f"http://127.0.0.1:{h.port}", "sent": True, "error": None}
    (got,) = h.received
    assert got["path"] == "/services/T000/B000/s3cretToken" and got["type"] == "application/json"
    body = got["json"]
    counts = doc["counts"]
    assert body["text"] == (f"vhdiag check morning of planted: FAIL ({counts['fail']} fail, {counts['warn']} warn, "
                            f"{counts['pass']} pass)")
    lines = [b["text"]["text"] for b in body["blocks"][2:]]
    bad = [c for c in doc["checks"] if c["status"] != "pass"]
    assert len(lines) == len(bad) == counts["fail"] + counts["warn"]
    assert lines[0].startswith(":red_circle: *FAIL* `backup.dumps`: ")
    assert {ln.split("`")[1] for ln in lines} == {c["check"] for c in bad}
    assert not any("database.connect" in ln for ln in lines)           # passes are not posted
    assert pg.server.password not in json.dumps(body)
    assert "s3cretToken" not in json.dumps(doc)


@pytest.mark.parametrize("case", ["500", "timeout", "closed"])
def test_a_failing_webhook_is_one_warning_and_changes_nothing(pg, tmp_path, capsys, hook, case):
    if case == "closed":
        url, why = f"http://127.0.0.1:{_closed_port()}/hook/s3cretToken", "Connection refused"
    else:
        h = hook(status=500) if case == "500" else hook(delay_s=3.0)
        url, why = h.url, ("HTTP 500" if case == "500" else "no answer within 1 s")
    code, doc, err = _cli(pg, tmp_path, capsys, "--notify", url)
    assert code == 2 and doc["exit_code"] == 2 and doc["status"] == "fail"      # as without --notify
    assert _recorded(tmp_path) == pd.Timestamp(doc["ts"])                      # the result is in the store
    host = url.split("/hook")[0].split("/services")[0]
    assert doc["notify"] == {"to": host, "sent": False, "error": why}
    assert err == (f"Warning: notification to {host} failed: {why}; the results stand (exit code 2, "
                   "recorded in the history store)\n")
    assert "s3cretToken" not in err + json.dumps(doc)
