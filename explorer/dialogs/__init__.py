"""Dialogs of the explorer (plain data only: no torch, no gan imports)."""
