"""Carrier adapters: one module per wire format, each producing media.events."""
