"""Page routers, one module per page family; :data:`ROUTERS` in the order :mod:`kb.web.app` includes them."""
