"""dra-labcheck: probes, verdicts and the pytest plugin behind the workshop lab checks."""
