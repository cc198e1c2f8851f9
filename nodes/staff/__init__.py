"""Staff of a node: accounts, their audit trail, and four-eyes approval of actions."""
