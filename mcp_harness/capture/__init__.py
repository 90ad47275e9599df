"""Stage 0 capture: record Claude Code's Bash calls (wrapper, hooks, transcripts), joined into
one record per call for `experience.harvest`."""
