"""The composition root: settings validated once, AWS clients and the services built from them
(the only layer that builds boto3 clients; the Lambda handlers and the operator CLI both use it)."""
