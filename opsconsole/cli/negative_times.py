"""`--end -1h`: argparse takes any word starting with "-" that is not a plain number for
an option, so a relative time in the past after an option is a usage error unless typed
`--end=-1h`. The command line is mended before parsing: a long option followed by a
relative time ("-1h", "-2.5d") becomes `--option=-1h`."""

from __future__ import annotations

import re

_PAST = re.compile(r"^-\d+(?:\.\d+)?[smhdw]$")


def join_negative_times(argv: list[str]) -> list[str]:
    out: list[str] = []
    for word in argv:
        previous = out[-1] if out else ""
        if (
            _PAST.match(word)
            and previous.startswith("--")
            and "=" not in previous
            and previous != "--"
        ):
            out[-1] = f"{previous}={word}"
        else:
            out.append(word)
    return out
