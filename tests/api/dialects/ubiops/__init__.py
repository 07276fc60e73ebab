def client_model(name: str, data):
    """Deserialize ``data`` as the ubiops 4.15 client does (its client-side validation raises on a wrong shape)."""
    import ubiops

    client = ubiops.ApiClient(ubiops.Configuration(host="http://unused"))
    try:
        return client._ApiClient__deserialize(data, name)
    finally:
        client.close()
