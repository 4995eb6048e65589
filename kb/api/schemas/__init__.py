"""Request and response schemas, one module per resource (Create / Update / Public, as in the FastAPI
full-stack template)."""
