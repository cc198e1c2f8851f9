"""The node's tables are registered with `gateway.migrate` by the node application."""

import nodes.schema  # noqa: F401  (registers the node's table modules)
