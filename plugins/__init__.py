"""Plugins shipped with opsconsole (OPSCONSOLE_SHIPPED_PLUGINS).

Each module or package here is one plugin exposing `PLUGIN = PluginInfo(...)`; it is
found without being imported and loaded only when `[plugins.NAME]` enables it. See
README.md in this folder.
"""
