"""HTTP edges over the core: the native API and the vendor dialects. Each route makes one core call."""
