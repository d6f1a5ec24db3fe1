"""HTTP: the aiohttp application and its thin handlers over the service layer."""
