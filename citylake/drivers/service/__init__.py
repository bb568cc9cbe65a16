"""The data service (``citylake serve``): sharing and open data over HTTP."""
