"""What browsers need from the service: which origins may call it, and GraphiQL served offline."""
