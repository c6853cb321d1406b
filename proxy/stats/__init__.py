"""What the proxy saw: the recorder's write side, the pure view, /metrics, warnings, `lanes top`."""
