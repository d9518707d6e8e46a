"""The learning platform pipeline: grader attempts from the statistics API into the warehouse."""
