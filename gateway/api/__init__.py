"""HTTP route families: one module each."""
