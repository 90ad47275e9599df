"""Allow `python -m mcp_harness`."""

from mcp_harness.cli.main import main

raise SystemExit(main())
