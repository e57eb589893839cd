"""The bottom floor: settings, logs, metrics and tracing, which every layer above may use."""
