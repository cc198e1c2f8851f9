"""Agency nodes: the shared runtime, and the police, bank, carrier and regulator roles."""
