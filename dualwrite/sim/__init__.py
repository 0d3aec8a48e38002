"""The embedded chain: legacy_bridge, history and history_bridge on SQLite, and dualwrite-supra."""
