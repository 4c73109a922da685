"""The plugin host: loads built-in and installed plugins and serves their records by name."""

from mldock.host.loader import BUILTIN_PLUGINS, PluginHost, PluginInfo, PluginStatus, get_host
from mldock.host.registry import Registry

__all__ = ["BUILTIN_PLUGINS", "PluginHost", "PluginInfo", "PluginStatus", "Registry", "get_host"]
