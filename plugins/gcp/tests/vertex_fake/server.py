"""The route modules the fake serves, in the order they are tried.

Adding an API: write a module with ``ROUTES = [(verb, template, handler), …]`` and list it here.
"""

from __future__ import annotations

from vertex_fake import (
    api_batch,
    api_cloud,
    api_endpoints,
    api_jobs,
    api_models,
    api_operations,
    api_prediction,
    api_tuning,
    logs,
    tokens,
)

ROUTE_MODULES = (tokens, api_operations, api_jobs, api_models, api_endpoints, api_prediction,
                 api_batch, api_cloud, api_tuning, logs)
