"""The staff web console each node serves to its own officers, approvers, auditors, admins.

Server-rendered pages (Starlette + Jinja2, no JavaScript build step) on the node's own
runtime: the same database, broker client and action code as the CLI. See README.md in
this folder for how a page is added.
"""
