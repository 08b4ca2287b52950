"""Agent fixtures: a fake NVML and a host filesystem (tests/support/agent.py)."""

from __future__ import annotations

import pytest

from opsconsole.agent.sysfs import DictFs
from tests.fakes.fake_pynvml import FakeNvml
from tests.support.agent import HOST_FILES


@pytest.fixture
def fake_nvml():
    fake = FakeNvml()
    yield fake
    fake.release_all()  # never leave a watchdog worker blocked after a test


@pytest.fixture
def host_fs():
    return DictFs(HOST_FILES)
