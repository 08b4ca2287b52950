"""The Textual console. `make_app()` is the only way in."""
