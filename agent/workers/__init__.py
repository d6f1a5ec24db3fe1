"""Per-deployment workers and the dispatcher that feeds them."""
