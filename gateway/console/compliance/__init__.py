"""The compliance view's data: the audit entries this node may read, each proven included;
search, CSV export, the log's verification status, and the dashboard's aggregates and charts.

Pages (`gateway.console.pages.compliance`) only render what these modules compute. Audit
entries hold no identifier (only ids, kinds, cases, decisions, digests), so nothing here
can put one on a page.
"""
