"""`unit-controller sim`: a whole batch on the plant simulator, in virtual time."""
