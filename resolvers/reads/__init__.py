"""The read side: device search, paging, DataLoaders, the CPL snapshot and history."""
