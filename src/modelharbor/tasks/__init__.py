"""Internal background work: the runner that drains the DB-leased task queue, and the periodic sweep."""
