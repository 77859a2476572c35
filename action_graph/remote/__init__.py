"""Remote execution and caching over the Remote Execution API v2, and the pybuild worker (a REAPI bot)."""
