"""The data-plane actors (smart router, REST and WebSocket fallbacks, health probe)."""
