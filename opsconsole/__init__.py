"""opsconsole: a keyboard-driven NOC console for leased GPU fleets."""

__version__ = "0.1.0"
