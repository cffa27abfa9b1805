"""The HTTP surface: one blueprint per area, built by :func:`create_app`."""
from .app import create_app

__all__ = ["create_app"]
