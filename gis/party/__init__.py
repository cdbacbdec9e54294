"""Party building: party organisations and their activities."""
