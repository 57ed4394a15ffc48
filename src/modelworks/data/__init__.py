"""Dataset versions: content hashing, snapshots and mergeable column profiles."""
