"""On-disk storage: the seed's tensor layout, atomic writes, journaled transactions, the atomic
directory swap and text diffs."""
