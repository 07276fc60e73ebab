"""Domino's routes, one module per noun."""
