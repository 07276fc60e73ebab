"""Vendor dialects: thin adapters that translate paths, auth, casing, ids and errors onto the one core.

Dialects never import each other.
"""
