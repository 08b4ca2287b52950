"""Scripting: with `--json` every command's error is also a JSON object on stdout
(`{"error": ..., "code": ...}`) and the exit status says which kind it was."""

from __future__ import annotations

import json

from opsconsole.cli import EXIT_CODES, main

CONFIG = """
[store]
path = "ops.db"
[[sites]]
name = "SG1"
[[racks]]
names = "sg1-r01"
site = "SG1"
[host_classes.hgx]
gpus = 8
[[hosts]]
names = "sg1-r01-n[01-02]"
rack = "sg1-r01"
class = "hgx"
"""


def run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    out = captured.out.strip()
    return code, (json.loads(out) if "--json" in argv else None), captured.err


def test_each_kind_of_error_is_json_on_stdout_with_its_exit_status(tmp_path, capsys):
    config = tmp_path / "ops.toml"
    config.write_text(CONFIG)
    c = str(config)

    code, body, err = run(capsys, "alerts", "show", "999", "--config", c, "--json")
    assert (code, body["code"]) == (EXIT_CODES["not_found"], "not_found") == (3, "not_found")
    assert body["error"] == "no alert 999" and "no alert 999" in err

    code, body, _ = run(capsys, "tenant", "create", "acme", "--quota", "8", "--config", c)
    assert code == 0
    code, body, _ = run(capsys, "tenant", "create", "acme", "--quota", "8", "--config", c, "--json")
    assert (code, body["code"]) == (4, "refused") and "acme" in body["error"]

    code, body, _ = run(capsys, "lease", "show", "--config", c, "--json")
    assert (code, body["code"]) == (2, "usage") and "lease show" in body["error"]

    code, body, _ = run(capsys, "alerts", "list", "--config", str(tmp_path / "nope.toml"), "--json")
    assert (code, body["code"]) == (1, "config") and "no such config file" in body["error"]


def test_without_json_an_error_is_one_line_on_stderr_only(tmp_path, capsys):
    code = main(["alerts", "show", "999", "--config", str(tmp_path / "nope.toml")])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.startswith("opsconsole: ") and captured.err.count("\n") == 1
