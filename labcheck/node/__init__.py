"""Things the suite runs inside the Kind node container (through ``docker exec``)."""
