"""The CPL and fleet files: import, export, their parsing and the device keys."""
