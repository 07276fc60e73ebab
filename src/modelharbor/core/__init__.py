"""The domain core: one service module per noun. Plain Python, no HTTP; a service method is one transaction."""
