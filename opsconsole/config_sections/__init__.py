"""Config sections that belong to one feature each (`[alerts]`, `[capacity]`), kept apart
from `opsconsole/config.py` so each feature owns its own keys and defaults."""
