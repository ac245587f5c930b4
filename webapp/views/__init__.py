"""The app's blueprints, one module per group of endpoints; create_app registers them."""
