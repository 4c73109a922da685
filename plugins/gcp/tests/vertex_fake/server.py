"""The route modules the fake serves, in the order they are tried.

Adding an API: write a module with ``ROUTES = [(verb, template, handler), …]`` and list it here.
"""

from __future__ import annotations

from vertex_fake import api_jobs, api_operations, logs, tokens

ROUTE_MODULES = (tokens, api_operations, api_jobs, logs)
