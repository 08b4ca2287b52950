"""`opsconsole keys init|show`: the site's Ed25519 key that signs tenant reports and audit
exports. `init` makes it once (never replaces it) and prints the public key for tenants
and auditors to pin; `show` prints it again."""

from __future__ import annotations

import argparse
from pathlib import Path

from opsconsole.cli.check_config import add_config_argument
from opsconsole.config import load_fleet
from opsconsole.report import signing

KEY_NAME = "site-ed25519.pem"


def add_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        metavar="FILE",
        help=f"the site's signing key (default: {KEY_NAME} beside the config)",
    )


def site_key_path(args: argparse.Namespace) -> Path:
    if getattr(args, "key", None):
        return Path(args.key)
    return load_fleet(args.config).resolve_path(KEY_NAME)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("keys", help="the site key that signs reports and exports")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext, handler in (
        ("init", "make the site's Ed25519 key (once) and print its public key", run_init),
        ("show", "print the site's public key for tenants to pin", run_show),
    ):
        action = actions.add_parser(name, help=helptext)
        add_config_argument(action)
        add_key_argument(action)
        action.set_defaults(handler=handler)


def _print_public(path: Path, public: str, made: bool) -> None:
    print(f"{'made' if made else 'site'} key {path}")
    print(f"public key   {public}")
    print(f"fingerprint  {signing.fingerprint(public)}")
    print(
        "give the public key to tenants and auditors to pin: opsconsole report verify"
        " FILE --pubkey KEY"
    )


def run_init(args: argparse.Namespace) -> int:
    path = site_key_path(args)
    key = signing.init_key(path)
    _print_public(path, signing.public_text(key), made=True)
    return 0


def run_show(args: argparse.Namespace) -> int:
    path = site_key_path(args)
    _print_public(path, signing.public_text(signing.load_key(path)), made=False)
    return 0
