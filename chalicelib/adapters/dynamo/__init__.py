"""DynamoDB through PynamoDB: models and the repository functions the services use."""
