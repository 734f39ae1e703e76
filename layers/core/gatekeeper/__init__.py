"""vpce-gatekeeper core: domain models, policy engine, decision service, stores and AWS adapters."""
