"""On-disk storage: the seed's tensor layout, atomic writes and journaled transactions."""
