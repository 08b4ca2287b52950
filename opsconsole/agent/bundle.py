"""The command line that runs the agent on a host, carrying the agent in itself.

`python3 -c '<bootstrap>'`: the bootstrap holds this package's source, zlib-compressed
and base64-encoded, and imports it from memory through a meta-path finder. Nothing is
installed or written on the host, and the agent always matches the console's version.

It carries NVIDIA's `pynvml` too (nvidia-ml-py's one pure-Python ctypes file, as
installed with the console, its licence notice kept word for word), as the submodule
`_opsconsole_agent.pynvml`: every host with a driver gets NVML mode with nothing
installed, and the agent never imports a `pynvml` it finds on the host.
"""

import ast
import base64
import importlib.util
import json
import re
import shlex
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

AGENT_COMMAND_MARKER = "opsconsole-agent-bootstrap/1"
BUNDLE_PACKAGE = "_opsconsole_agent"
# What the agent process imports; agentless.py and this file only serve the console.
BUNDLED_MODULES = (
    "__init__", "agent", "commands", "host", "kernel_log", "kernel_sources", "lean", "nvml_errors",
    "nvml_reader", "nvml_sample", "pci", "process", "smi", "smi_reader", "sysfs", "watchdog",
    "xid_merge",
)  # fmt: skip
MAX_COMMAND_BYTES = 120 * 1024
"""Linux refuses one argument over 128 KiB (MAX_ARG_STRLEN), and the bootstrap is one."""
PYNVML_MODULE = "pynvml"

# Single-quoted in the shell, so it must hold no single quote (checked below).
_BOOTSTRAP = """
import sys
sys.dont_write_bytecode = True
M = "{marker}"
try:
    import base64, importlib.abc, importlib.util, json, os, time, zlib
    S = json.loads(zlib.decompress(base64.b64decode("{payload}")).decode("utf-8"))
    P = "{package}"
    class F(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name == P or name.startswith(P + "."):
                mod = "__init__" if name == P else name[len(P) + 1:]
                if mod in S:
                    return importlib.util.spec_from_loader(name, self, is_package=name == P)
            return None
        def create_module(self, spec):
            return None
        def exec_module(self, module):
            name = module.__name__
            mod = "__init__" if name == P else name[len(P) + 1:]
            exec(compile(S[mod], "<agent " + mod + ">", "exec"), module.__dict__)
    sys.meta_path.insert(0, F())
    main = __import__(P + ".agent", fromlist=["main"]).main
except Exception as exc:
    message = "agent failed to load on Python %s: %r" % (sys.version.split()[0], exc)
    error = {{"type": "error", "ts": time.time(), "message": message}}
    sys.stdout.write(json.dumps(error) + "\\n")
    sys.stdout.flush()
    sys.exit(1)
code = main(sys.argv[1:])
try:
    sys.stdout.flush()
except Exception:
    pass
os._exit(code)
"""


def pynvml_source():
    """The installed pynvml.py, shrunk for the command line: the licence notice (its
    leading comment block) kept verbatim, then the code without comments or docstrings.
    None when nvidia-ml-py is not installed: the agent then uses nvidia-smi."""
    try:
        spec = importlib.util.find_spec(PYNVML_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    text = Path(spec.origin).read_text("utf-8")
    notice = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            break
        notice.append(line)
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            del body[0]
            if not body:
                body.append(ast.Pass())
    code = ast.unparse(tree)  # novermin (runs on the console, Python 3.11+)
    return "\n".join(notice) + "\n" + code + "\n"


def _is_docstring(node):
    value = getattr(node, "value", None)
    return (
        isinstance(node, ast.Expr)
        and isinstance(value, ast.Constant)
        and isinstance(value.value, str)
    )


@lru_cache(maxsize=1)
def _bootstrap():
    here = Path(__file__).resolve().parent
    sources = {name: (here / (name + ".py")).read_text("utf-8") for name in BUNDLED_MODULES}
    binding = pynvml_source()
    if binding is not None:
        sources[PYNVML_MODULE] = binding
    packed = zlib.compress(json.dumps(sources, sort_keys=True).encode("utf-8"), 9)
    code = _BOOTSTRAP.format(
        marker=AGENT_COMMAND_MARKER,
        payload=base64.b64encode(packed).decode("ascii"),
        package=BUNDLE_PACKAGE,
    )
    if "'" in code:
        raise RuntimeError("the agent bootstrap must not contain a single quote")
    return code


def agent_command(interval_s: float, python: str = "python3") -> str:
    """`exec python3 -B -c '<bootstrap>' --interval N`, for an SSH exec request."""
    interval = float(interval_s)
    if not 0 < interval < float("inf"):
        raise ValueError("interval_s must be a positive number of seconds")
    command = "exec %s -B -c '%s' --interval %s" % (
        shlex.quote(python),
        _bootstrap(),
        repr(interval),
    )
    if len(command.encode("utf-8")) > MAX_COMMAND_BYTES:
        raise RuntimeError("agent command is %d bytes, over the cap" % len(command))
    return command


_INTERVAL = re.compile(r"--interval[ =]([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)(?:\s|$)")


def parse_agent_command(command: object) -> Optional[Dict[str, float]]:
    """{"interval_s": float} when `command` is one built by agent_command(), else None."""
    if not isinstance(command, str) or AGENT_COMMAND_MARKER not in command:
        return None
    matches = _INTERVAL.findall(command.rsplit("'", 1)[-1])
    if not matches:
        return None
    return {"interval_s": float(matches[-1])}
