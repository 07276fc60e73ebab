"""Where user code runs (see :mod:`modelharbor.compute.base`)."""
