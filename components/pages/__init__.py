"""One module per page: ``register()`` adds it to Dash Pages; callbacks live beside the layout."""
