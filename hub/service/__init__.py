"""What the hub does, below HTTP: one service per kind of thing, over the store."""
