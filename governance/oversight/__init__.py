"""What oversight bodies read: checkpoints, entries, proofs and the accountability report."""
