"""ModelHarbor: a self-hosted model hub with one core and several vendor REST dialects."""

__version__ = "0.1.0"
