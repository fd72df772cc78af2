"""Qt widgets of the explorer. They work on plain data only: no torch, no gan imports."""
