"""The agent that runs on each GPU host and streams JSON lines to the console.

Standard library plus optional `pynvml`, Python 3.8 or newer, and nothing else of the
project: `bundle.agent_command()` ships these modules over SSH as source, so whatever is
imported here must exist on a bare GPU host. See ARCHITECTURE.md, "Agent protocol".
"""

AGENT_VERSION = "0.1.0"
PROTOCOL_VERSION = 1
