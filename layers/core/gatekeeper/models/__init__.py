"""Models: the values that cross a boundary (EC2 answers, DynamoDB records, bus events, SNS
messages), validated; anything that does not validate is refused, never guessed. Errors live here
too: every layer raises them."""
