"""Report outputs: machine-readable results, the terminal summary and pytest-html customisation."""
