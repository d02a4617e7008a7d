"""The rules of the business, pure: no AWS, no HTTP, no clock or randomness of their own."""
