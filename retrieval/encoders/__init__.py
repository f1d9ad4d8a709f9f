"""(filled in by its modules)."""
