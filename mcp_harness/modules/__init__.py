"""Built-in harness modules, shipped as templates (graph spec, README, seed experience rows)."""
