"""Use cases, one per module: decide (decision_service), announce (announcer), reconcile
(reconciler), follow tenant changes (tenant_sync). Plain Python over the stores and adapters they are
given; no boto3."""
