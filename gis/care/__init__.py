"""Care: people under care (their personal fields kept apart) and the sensors in their homes."""
