"""Adapters at the edge: DynamoDB, SES, SSM, payment gateways."""
