"""Training runs, target-independent: channels, lineage, metrics forwarding and the run itself."""
