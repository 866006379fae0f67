"""Running a recipe: the phase executor and the batch record."""
