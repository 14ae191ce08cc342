"""Chorus: an actor-based real-time chat server on trio."""

__version__ = "0.1.0"
