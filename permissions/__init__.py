"""Who the caller is (token → principal) and what it may see and do (the policy table)."""
