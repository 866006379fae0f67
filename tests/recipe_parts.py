"""Recipe text the tests build their own short recipes from."""

# Water to the low switch (≈3.3 simulated minutes on the sim unit), stirred once the impeller
# is wet: how every short test recipe starts.
FILL_TO_LSL = """
[[phases]]
name = "fill"
timeout_min = 10.0
fill = true
agitator = true
until = { level = "low" }
"""
