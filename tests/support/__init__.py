"""Helpers the tests import: builders, fakes, waits and runners. conftest.py files hold
only fixtures (pytest loads them itself; importing one as a module runs it twice)."""
