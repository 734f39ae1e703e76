"""The only code that talks to DynamoDB: tenants, templates, decisions and quota."""
