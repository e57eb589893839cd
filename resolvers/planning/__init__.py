"""The upgrade planner, its graph search, the fleet plan and the collector switch."""
