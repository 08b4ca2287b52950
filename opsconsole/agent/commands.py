"""Running the few host commands the agent needs (nvidia-smi, journalctl, dmesg).

The default `run_command` seam: tests and the simulator pass their own with the same
signature. Output is decoded leniently and the C locale keeps number formats stable.
"""

import os
import subprocess

MAX_OUTPUT_BYTES = 4 * 1024 * 1024
"""A runaway command must not grow the agent without bound."""


def run_command(argv, timeout_s):
    """Run argv; return (returncode, stdout, stderr). Never raises for a missing command.

    Call it through a Watchdog when the command talks to the GPU driver: a child stuck in
    the kernel cannot be killed, and waiting for it would block the caller too.
    """
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        return 127, "", "%s: command not found" % argv[0]
    except PermissionError as exc:
        return 126, "", "%s: %s" % (argv[0], exc.strerror)
    except subprocess.TimeoutExpired:
        return 124, "", "%s: timed out after %g s" % (argv[0], timeout_s)
    except OSError as exc:
        return 126, "", "%s: %s" % (argv[0], exc)
    stdout = proc.stdout[:MAX_OUTPUT_BYTES].decode("utf-8", "replace")
    stderr = proc.stderr[:MAX_OUTPUT_BYTES].decode("utf-8", "replace")
    return proc.returncode, stdout, stderr
