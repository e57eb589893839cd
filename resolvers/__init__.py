"""Data access, DataLoaders and the upgrade planner."""
