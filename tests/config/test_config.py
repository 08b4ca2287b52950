"""Config loading: typed validation, hostlist expansion, one-line errors naming key paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.config import load_fleet
from opsconsole.errors import ConfigError
from tests.support.cli import CliResult
from tests.support.cli import run_cli as run_in_process

REPO = Path(__file__).resolve().parents[2]

BASE = """
[[sites]]
name = "SG1"

[[racks]]
names = "sg1-r[01-03]"
site = "SG1"
leaf = "leaf-01"
power_budget_kw = 40

[host_classes.h200-8]
gpus = 8
gpu_model = "H200"
ib_ports = 8
ib_rate_gbps = 400
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "opsconsole.toml"
    path.write_text(text)
    return path


def host(names: str, rack: str = "sg1-r01", **keys: str) -> str:
    """One [[hosts]] entry as TOML."""
    lines = [f'names = "{names}"', f'rack = "{rack}"']
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "[[hosts]]\n" + "\n".join(lines) + "\n"


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_fleet(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_example_config_resolves_every_host():
    fleet = load_fleet(REPO / "config.example.toml")
    names = [h.name for h in fleet.hosts]
    assert len(names) == len(set(names)) == 137
    first = fleet.host("sg1-r01-n01")
    assert (first.rack, first.site, first.leaf) == ("sg1-r01", "SG1", "sg1-leaf-01")
    assert first.address == "sg1-r01-n01.mgmt.sg1.example.net"
    assert fleet.host("sg1-r08-n16").rack == "sg1-r08"
    assert fleet.host("my1-r01-n03").address == "10.20.1.13"
    assert fleet.host("my1-r02-n01").mode == "agentless"
    assert fleet.host("my1-r02-n01").port == 2222


def test_thousand_host_fleet_stays_short(tmp_path):
    text = (
        BASE.replace("sg1-r[01-03]", "sg1-r[001-125]")
        + """
[[hosts]]
names = "sg1-r[001-125]-n[1-8]"
name_pattern = '^sg1-r(?P<rack>\\d+)-'
rack = "sg1-r{rack}"
class = "h200-8"
"""
    )
    fleet = load_fleet(write(tmp_path, text))
    assert len(fleet.hosts) == 1000
    assert fleet.host("sg1-r125-n8").rack == "sg1-r125"
    assert sum(h.expected_gpus for h in fleet.hosts) == 8000


def test_number_given_as_text_names_key_path_and_value(tmp_path):
    text = (
        BASE
        + """
[[racks]]
names = "sg1-r04"
site = "SG1"

[[racks]]
names = "sg1-r05"
site = "SG1"
power_budget_kw = "12kW"
"""
    )
    message = load_error(tmp_path, text)
    assert message.endswith('racks[2].power_budget_kw: expected a number, got "12kW"')
    assert message.startswith(str(tmp_path / "opsconsole.toml"))


def test_unknown_key_is_refused(tmp_path):
    message = load_error(tmp_path, BASE + "[polling]\ninterval = 2\n")
    assert message.endswith("polling.interval: unknown key")


def test_duplicate_host_across_groups_is_refused(tmp_path):
    text = (
        BASE
        + """
[[hosts]]
names = "sg1-r01-n[01-04]"
rack = "sg1-r01"
class = "h200-8"

[[hosts]]
names = "sg1-r01-n04"
rack = "sg1-r01"
class = "h200-8"
"""
    )
    message = load_error(tmp_path, text)
    assert 'hosts[1].names: host "sg1-r01-n04" is already defined in hosts[0]' in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[[hosts]]\nnames = "n1"\nrack = "nope"\nclass = "h200-8"\n',
            'hosts[0].rack: unknown rack "nope"',
        ),
        (
            '[[hosts]]\nnames = "n1"\nrack = "sg1-r01"\nclass = "x"\n',
            'hosts[0].class: unknown host class "x"',
        ),
        (
            '[[hosts]]\nnames = "n[1-3"\nrack = "sg1-r01"\nclass = "h200-8"\n',
            "hosts[0].names: bad host range",
        ),
        (
            host("n[1-3]", address='"10.0.0.[1-2]"', **{"class": '"h200-8"'}),
            "hosts[0].address: 2 address(es) for 3 hosts",
        ),
        (
            '[[hosts]]\nnames = "n1"\nrack = "sg1-r01"\nclass = "h200-8"\nmode = "telnet"\n',
            "hosts[0].mode: expected one of 'agent', 'agentless' or 'relay', got \"telnet\"",
        ),
        (
            '[[hosts]]\nnames = "n1"\nrack = "sg1-r01"\nclass = "h200-8"\nport = 70000\n',
            "hosts[0].port: input should be less than or equal to 65535, got 70000",
        ),
        ('[[hosts]]\nnames = "n1"\nrack = "sg1-r01"\n', "hosts[0].class: required key is missing"),
        (
            host("n[1-2]", address='"10.0.0.1"', **{"class": '"h200-8"'}),
            "1 address(es) for 2 hosts",
        ),
        (
            host("a", address='"10.0.0.1"', **{"class": '"h200-8"'})
            + host("b", address='"10.0.0.1"', **{"class": '"h200-8"'}),
            'host "b" has the same address and port as "a"',
        ),
        ("[ssh]\nconnect_timeout_s = true\n", "ssh.connect_timeout_s: expected a number, got true"),
        ("[polling]\nrelay_every = 31\n", "polling.relay_every: input should be less than"),
    ],
)
def test_bad_input_gets_one_line_naming_where(tmp_path, extra, expected):
    assert expected in load_error(tmp_path, BASE + extra)


def test_rack_with_unknown_site(tmp_path):
    message = load_error(tmp_path, BASE + '[[racks]]\nnames = "x"\nsite = "MARS"\n')
    assert message.endswith('racks[1].site: unknown site "MARS"')


def test_invalid_toml_and_missing_file(tmp_path):
    assert "invalid TOML" in load_error(tmp_path, "[[sites]\nname=")
    with pytest.raises(ConfigError, match="no such config file"):
        load_fleet(tmp_path / "absent.toml")


def test_paths_are_relative_to_the_config_file(tmp_path):
    fleet = load_fleet(write(tmp_path, BASE + '[store]\npath = "data/ops.db"\n'))
    assert fleet.store_path == tmp_path / "data" / "ops.db"


def test_host_keys_are_checked_by_default(tmp_path):
    fleet = load_fleet(write(tmp_path, BASE))
    assert fleet.config.ssh.known_hosts is not None
    assert fleet.config.ssh.accept_unknown_host_keys_insecure is False


@given(st.text(max_size=200))
def test_any_text_gives_config_error_or_fleet(text):
    from opsconsole.config import fleet_from_dict

    try:
        import tomllib

        raw = tomllib.loads(text)
    except Exception:
        return
    try:
        fleet_from_dict(raw, Path("x.toml"))
    except ConfigError as exc:
        assert "\n" not in str(exc)


def run_cli(*args: str, cwd: Path) -> CliResult:
    """In-process: the real process of `check-config` is run by tests/test_quiet_terminal.py."""
    return run_in_process(*args, cwd=cwd)


def test_check_config_cli_prints_fleet_and_fails_cleanly(tmp_path):
    ok = run_cli("check-config", "--config", str(REPO / "config.example.toml"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "sg1-r01-n[01-16]" in ok.stdout
    assert "137 hosts, 1096 GPUs expected" in ok.stdout

    bad = write(
        tmp_path, BASE + '[[racks]]\nnames = "r9"\nsite = "SG1"\npower_budget_kw = "12kW"\n'
    )
    result = run_cli("check-config", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith('racks[1].power_budget_kw: expected a number, got "12kW"')
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
