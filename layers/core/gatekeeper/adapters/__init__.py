"""Adapters at the edge: the only code that calls EC2, SNS and EventBridge."""
