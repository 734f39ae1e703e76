"""Operator package: the gatekeeper CLI, the local sandbox and the PrivateLink emulator (never deployed)."""
