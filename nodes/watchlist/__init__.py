"""The police watchlist on nodes: the police node's store and answer, the checker's client.

- `store`: entries in the police node's own records table, indexed with the responders'
  index code (`nodes.index_build`) under the police node's OPRF key.
- `police`: the WATCHLIST_CHECK handler (`gateway.matching.responder.answer_query`).
- `client`: `WatchlistClient`, what a bank's or carrier's systems call.
"""
