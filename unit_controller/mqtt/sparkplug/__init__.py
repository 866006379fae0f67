"""Sparkplug B (`[mqtt] payload = "sparkplug"`): the unit as an edge node of a Sparkplug host."""
