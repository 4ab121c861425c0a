"""What the notebook-platform services share."""
