"""Collection fixtures: SSH key material and a farm of in-test SSH servers on loopback
(tests/support/collect.py)."""

from __future__ import annotations

import asyncssh
import pytest

from tests.support.collect import Keys, ServerFarm


@pytest.fixture(scope="session")
def _key_material():
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    other = asyncssh.generate_private_key("ssh-ed25519")
    client = asyncssh.generate_private_key("ssh-ed25519")
    return host_key, other, client


@pytest.fixture
def keys(tmp_path, _key_material) -> Keys:
    host_key, other, client = _key_material
    client_path = tmp_path / "id_ed25519"
    client.write_private_key(str(client_path))
    client_path.chmod(0o600)
    authorized = asyncssh.import_authorized_keys(client.export_public_key().decode())
    known = tmp_path / "known_hosts"
    known.write_text("")
    return Keys(host_key, other, client_path, authorized, known)


@pytest.fixture
async def farm(tmp_path, keys):
    servers = ServerFarm(tmp_path, keys)
    yield servers
    await servers.close()
