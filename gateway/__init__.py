"""Agency gateway: broker and shared core."""
