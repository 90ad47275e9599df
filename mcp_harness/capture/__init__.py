"""Stage 0 capture: record Claude Code's Bash calls (wrapper, hooks, transcripts) for harvest."""
