"""Where desired state comes from: a local file (standalone mode) or, later, the hub."""
