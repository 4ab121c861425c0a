"""The HTTP API: thin routes and the operations behind them (submit, follow, cancel, output)."""
