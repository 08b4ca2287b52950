"""One rule in the CLI and the console (issue 17): ack, unack and resolve need a comment.
The console's dialog half is tests/ui/test_first_hour.py::TestAlertsScreen."""

from __future__ import annotations

import pytest

from opsconsole.cli import main


@pytest.mark.parametrize("verb", ["ack", "unack", "resolve"])
def test_without_a_comment_is_a_usage_error_naming_it(verb, capsys):
    assert main(["alerts", verb, "1"]) == 2
    assert "required: --comment" in capsys.readouterr().err
