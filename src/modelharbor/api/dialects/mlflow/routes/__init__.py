"""The MLflow dialect's routers, one module per noun: registry, tracking, artifacts."""
